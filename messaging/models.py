"""Messaging tables. They exist in every service's database (see config/routers.py) and are always
used with an explicit `.using(alias)`, so a service's outbox or inbox row commits with its own change."""
from django.db import models
from django.db.models import Q
from django.utils import timezone


class OutboxMessage(models.Model):
    """An event recorded in the same transaction as the change it describes, waiting to be published."""

    event_id = models.UUIDField(unique=True)
    source = models.CharField(max_length=32)
    event_type = models.CharField(max_length=100)
    subject = models.CharField(max_length=64)
    sequence = models.PositiveIntegerField()
    routing_key = models.CharField(max_length=255)
    body = models.TextField(help_text="The CloudEvent exactly as it is published.")
    correlation_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    publish_attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            # Two writers racing for the same subject get one sequence number each, never the same.
            models.UniqueConstraint(fields=["source", "subject", "sequence"], name="outbox_unique_sequence"),
        ]
        indexes = [
            models.Index(fields=["created_at"], condition=Q(published_at__isnull=True), name="outbox_unpublished"),
            models.Index(fields=["subject"], name="outbox_subject"),
        ]

    def __str__(self):
        return f"{self.event_type} #{self.sequence} for {self.subject}"


class RedeliveryCount(models.Model):
    """How often a broker that cannot count (STOMP says only "redelivered") handed this consumer the
    same message again without a settlement: the delivery limit's count for those brokers."""

    consumer = models.CharField(max_length=64)
    message_id = models.CharField(max_length=200)
    redeliveries = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consumer", "message_id"], name="redelivery_count_unique_message"),
        ]


class InboxMessage(models.Model):
    """One row per event a consumer has taken in; the unique key is what makes a redelivery harmless."""

    class Outcome(models.TextChoices):
        APPLIED = "applied"
        EARLY = "early", "applied before its predecessor"
        STALE = "stale", "older than what was applied: skipped"

    consumer = models.CharField(max_length=64)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=100)
    source = models.CharField(max_length=32)
    subject = models.CharField(max_length=64)
    sequence = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consumer", "event_id"], name="inbox_unique_event_per_consumer"),
        ]
        indexes = [models.Index(fields=["consumer", "subject"], name="inbox_consumer_subject")]


class SubjectProgress(models.Model):
    """The highest `sequence` a consumer has applied for one subject from one source."""

    consumer = models.CharField(max_length=64)
    source = models.CharField(max_length=32)
    subject = models.CharField(max_length=64)
    last_sequence = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consumer", "source", "subject"], name="progress_unique_subject"),
        ]


class DeliveryOutcome(models.TextChoices):
    APPLIED = "applied"
    EARLY = "early"
    STALE = "stale"
    DUPLICATE = "duplicate"
    RETRY = "retry", "failed, retry scheduled"
    DEAD_LETTERED = "dead_lettered"


class DeliveryAttempt(models.Model):
    """Every message a consumer handled, and how it went: what the dashboards count and list."""

    consumer = models.CharField(max_length=64)
    event_id = models.UUIDField(null=True, blank=True)
    event_type = models.CharField(max_length=100, blank=True)
    subject = models.CharField(max_length=64, blank=True)
    sequence = models.PositiveIntegerField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    outcome = models.CharField(max_length=16, choices=DeliveryOutcome.choices)
    reason = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True)
    duration_ms = models.FloatField(default=0)
    correlation_id = models.CharField(max_length=64, blank=True)
    # Which process handled it ("host:pid"): shows competing consumers sharing a queue.
    worker = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["consumer", "created_at"], name="attempt_consumer_time"),
            models.Index(fields=["subject"], name="attempt_subject"),
        ]


class DeadLetter(models.Model):
    """A message a consumer gave up on, kept untouched with the reason, for inspection and replay."""

    class Status(models.TextChoices):
        PENDING = "pending"
        REPLAYED = "replayed"
        DISCARDED = "discarded"

    consumer = models.CharField(max_length=64)
    event_id = models.UUIDField(null=True, blank=True)
    event_type = models.CharField(max_length=100, blank=True)
    subject = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=64)
    detail = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=1)
    body = models.BinaryField(help_text="The original message body, byte for byte.")
    content_type = models.CharField(max_length=100, blank=True)
    routing_key = models.CharField(max_length=255, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["consumer", "status", "created_at"], name="deadletter_consumer_status")]

    def body_text(self) -> str:
        return bytes(self.body).decode("utf-8", errors="replace")


class ConsumerState(models.Model):
    """What a running consumer reports (heartbeat) and what operators ask of it (pause)."""

    consumer = models.CharField(max_length=64, unique=True)
    paused = models.BooleanField(default=False)
    # A pause that ends by itself (the "loyalty outage" scenario).
    paused_until = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    process_id = models.PositiveIntegerField(null=True, blank=True)
    hostname = models.CharField(max_length=255, blank=True)
    # Injected faults (messaging/faults.py): {"fail_share": 0.3, "slow_ms": 200, ...}.
    faults = models.JSONField(default=dict, blank=True)

    @property
    def resumes_at(self):
        """The end of a timed pause still running, else None."""
        return self.paused_until if self.paused_until and self.paused_until > timezone.now() else None

    @property
    def is_paused(self) -> bool:
        return self.paused or self.resumes_at is not None


class MetricSample(models.Model):
    """A reading taken every few seconds by the relay (queue depths, backlog), for the charts."""

    name = models.CharField(max_length=100)
    value = models.FloatField()
    sampled_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["name", "sampled_at"], name="metric_name_time")]


class RuntimeSetting(models.Model):
    """A switch operators flip while the shop runs (checkout mode, publisher faults), in `default`."""

    key = models.CharField(max_length=100, unique=True)
    value = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)
