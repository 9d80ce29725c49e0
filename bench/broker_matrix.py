"""The capabilities table of docs/brokers.md, printed from the adapters' own `capabilities` records.

    .venv/bin/python bench/broker_matrix.py

Paste what it prints between `<!-- capabilities:start -->` and `<!-- capabilities:end -->` in
docs/brokers.md. tests/test_broker_docs.py builds the same table in memory and fails while the page
holds anything else, so a changed adapter cannot leave the docs behind. It measures nothing: the
measured comparison is bench/brokers.py, and tests/messaging/brokers/test_capabilities.py checks
each record against its real broker.
"""
from __future__ import annotations

import os
import sys
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Capabilities field -> the row's label; consumer_count is a yes/no.
ROW_LABELS = {
    "publish_confirmation": "publish confirmation",
    "pub_sub": "publish/subscribe",
    "pattern_routing": "routing by pattern",
    "delivery_count": "delivery count",
    "delivery_limit": "delivery limit",
    "dead_letters": "dead letters",
    "delayed_delivery": "retry delays",
    "per_key_ordering": "per-key ordering",
    "unrouted_events": "unrouted events",
    "priorities": "priorities",
    "high_availability": "high availability",
    "consumer_count": "consumers in queue depths",
}


def adapter_classes() -> list[type]:
    """The four adapters, in the order of the table's columns."""
    from messaging.brokers.activemq import ActiveMQBus
    from messaging.brokers.embedded import EmbeddedBus
    from messaging.brokers.rabbitmq import RabbitMQBus
    from messaging.brokers.sqs import SqsBus

    return [RabbitMQBus, EmbeddedBus, SqsBus, ActiveMQBus]


def _cell(value) -> str:
    """One table cell: `|` escaped, and outside code spans `<` and `*` too, so that
    `Consumer.<subscriber>` is not taken for an HTML tag nor a lone `*` for emphasis."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    parts = " ".join(str(value).split()).split("`")
    for index in range(0, len(parts), 2):  # the even parts are outside code spans
        parts[index] = parts[index].replace("<", "&lt;").replace("*", "\\*")
    return "`".join(parts).replace("|", "\\|")


def capabilities_table() -> str:
    """A markdown table: one row per capability, one column per adapter (`<module>.<Class>`)."""
    records = [(adapter, adapter.capabilities) for adapter in adapter_classes()]
    names = [field.name for field in fields(records[0][1]) if field.name != "name"]
    missing = [name for name in names if name not in ROW_LABELS]
    if missing:
        raise KeyError(f"Capabilities has fields this table has no label for: {', '.join(missing)}")
    header = ["", *(f"{record.name} (`{adapter.__module__.rsplit('.', 1)[1]}.{adapter.__name__}`)"
                    for adapter, record in records)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        lines.append("| " + " | ".join([ROW_LABELS[name], *(_cell(getattr(record, name)) for _, record in records)]) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import django

    django.setup()
    sys.stdout.write(capabilities_table())


if __name__ == "__main__":
    main()
