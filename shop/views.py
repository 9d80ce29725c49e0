"""The shop's HTML pages. Each view validates its input, calls at most one service and renders."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from shop.cart import Cart
from shop.checkout import DownstreamUnavailable, checkout_mode_set, checkout_place_order
from shop.forms import AddToCartForm, CartUpdateForm, CheckoutForm, checkout_token
from shop.models import Order, Product
from shop.selectors import (
    order_for_idempotency_key,
    order_journey,
    order_list_for_customer,
    order_visible_to,
    product_list,
)
from shop.services import MAX_QUANTITY_PER_LINE, IdempotencyKeyReused, OrderRejected, order_cancel


@require_GET
def catalog(request):
    return render(request, "shop/catalog.html", {"products": product_list()})


@require_GET
def product_detail(request, sku):
    product = get_object_or_404(Product, sku=sku)
    return render(request, "shop/product.html", {"product": product, "form": AddToCartForm()})


@require_POST
def cart_add(request, sku):
    product = get_object_or_404(Product, sku=sku)
    form = AddToCartForm(request.POST)
    if not form.is_valid():
        return render(request, "shop/product.html", {"product": product, "form": form}, status=400)
    cart = Cart(request.session)
    wanted = cart.quantity_of(sku) + form.cleaned_data["quantity"]
    if wanted > product.stock:
        # The order service is the real guard; this only spares the customer a failed checkout.
        in_cart = cart.quantity_of(sku)
        messages.error(
            request,
            f"Only {product.stock} of {product.name} left" + (f", and {in_cart} already in your cart." if in_cart else "."),
        )
        return redirect(product)
    cart.add(sku, form.cleaned_data["quantity"])
    messages.success(request, f"Added {form.cleaned_data['quantity']} × {product.name} to your cart.")
    return redirect("shop:cart")


@require_GET
def cart_detail(request):
    lines = Cart(request.session).lines()
    return render(request, "shop/cart.html", {"lines": lines, "total": Cart.total(lines)})


@require_POST
def cart_update(request):
    cart = Cart(request.session)
    names = {line.product.sku: line.product.name for line in cart.lines()}
    form = CartUpdateForm(request.POST, skus=list(names))
    if not form.is_valid():
        messages.error(request, f"Quantities must be whole numbers from 0 to {MAX_QUANTITY_PER_LINE}.")
        return redirect("shop:cart")
    for sku, quantity in form.quantities().items():
        if sku in names:
            cart.set(sku, quantity)
    removed = form.cleaned_data["remove"]
    messages.success(request, f"Removed {names[removed]} from your cart." if removed in names else "Cart updated.")
    return redirect("shop:cart")


@login_required
@require_http_methods(["GET", "POST"])
def checkout(request):
    cart = Cart(request.session)
    if request.method == "POST":
        form = CheckoutForm(request.POST)
        token = request.POST.get("idempotency_key", "")
        already_placed = order_for_idempotency_key(customer=request.user, idempotency_key=token)
        if already_placed:
            # The same form submitted again after the first one emptied the cart.
            return redirect(already_placed)
    else:
        form = CheckoutForm(initial={"idempotency_key": checkout_token(), "name": request.user.get_full_name()})
    lines = cart.lines()
    if not lines:
        messages.info(request, "Your cart is empty: add something before checking out.")
        return redirect("shop:cart")

    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            placed = checkout_place_order(
                customer=request.user,
                items=cart.order_items(),
                shipping_address=form.shipping_address(),
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
        except OrderRejected as rejected:
            for field, reasons in rejected.errors.items():
                for reason in reasons:
                    form.add_error(field if field in form.fields else None, reason)
            status = rejected.status_code
        except IdempotencyKeyReused:
            form = CheckoutForm(data={**form.cleaned_data, "idempotency_key": checkout_token()})
            form.add_error(None, "This checkout form was already used for another order. Check the details and place the order again.")
            status = 409
        except DownstreamUnavailable as unavailable:
            # The order stands and will be completed asynchronously: show it, as for any placed order.
            cart.clear()
            messages.warning(request, str(unavailable))
            return redirect(unavailable.order)
        else:
            cart.clear()
            if placed.created:
                messages.success(request, f"Thank you! Order {placed.order.number} is placed.")
            return redirect(placed.order)
    elif request.method == "POST":
        status = 400
    return render(request, "shop/checkout.html", {"form": form, "lines": lines, "total": Cart.total(lines)}, status=status)


@login_required
@require_POST
def checkout_mode_switch(request):
    if not request.user.is_staff:
        raise PermissionDenied
    mode = request.POST.get("mode", "")
    try:
        checkout_mode_set(mode=mode)
    except ValueError as error:
        return HttpResponseBadRequest(str(error))
    messages.success(request, f"Checkout is now {mode}.")
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        next_url = "/ops/"
    return redirect(next_url)


ORDERS_PER_PAGE = 25


@login_required
@require_GET
def order_list(request):
    orders = Paginator(order_list_for_customer(customer=request.user), ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "shop/orders.html", {"orders": orders})


@login_required
@require_GET
def order_detail(request, pk):
    order = _order_or_404(request, pk)
    return render(request, "shop/order.html", {"order": order, **_journey_context(order)})


@login_required
@require_GET
def order_journey_partial(request, pk):
    order = _order_or_404(request, pk)
    return render(request, "shop/_order_journey.html", {"order": order, **_journey_context(order)})


@login_required
@require_POST
def order_cancel_view(request, pk):
    order = _order_or_404(request, pk)
    if order.is_cancellable:
        order = order_cancel(order=order)
        messages.success(request, f"Order {order.number} is cancelled; its stock is back on the shelf.")
    return redirect(order)


def _order_or_404(request, pk) -> Order:
    order = order_visible_to(user=request.user, order_id=pk)
    if order is None:
        raise Http404("No such order.")
    return order


def _journey_context(order: Order) -> dict:
    # Once shipping and loyalty have both answered (or undone their work) nothing more will arrive.
    shipped_and_credited = bool(order.shipment_status and order.points_awarded)
    cancelled_and_reversed = order.status == Order.Status.CANCELLED and bool(order.points_reversed)
    return {"journey": order_journey(order=order), "journey_settled": shipped_and_credited or cancelled_and_reversed}
