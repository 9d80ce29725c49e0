"""The shop's data: products, orders and what it has heard about each order since."""
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class Product(models.Model):
    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))])
    stock = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            # The last line of defence against overselling, whatever the code above it does.
            models.CheckConstraint(condition=Q(stock__gte=0), name="product_stock_not_negative"),
            models.CheckConstraint(condition=Q(price__gt=0), name="product_price_positive"),
        ]

    def __str__(self):
        return f"{self.name} ({self.sku})"

    def get_absolute_url(self):
        return reverse("shop:product", kwargs={"sku": self.sku})


class Order(models.Model):
    class Status(models.TextChoices):
        CONFIRMED = "confirmed"
        FULFILLED = "fulfilled", "fulfilled (shipped and points credited)"
        CANCELLED = "cancelled"

    number = models.CharField(max_length=24, unique=True)
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CONFIRMED)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    ship_to_name = models.CharField(max_length=200)
    ship_to_line1 = models.CharField(max_length=200)
    ship_to_city = models.CharField(max_length=100)
    ship_to_postal_code = models.CharField(max_length=20)
    ship_to_country = models.CharField(max_length=2)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # What the other services have reported, as the shop heard it through events.
    shipment_status = models.CharField(max_length=32, blank=True)
    tracking_number = models.CharField(max_length=64, blank=True)
    label_url = models.CharField(max_length=255, blank=True)
    points_awarded = models.IntegerField(default=0)
    points_reversed = models.IntegerField(default=0)
    # Where to POST a signed notification once the order is fulfilled (an API client's callback).
    callback_url = models.URLField(max_length=500, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One order per (customer, Idempotency-Key): a retried POST can never place a second one.
            models.UniqueConstraint(
                fields=["customer", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="order_unique_idempotency_key",
            ),
        ]

    def __str__(self):
        return self.number

    def get_absolute_url(self):
        return reverse("shop:order", kwargs={"pk": self.pk})

    @property
    def shipping_address(self) -> dict:
        return {
            "name": self.ship_to_name,
            "line1": self.ship_to_line1,
            "city": self.ship_to_city,
            "postal_code": self.ship_to_postal_code,
            "country": self.ship_to_country,
        }

    @property
    def is_cancellable(self) -> bool:
        return self.status != self.Status.CANCELLED


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    sku = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_positive")]

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class OrderJourneyStep(models.Model):
    """Something another service reported about an order, as the shop's listener received it."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="journey_steps")
    event_id = models.UUIDField(unique=True)
    event_type = models.CharField(max_length=100)
    source = models.CharField(max_length=32)
    summary = models.CharField(max_length=255)
    data = models.JSONField(default=dict, help_text="The event's data, as received.")
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["occurred_at", "id"]


class CallbackDelivery(models.Model):
    """Each attempt to notify an order's callback URL."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="callback_deliveries")
    url = models.URLField(max_length=500)
    attempt = models.PositiveIntegerField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    delivered = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]


class CheckoutTiming(models.Model):
    """How long one checkout request took, in which mode: sync (HTTP calls) or async (events)."""

    class Mode(models.TextChoices):
        SYNC = "sync"
        ASYNC = "async"

    mode = models.CharField(max_length=8, choices=Mode.choices)
    duration_ms = models.FloatField()
    succeeded = models.BooleanField()
    detail = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["mode", "created_at"], name="checkout_timing_mode_time")]
