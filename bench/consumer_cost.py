"""Where a shipping consumer's time goes: one message through `MessageProcessor.process`, in process.

    .venv/bin/python bench/consumer_cost.py                  # both backends, 500 messages per case
    .venv/bin/python bench/consumer_cost.py --backend embedded

No broker delivery and no ack: this measures what the consumer does between receiving a message and
acking it. It runs the same code as `manage.py consume shipping` (inbox row, subject progress,
shipment, outbox row, the label job sent to Celery's broker, the attempt record, one commit, then
`ShipmentCreated` published after commit with a publisher confirm). It reports:
- the SQL statements per message (BEGIN, savepoints and COMMIT included), counted on one message;
- wall time and this process's CPU time per message, for the full path;
- the same without the label job (`shipping.services._label_job_send` replaced by a no-op), to show
  what sending one Celery task costs;
- the same without the after-commit publish (`OUTBOX_PUBLISH_ON_COMMIT` off, the relay would publish
  `ShipmentCreated` instead), to show what publishing with a confirm from the consumer costs.
The cases run in the order full, no label job, no publish, full again; the table shows the mean of
the two full runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BACKENDS, backend, django_setup, purchase_event, run_child  # noqa: E402


class NoRetries:
    def schedule(self, delivery, *, attempt, delay_seconds):
        raise AssertionError("no message should fail here")


def child(messages: int) -> dict:
    django_setup()
    from django.db import connections
    from django.test.utils import CaptureQueriesContext, override_settings

    import shipping.services
    from messaging.consumer import Delivery, MessageProcessor
    from messaging.events import CONTENT_TYPE, Envelope
    from messaging.topology import SUBSCRIPTIONS

    processor = MessageProcessor(SUBSCRIPTIONS["shipping"])
    next_order_id = iter(range(1, 10**9))

    def deliveries(count: int) -> list[Delivery]:
        envelopes = [Envelope(event=purchase_event(next(next_order_id)), sequence=1) for _ in range(count)]
        return [Delivery(body=e.to_json().encode(), content_type=CONTENT_TYPE, routing_key=e.event.routing_key(),
                         headers={}) for e in envelopes]

    def measure(count: int) -> tuple[float, float]:
        batch = deliveries(count)
        wall, cpu = time.perf_counter(), time.process_time()
        for delivery in batch:
            assert processor.process(delivery, NoRetries()) == "applied"
        return (time.perf_counter() - wall) * 1000 / count, (time.process_time() - cpu) * 1000 / count

    measure(50)  # warm up: connections, Celery's producer pool, imports
    with CaptureQueriesContext(connections["shipping"]) as statements:
        processor.process(deliveries(1)[0], NoRetries())
    full_first = measure(messages)
    label_job_send = shipping.services._label_job_send
    shipping.services._label_job_send = lambda **kwargs: None
    try:
        without_label = measure(messages)
    finally:
        shipping.services._label_job_send = label_job_send
    with override_settings(OUTBOX_PUBLISH_ON_COMMIT=False):
        without_publish = measure(messages)
    full_again = measure(messages)
    full = tuple((a + b) / 2 for a, b in zip(full_first, full_again))
    return {"statements": len(statements), "full": full, "without_label": without_label,
            "without_publish": without_publish}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        import json

        print(json.dumps(child(options.messages)))
        return

    print(f"consumer cost per message, in process: {options.messages} messages per case; "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'backend':<20}{'SQL/msg':>8}   wall ms (CPU ms) per message, msg/s")
    print(f"{'':<28}   {'full path':<22}{'without the label job':<26}{'without the after-commit publish'}")
    for name in BACKENDS if options.backend == "both" else (options.backend,):
        with backend(name) as env:
            result = run_child(__file__, env, "--messages", str(options.messages))
        cells = [f"{wall:.2f} ({cpu:.2f}), {1000 / wall:.0f}"
                 for wall, cpu in (result["full"], result["without_label"], result["without_publish"])]
        print(f"{name:<20}{result['statements']:>8}   {cells[0]:<22}{cells[1]:<26}{cells[2]}")

if __name__ == "__main__":
    main()
