"""Shipping's own data. It never reads the shop's tables: an order is known only by its id and event."""
from django.db import models
from django.utils import timezone


class Shipment(models.Model):
    class Status(models.TextChoices):
        AWAITING_LABEL = "awaiting_label", "awaiting label"
        LABEL_READY = "label_ready", "label ready"
        CANCELLED = "cancelled"

    # The shop's order id: a reference across services, not a foreign key.
    order_id = models.BigIntegerField(unique=True)  # one shipment per order, enforced by the database
    order_number = models.CharField(max_length=24, blank=True)
    customer_id = models.BigIntegerField(null=True, blank=True)
    recipient_name = models.CharField(max_length=200, blank=True)
    line1 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True)
    item_count = models.PositiveIntegerField(default=0)
    tracking_number = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.AWAITING_LABEL)
    label = models.FileField(upload_to="labels/", blank=True)
    label_rendered_by = models.CharField(max_length=255, blank=True, help_text="The worker that rendered the label.")
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # True when the cancellation arrived before the purchase (see docs/guarantees.md#out-of-order).
    cancelled_before_purchase = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"shipment {self.tracking_number} for order {self.order_id}"
