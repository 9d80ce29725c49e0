"""The CloudEvents envelope and every event type Eventshop publishes: the one place they are defined.

Events are facts, named in the past tense. Each is a frozen dataclass holding the event's `data`;
`Envelope` wraps it in a CloudEvents 1.0 structured-mode JSON document. Parsing is strict: anything
that is not a valid, known, supported event raises `InvalidEvent` with a reason code, which a
consumer turns into a dead letter.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import typing
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import ClassVar

SPECVERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"
DATA_CONTENT_TYPE = "application/json"
EXCHANGE_NAME = "shop.events"
SCHEMA_VERSION = 1


class InvalidEvent(Exception):
    """A message that can never be handled. `reason` is a short code shown on the dashboard."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# --- event data --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    type: ClassVar[str]
    source: ClassVar[str]

    @property
    def subject(self) -> str:
        """The order an event is about: its `subject`, and the key its `sequence` counts within."""
        return str(self.order_id)  # type: ignore[attr-defined]

    def routing_key(self) -> str:
        """Routing keys start with the type; subclasses append segments for custom routing."""
        return self.type


@dataclass(frozen=True)
class Address:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str


@dataclass(frozen=True)
class PurchaseLine:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class PurchaseConfirmed(Event):
    type: ClassVar[str] = "shop.purchase.confirmed"
    source: ClassVar[str] = "/shop"

    order_id: int
    order_number: str
    customer_id: int
    customer_email: str
    lines: list[PurchaseLine]
    total: Decimal
    currency: str
    shipping_address: Address

    def routing_key(self) -> str:
        # shop.purchase.confirmed.<COUNTRY>.<value band>: subscribers can pick, say, only
        # German orders (`shop.purchase.confirmed.DE.#`) or only large ones (`*.*.*.*.large`).
        return f"{self.type}.{self.shipping_address.country}.{order_value_band(self.total)}"


@dataclass(frozen=True)
class OrderCancelled(Event):
    type: ClassVar[str] = "shop.order.cancelled"
    source: ClassVar[str] = "/shop"

    order_id: int
    order_number: str
    customer_id: int
    reason: str
    total: Decimal
    currency: str


@dataclass(frozen=True)
class ShipmentCreated(Event):
    type: ClassVar[str] = "shipping.shipment.created"
    source: ClassVar[str] = "/shipping"

    shipment_id: int
    order_id: int
    tracking_number: str
    country: str


@dataclass(frozen=True)
class ShipmentCancelled(Event):
    type: ClassVar[str] = "shipping.shipment.cancelled"
    source: ClassVar[str] = "/shipping"

    shipment_id: int
    order_id: int


@dataclass(frozen=True)
class ShippingLabelRendered(Event):
    type: ClassVar[str] = "shipping.label.rendered"
    source: ClassVar[str] = "/shipping"

    shipment_id: int
    order_id: int
    label_url: str


@dataclass(frozen=True)
class PointsAwarded(Event):
    type: ClassVar[str] = "loyalty.points.awarded"
    source: ClassVar[str] = "/loyalty"

    order_id: int
    customer_id: int
    points: int
    balance: int
    # Added after version 1 with a default, so events without it still parse (docs/events.md).
    reason: str = "purchase"


@dataclass(frozen=True)
class PointsReversed(Event):
    type: ClassVar[str] = "loyalty.points.reversed"
    source: ClassVar[str] = "/loyalty"

    order_id: int
    customer_id: int
    points: int
    balance: int


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        PurchaseConfirmed,
        OrderCancelled,
        ShipmentCreated,
        ShipmentCancelled,
        ShippingLabelRendered,
        PointsAwarded,
        PointsReversed,
    )
}

LARGE_ORDER_THRESHOLD = Decimal("200")


def order_value_band(total: Decimal) -> str:
    return "large" if total >= LARGE_ORDER_THRESHOLD else "standard"


# --- the envelope ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """A CloudEvents 1.0 event: the attributes around one `Event`'s data."""

    event: Event
    sequence: int
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    correlation_id: str = ""
    # A routing key chosen at publish time; normally the event's own.
    routing_key: str = ""

    @property
    def type(self) -> str:
        return self.event.type

    @property
    def source(self) -> str:
        return self.event.source

    @property
    def subject(self) -> str:
        return self.event.subject

    def to_dict(self) -> dict:
        document = {
            "specversion": SPECVERSION,
            "id": str(self.id),
            "source": self.source,
            "type": self.type,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "subject": self.subject,
            "datacontenttype": DATA_CONTENT_TYPE,
            "dataschema": schema_uri(self.type, SCHEMA_VERSION),
            "sequence": str(self.sequence),
            "data": _to_jsonable(dataclasses.asdict(self.event)),
        }
        if self.correlation_id:
            document["correlationid"] = self.correlation_id
        return document

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, document: dict, routing_key: str = "") -> Envelope:
        if not isinstance(document, dict):
            raise InvalidEvent("not_cloudevent", "the message is JSON but not an object")
        missing = [name for name in REQUIRED_ATTRIBUTES if name not in document]
        if missing:
            raise InvalidEvent("not_cloudevent", f"missing attributes: {', '.join(missing)}")
        if document["specversion"] != SPECVERSION:
            raise InvalidEvent("not_cloudevent", f"specversion {document['specversion']!r} is not 1.0")
        event_type = document["type"]
        event_class = EVENT_TYPES.get(event_type)
        if event_class is None:
            raise InvalidEvent("unknown_type", f"no event type {event_type!r}")
        if document["source"] != event_class.source:
            raise InvalidEvent("invalid_event", f"{event_type} comes from {event_class.source}, not {document['source']!r}")
        version = schema_version_of(document.get("dataschema"), event_type)
        if version != SCHEMA_VERSION:
            raise InvalidEvent("unsupported_schema", f"{event_type} schema version {version} is not supported")
        try:
            event_id = uuid.UUID(str(document["id"]))
            sequence = int(document["sequence"])
            time = datetime.fromisoformat(str(document["time"]).replace("Z", "+00:00"))
        except (ValueError, TypeError) as error:
            raise InvalidEvent("not_cloudevent", f"bad id, sequence or time: {error}") from None
        if sequence < 1:
            raise InvalidEvent("not_cloudevent", "sequence must be 1 or more")
        event = parse_data(event_class, document["data"])
        if event.subject != str(document["subject"]):
            raise InvalidEvent("invalid_event", f"subject {document['subject']!r} is not order {event.subject}")
        return cls(
            event=event,
            sequence=sequence,
            id=event_id,
            time=time,
            correlation_id=str(document.get("correlationid", "")),
            routing_key=routing_key,
        )

    @classmethod
    def from_json(cls, body: bytes | str, routing_key: str = "") -> Envelope:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise InvalidEvent("not_json", str(error)) from None
        return cls.from_dict(document, routing_key=routing_key)


REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type", "time", "subject", "sequence", "data")


def schema_uri(event_type: str, version: int) -> str:
    return f"urn:eventshop:schema:{event_type}:{version}"


def schema_version_of(dataschema: str | None, event_type: str) -> int:
    # Events published before `dataschema` existed carry none: they are version 1.
    if dataschema is None:
        return 1
    prefix = f"urn:eventshop:schema:{event_type}:"
    if not str(dataschema).startswith(prefix) or not str(dataschema)[len(prefix):].isdigit():
        raise InvalidEvent("unsupported_schema", f"unrecognised dataschema {dataschema!r}")
    return int(str(dataschema)[len(prefix):])


# --- data (de)serialisation --------------------------------------------------------------------


def _to_jsonable(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: _to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_jsonable(item) for item in value]
    return value


def parse_data(event_class: type, data) -> Event:
    try:
        return _parse_value(event_class, data, "data")
    except InvalidEvent:
        raise
    except (TypeError, ValueError) as error:
        raise InvalidEvent("invalid_data", str(error)) from None


@functools.cache
def _type_hints(event_class: type) -> dict:
    # Resolving the (string) annotations is most of a parse's cost; they never change at run time.
    return typing.get_type_hints(event_class)


def _parse_value(expected, value, path: str):
    origin = typing.get_origin(expected)
    if dataclasses.is_dataclass(expected):
        if not isinstance(value, dict):
            raise InvalidEvent("invalid_data", f"{path} must be an object")
        hints = _type_hints(expected)
        fields = dataclasses.fields(expected)
        missing = [f.name for f in fields if f.name not in value and f.default is dataclasses.MISSING]
        if missing:
            raise InvalidEvent("invalid_data", f"{path} is missing {', '.join(missing)}")
        return expected(**{f.name: _parse_value(hints[f.name], value[f.name], f"{path}.{f.name}")
                           for f in fields if f.name in value})
    if origin is list:
        (item_type,) = typing.get_args(expected)
        if not isinstance(value, list) or not value:
            raise InvalidEvent("invalid_data", f"{path} must be a non-empty list")
        return [_parse_value(item_type, item, f"{path}[{index}]") for index, item in enumerate(value)]
    if expected is Decimal:
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise InvalidEvent("invalid_data", f"{path} is not a decimal: {value!r}") from None
        if not number.is_finite() or number < 0:
            raise InvalidEvent("invalid_data", f"{path} must be a non-negative amount")
        return number
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidEvent("invalid_data", f"{path} must be an integer")
        return value
    if expected is str:
        if not isinstance(value, str):
            raise InvalidEvent("invalid_data", f"{path} must be a string")
        return value
    raise TypeError(f"unsupported annotation {expected!r} at {path}")
