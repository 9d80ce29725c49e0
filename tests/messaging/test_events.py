"""The CloudEvents envelope: what goes on the wire, and what a consumer refuses."""
import json
import uuid

import pytest

from messaging.events import Envelope, InvalidEvent, PurchaseConfirmed
from tests.messaging.builders import envelope, purchase


def test_a_purchase_is_a_structured_cloudevent_with_the_contract_attributes():
    event = envelope(purchase(order_id=42, total="250.00", country="FR"), sequence=1)

    document = json.loads(event.to_json())

    assert document["specversion"] == "1.0"
    assert uuid.UUID(document["id"]) == event.id
    assert (document["source"], document["type"], document["subject"], document["sequence"]) == (
        "/shop", "shop.purchase.confirmed", "42", "1")
    assert document["datacontenttype"] == "application/json"
    assert document["time"].endswith("Z")
    data = document["data"]
    assert (data["order_id"], data["total"], data["currency"]) == (42, "250.00", "EUR")
    assert data["lines"][0] == {"sku": "MUG-01", "name": "Enamel mug", "quantity": 2, "unit_price": "125.00"}
    assert data["shipping_address"]["country"] == "FR"


def test_a_purchase_routing_key_starts_with_its_type_and_carries_country_and_value_band():
    assert purchase(country="FR", total="250.00").routing_key() == "shop.purchase.confirmed.FR.large"
    assert purchase(country="DE", total="19.99").routing_key() == "shop.purchase.confirmed.DE.standard"


def test_an_envelope_survives_the_round_trip_through_json():
    original = envelope(purchase(order_id=5), sequence=3)

    parsed = Envelope.from_json(original.to_json())

    assert parsed.event == original.event and parsed.id == original.id and parsed.sequence == 3
    assert isinstance(parsed.event, PurchaseConfirmed)


def test_an_event_without_dataschema_is_read_as_version_one():
    document = envelope(purchase()).to_dict()
    del document["dataschema"]

    assert Envelope.from_dict(document).event == purchase()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sequence": "0"}, "not_cloudevent"),
        ({"sequence": "first"}, "not_cloudevent"),
        ({"id": "not-a-uuid"}, "not_cloudevent"),
        ({"subject": "999"}, "invalid_event"),
        ({"source": "/loyalty"}, "invalid_event"),
        ({"data": {"order_id": 1}}, "invalid_data"),
        ({"data": "a string"}, "invalid_data"),
    ],
)
def test_a_malformed_event_is_refused_with_a_reason(change, reason):
    document = {**envelope(purchase(order_id=1)).to_dict(), **change}

    with pytest.raises(InvalidEvent) as refused:
        Envelope.from_dict(document)

    assert refused.value.reason == reason


def test_negative_totals_and_boolean_quantities_are_invalid_data():
    document = envelope(purchase()).to_dict()
    document["data"]["total"] = "-5"
    with pytest.raises(InvalidEvent, match="invalid_data"):
        Envelope.from_dict(document)
    document = envelope(purchase()).to_dict()
    document["data"]["lines"][0]["quantity"] = True
    with pytest.raises(InvalidEvent, match="invalid_data"):
        Envelope.from_dict(document)
