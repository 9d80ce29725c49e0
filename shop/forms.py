"""The shop's HTML forms: what the pages accept before a view calls a service."""
import secrets

from django import forms
from django.core.validators import RegexValidator

from shop.services import MAX_QUANTITY_PER_LINE, ShippingAddress


class AddToCartForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY_PER_LINE, initial=1)


class CartUpdateForm(forms.Form):
    """One quantity field per cart line (`qty-<sku>`; 0 removes it) and an optional `remove=<sku>`."""

    remove = forms.CharField(required=False)

    def __init__(self, *args, skus: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        for sku in skus:
            self.fields[f"qty-{sku}"] = forms.IntegerField(min_value=0, max_value=MAX_QUANTITY_PER_LINE, required=False)

    def quantities(self) -> dict[str, int]:
        """The new quantity of every line the form changed, removals as 0."""
        changes = {
            name.removeprefix("qty-"): value
            for name, value in self.cleaned_data.items()
            if name.startswith("qty-") and value is not None
        }
        if self.cleaned_data["remove"]:
            changes[self.cleaned_data["remove"]] = 0
        return changes


def checkout_token() -> str:
    return secrets.token_urlsafe(24)


class CheckoutForm(forms.Form):
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    line1 = forms.CharField(label="Address", max_length=200, widget=forms.TextInput(attrs={"autocomplete": "address-line1"}))
    city = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"autocomplete": "address-level2"}))
    postal_code = forms.CharField(max_length=20, widget=forms.TextInput(attrs={"autocomplete": "postal-code"}))
    country = forms.CharField(
        min_length=2,
        max_length=2,
        validators=[RegexValidator(r"^[A-Z]{2}$", "Use the two-letter ISO code in capitals, such as DE or FR.")],
        help_text="Two-letter ISO code, such as DE, FR or GB.",
        widget=forms.TextInput(attrs={"autocomplete": "country", "pattern": "[A-Z]{2}", "size": 3}),
    )
    # One token per rendered form: submitting the same form twice places one order.
    idempotency_key = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def shipping_address(self) -> ShippingAddress:
        data = self.cleaned_data
        return ShippingAddress(
            name=data["name"], line1=data["line1"], city=data["city"], postal_code=data["postal_code"], country=data["country"]
        )
