"""Loyalty's own data: an account per customer and a ledger of points transactions."""
from django.db import models
from django.utils import timezone


class LoyaltyAccount(models.Model):
    # The customer's id as the shop's events carry it: a reference across services.
    customer_id = models.BigIntegerField(unique=True)
    email = models.EmailField(blank=True)
    # The sum of the ledger, kept with it in the same transaction so reads need no aggregate.
    balance = models.IntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"account of customer {self.customer_id}: {self.balance} points"


class PointsTransaction(models.Model):
    class Kind(models.TextChoices):
        AWARD = "award"
        BONUS = "bonus", "large-order bonus"
        REVERSAL = "reversal"

    account = models.ForeignKey(LoyaltyAccount, on_delete=models.PROTECT, related_name="transactions")
    order_id = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    points = models.IntegerField(help_text="Positive for an award, negative for a reversal.")
    event_id = models.UUIDField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One credit, one bonus and one reversal per order at most, whatever arrives twice.
            models.UniqueConstraint(fields=["order_id", "kind"], name="points_unique_kind_per_order"),
        ]
