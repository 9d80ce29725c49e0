"""docs/brokers.md's "Measured" section, generated from docs/brokers-comparison.json.

`measured_section(results)` is the markdown between `<!-- measured:start -->` and
`<!-- measured:end -->`: the run's date, machine and load, one table of its figures, and each of
the lesson's claims with a verdict the figures and the setup allow. tests/test_broker_docs.py
fails while the page holds anything else.
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "brokers-comparison.json"
PAGE = ROOT / "docs" / "brokers.md"
START, END = "<!-- measured:start -->", "<!-- measured:end -->"
COLUMNS = (("embedded", "embedded"), ("rabbitmq", "RabbitMQ"), ("activemq", "ActiveMQ"), ("sqs", "SQS (moto emulator)"))


def _get(broker: dict, *path):
    value = broker
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _number(value, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value >= 100:
        value = round(value)
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.1f}" if isinstance(value, float) else str(value)
    return text + unit


def _step_cell(broker: dict, step: str, render) -> str:
    if broker.get("status") != "measured":
        return "skipped" if broker.get("status") == "skipped" else "failed"
    value = _get(broker, "steps", step)
    if value is None:
        return "—"
    if "error" in value:
        return "error (see JSON)"
    if value.get("status") in ("not measurable", "skipped"):
        return value["status"]
    return render(value)


ROWS = [
    ("publish with confirmation, relay path (msg/s)", "publish", lambda v: _number(v["relay_msg_s"])),
    ("plain publish loop, one confirmed message per call (msg/s)", "publish", lambda v: _number(v["plain_msg_s"])),
    ("purchase → shipment latency p50 / p95 / p99 (ms)", "latency",
     lambda v: f"{_number(v['p50_ms'])} / {_number(v['p95_ms'])} / {_number(v['p99_ms'])}"),
    ("consumer throughput, 1 process (msg/s)", "consumers_1", lambda v: _number(v["msg_s"])),
    ("consumer throughput, 2 processes (msg/s)", "consumers_2", lambda v: _number(v["msg_s"])),
    ("orders seen out of order, 1 consumer", "ordering_1", lambda v: f"{v['out_of_order']} of {v['orders']}"),
    ("orders seen out of order, 2 consumers", "ordering_2", lambda v: f"{v['out_of_order']} of {v['orders']}"),
    ("the same, ordering option on", "ordering_option", lambda v: f"{v['out_of_order']} of {v['orders']}"),
    ("consumer SIGKILLed: redelivered / duplicates absorbed / lost", "kill",
     lambda v: f"{v['redelivered']} / {v['duplicates_absorbed']} / {v['lost']}"),
    ("broker restart: lost / duplicates / s to first shipment", "restart",
     lambda v: f"{v['lost']} / {v['duplicates_absorbed']} / {_number(v['seconds_to_first_shipment_after_restart'])}"),
    ("broker memory (MiB)", "memory", lambda v: _number(v["mib"])),
]


def figures_table(results: dict) -> str:
    brokers = results["brokers"]
    present = [(key, label) for key, label in COLUMNS if key in brokers]
    lines = ["| | " + " | ".join(label for _, label in present) + " |", "|---|" + "---|" * len(present)]
    for label, step, render in ROWS:
        lines.append(f"| {label} | " + " | ".join(_step_cell(brokers[key], step, render) for key, _ in present) + " |")
    return "\n".join(lines) + "\n"


def _ordering_verdict(results: dict) -> tuple[str, str]:
    sqs = results["brokers"].get("sqs", {})
    one = _get(sqs, "steps", "ordering_1")
    fifo = _get(sqs, "steps", "ordering_option")
    if not one or "error" in one:
        return "not measurable here", "the SQS run did not measure ordering"
    fifo_text = (f" With `fifo=1` (2 consumers), {fifo['out_of_order']} of {fifo['orders']} orders were out of order."
                 if fifo and "out_of_order" in fifo else "")
    if one["out_of_order"] > 0:
        return "confirmed (on the emulator)", (f"{one['out_of_order']} of {one['orders']} orders were seen out of order "
                                               f"with a single consumer on a standard queue.{fifo_text} AWS documents "
                                               "standard queues as best-effort ordering.")
    return "not measurable here", (f"the emulator delivered a standard queue in order to one consumer "
                                   f"(0 of {one['orders']} orders out of order), which says nothing about AWS: AWS "
                                   "documents standard queues as best-effort ordering and occasional duplicates. "
                                   "Competing consumers can reorder an order's events on any broker without an "
                                   f"ordering option (the 2-consumer row).{fifo_text}")


def _activemq_verdict(results: dict) -> tuple[str, str]:
    brokers = results["brokers"]
    if results.get("quick"):
        return "not measurable here", "this was a quick run (a few dozen messages): nothing extreme about it"
    rabbit, active = brokers.get("rabbitmq", {}), brokers.get("activemq", {})
    compared = []
    for label, step, key, higher_is_better in (("publish", "publish", "relay_msg_s", True),
                                               ("p99 latency", "latency", "p99_ms", False),
                                               ("2-process consumer throughput", "consumers_2", "msg_s", True)):
        a, r = _get(active, "steps", step, key), _get(rabbit, "steps", step, key)
        if a is not None and r is not None:
            compared.append((label, (a < r) if higher_is_better else (a > r), a, r))
    if not compared:
        return "not measurable here", "ActiveMQ and RabbitMQ were not both measured"
    worse = [c for c in compared if c[1]]
    details = "; ".join(f"{label}: ActiveMQ {_number(a)} vs RabbitMQ {_number(r)}" for label, _, a, r in compared)
    verdict = "confirmed" if len(worse) == len(compared) else "contradicted" if not worse else "partly confirmed"
    return verdict, (f"at this run's load, against RabbitMQ: {details}. One machine, {results['load']['messages']} "
                     "messages per measurement and one broker restart are not the lesson's extreme conditions "
                     "(memory pressure, huge backlogs, clusters): read this as the same workload side by side, "
                     "not as a stress test")


def claims(results: dict) -> list[tuple[str, str, str]]:
    """(claim, verdict, why) for each of the lesson's claims."""
    ordering_verdict, ordering_why = _ordering_verdict(results)
    activemq_verdict, activemq_why = _activemq_verdict(results)
    return [
        ("SQS scales horizontally and takes tens of thousands of messages per second per queue", "not measurable here",
         "the emulator's throughput describes moto, not Amazon SQS, and is never quoted as SQS's. AWS's published "
         "figures ([Amazon SQS message quotas](https://docs.aws.amazon.com/AWSSimpleQueueService/latest/"
         "SQSDeveloperGuide/quotas-messages.html)), quoted as AWS's: standard queues support a nearly unlimited "
         "number of API calls per second per action (SendMessage, ReceiveMessage, DeleteMessage); FIFO queues 300 "
         "transactions per second per action, or up to 3,000 messages per second with batches of 10; high-throughput "
         "FIFO mode more, with per-region limits. Horizontal scaling needs many machines; this is one"),
        ("SQS keeps no order", ordering_verdict, ordering_why),
        ("SQS has few advanced features", "contradicted, in part",
         "from the adapters' records: SQS gives native retry delays, a delivery limit with redrive to a DLQ, a "
         "receive count and, with SNS filter policies, routing by pattern; it has no priorities, no consumer counts, "
         "and ordering only on FIFO queues. Fewer than RabbitMQ's, but not few for this design's needs."),
        ("RabbitMQ and ActiveMQ do not scale horizontally", "not measurable here",
         "one machine, one broker node each: a single node cannot show how a cluster scales. The 1 → 2 consumer "
         "process figures show consumers scaling against one broker, not the broker scaling out. RabbitMQ clusters "
         "replicate quorum queues but a queue lives on one leader; ActiveMQ Classic scales out with networks of "
         "brokers, not here."),
        ("ActiveMQ does worst under extreme conditions", activemq_verdict, activemq_why),
    ]


def measured_section(results: dict) -> str:
    load, where = results["load"], results["machine"]
    kind = "a quick smoke run" if results.get("quick") else "a full run"
    lines = [
        f"Run `{results['run_id'][:12]}`, {results['started_at']} to {results.get('finished_at', '?')}: {kind} on "
        f"{where['cpus']} cores ({where['platform']}, Python {where['python']}), load average "
        f"{where['load_average_at_start'][0]} at start. Load: {load['messages']} events per publish, consumer and kill "
        f"measurement; {load['orders']} orders at {load['order_rate']:g}/s through the API for latency; "
        f"{load['ordering_orders']} orders (a purchase and its cancellation each) per ordering measurement"
        + (f"; {load['restart_orders']} orders around a broker restart." if load["restart"] else
           "; no broker restart."),
        "",
        figures_table(results).rstrip("\n"),
        "",
        *(["A quick run checks the machinery end to end; a few dozen messages on a shared machine are not figures "
           "to draw conclusions from. The full run is `python manage.py brokers compare`.", ""]
          if results.get("quick") else []),
        "Skipped or failed brokers, and each figure's exact definition, are in "
        "[brokers-comparison.json](brokers-comparison.json) and [bench/comparison/measures.py](../bench/comparison/measures.py).",
        "",
        "### The lesson's claims",
        "",
    ]
    for claim, verdict, why in claims(results):
        lines.append(f"- **{claim}**: *{verdict}*. {why[0].upper() + why[1:].rstrip('.')}.")
    return "\n".join(lines) + "\n"


def write_docs(results_path: Path = RESULTS, page: Path = PAGE) -> None:
    results = json.loads(results_path.read_text())
    text = page.read_text()
    if text.count(START) != 1 or text.count(END) != 1:
        raise SystemExit(f"{page} needs one {START} and one {END}")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    page.write_text(f"{before}{START}\n{measured_section(results)}{END}{after}")
