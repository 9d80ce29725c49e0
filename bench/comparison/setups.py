"""One fresh deployment per broker for the comparison, built with the integration tests' machinery.

The backends (fresh PostgreSQL databases, a fresh RabbitMQ vhost, a namespace on ActiveMQ and on the
SQS emulator, SQLite files for the embedded default) and the `Stack` of real processes come from
tests/integration/backends.py and stack.py: imported, not copied. What this module adds: the URL
with each broker's ordering option, the broker's own process (its memory, its restart), and
`Unavailable` for a broker that cannot be reached, which the run reports as skipped.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration import backends as it

BROKERS = ("embedded", "rabbitmq", "activemq", "sqs")
# The SQS visibility timeout of the comparison's queues: a killed consumer's messages come back
# after it (30 s by default; shorter here so the kill measurement does not wait half a minute).
SQS_VISIBILITY_TIMEOUT = 5


class Unavailable(Exception):
    """The broker (or the database it runs with) cannot be reached: the run skips it and says why."""


@dataclass
class Setup:
    broker: str
    backend: it.Backend
    ordered_url: str | None  # BROKER_URL with the broker's ordering option, None where it has none
    ordering_option: str  # what that option is, for the report


def _require(name: str, host: str, port: int) -> None:
    if not it._reachable(host, port):
        raise Unavailable(f"{name} is not reachable on {host}:{port}")


@contextmanager
def broker_setup(broker: str, folder: Path):
    """A fresh backend for `broker`; removed afterwards. Raises Unavailable before creating anything."""
    with ExitStack() as cleanup:
        if broker == "embedded":
            databases = it.SqliteDatabases(folder / "embedded")
            databases.create()
            cleanup.callback(databases.drop)
            url = f"eventshop-sqlite:///{folder / 'embedded' / 'broker.sqlite3'}"
            yield Setup(broker, it.Backend("embedded", databases, url), None,
                        "none: one queue per subscriber, in order for one consumer")
            return
        _require("PostgreSQL", it.POSTGRES_HOST, it.POSTGRES_PORT)
        if broker == "rabbitmq":
            _require("RabbitMQ", it.RABBITMQ_HOST, it.RABBITMQ_PORT)
            if not shutil.which("rabbitmqctl"):
                raise Unavailable("rabbitmqctl is not on the PATH")
        elif broker == "activemq":
            _require("ActiveMQ (STOMP)", it.ACTIVEMQ_HOST, it.ACTIVEMQ_STOMP_PORT)
        elif broker == "sqs":
            _require("the SQS + SNS emulator", it.SQS_HOST, it.SQS_PORT)
        else:
            raise ValueError(f"unknown broker {broker!r}; one of {', '.join(BROKERS)}")
        databases = it.PostgresDatabases()
        databases.create()
        cleanup.callback(databases.drop)
        if broker == "rabbitmq":
            vhost, ordered_vhost = it.RabbitMQVhost(), it.RabbitMQVhost()
            for each in (vhost, ordered_vhost):
                each.create()
                cleanup.callback(each.delete)
            yield Setup(broker, it.Backend("rabbitmq+postgres", databases, vhost.url),
                        f"{ordered_vhost.url}?single_active_consumer=1", "single active consumer (x-single-active-consumer)")
        elif broker == "activemq":
            url = f"stomp://{it.ACTIVEMQ_HOST}:{it.ACTIVEMQ_STOMP_PORT}?namespace=cmp{uuid.uuid4().hex[:8]}"
            # Message groups are always on (JMSXGroupID = the order id): the option is the default.
            yield Setup(broker, it.Backend("activemq+postgres", databases, url), url,
                        "message groups (JMSXGroupID = order id), always on")
        else:
            endpoint = f"http://{it.SQS_HOST}:{it.SQS_PORT}"
            url = (f"sqs://us-east-1?endpoint={endpoint}&namespace=cmp{uuid.uuid4().hex[:8]}"
                   f"&visibility_timeout={SQS_VISIBILITY_TIMEOUT}")
            ordered = (f"sqs://us-east-1?endpoint={endpoint}&namespace=cmpfifo{uuid.uuid4().hex[:8]}&fifo=1"
                       f"&visibility_timeout={SQS_VISIBILITY_TIMEOUT}")
            yield Setup(broker, it.Backend("sqs+postgres", databases, url), ordered,
                        "FIFO queues (fifo=1), message group = order id")


# --- the broker's own process -------------------------------------------------------------------

# How to recognise each broker's server process in /proc: (description, test on its command line).
BROKER_PROCESSES = {
    "rabbitmq": ("beam.smp (RabbitMQ)", lambda argv: argv and argv[0].endswith("beam.smp") and "rabbit" in " ".join(argv)),
    "activemq": ("java (ActiveMQ)", lambda argv: argv and argv[0].endswith("java") and any("activemq" in a for a in argv)),
    "sqs": ("python (moto server)", lambda argv: any(a == "moto.server" or a.endswith("moto_server") for a in argv)),
}


def _processes():
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        yield int(entry.name), [a for a in argv if a]


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def broker_process(broker: str) -> tuple[int, list[str]] | None:
    """(pid, argv) of the broker's server process on this machine, or None. For RabbitMQ, the node
    rabbitmqctl talks to (RABBITMQ_NODENAME) says its own pid."""
    if broker == "rabbitmq":
        try:
            answer = subprocess.run(["rabbitmqctl", "eval", "os:getpid()."], capture_output=True, text=True, timeout=60)
            pid = int(answer.stdout.strip().splitlines()[-1].strip('"'))
            return pid, (Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0"))
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            pass  # fall back to the process table
    matches = BROKER_PROCESSES[broker][1]
    for pid, argv in _processes():
        if matches(argv):
            return pid, argv
    return None


def broker_memory(setup: Setup) -> dict:
    """Resident memory of the broker's process; the embedded broker's file size instead."""
    if setup.broker == "embedded":
        path = Path(setup.backend.broker_url.removeprefix("eventshop-sqlite://"))
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
        return {"what": "broker file size (SQLite file and its WAL)", "mib": round(size / 2**20, 2)}
    found = broker_process(setup.broker)
    if found is None:
        return {"error": f"no {BROKER_PROCESSES[setup.broker][0]} process found on this machine"}
    rss = _rss_kib(found[0])
    note = "the whole server process: other users of this broker on the machine count too"
    return {"what": f"RSS of {BROKER_PROCESSES[setup.broker][0]}, pid {found[0]}", "mib": round(rss / 1024, 1),
            "note": note}


# --- restarting the broker --------------------------------------------------------------------------

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def restart_plan(broker: str) -> tuple[str, str]:
    """("restart" | "not measurable", why)."""
    if broker == "embedded":
        return "not measurable", "no broker process: the broker is a SQLite file, which a restart of nothing keeps"
    if broker == "sqs":
        return "not measurable", ("the emulator keeps nothing across a restart (moto holds queues in memory); "
                                  "AWS runs SQS as a managed service, which one machine cannot restart")
    return "restart", ""


def stop_broker(broker: str) -> None:
    if broker == "rabbitmq":
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)
    elif broker == "activemq":
        subprocess.run(["bash", str(PROJECT_ROOT / "scripts/activemq/stop.sh")], check=True, capture_output=True,
                       timeout=120, env={**os.environ, "ACTIVEMQ_BASE": _activemq_base()})
    else:
        raise ValueError(broker)


def start_broker(broker: str, base: str | None = None) -> None:
    if broker == "rabbitmq":
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=180)
    elif broker == "activemq":
        subprocess.run(["bash", str(PROJECT_ROOT / "scripts/activemq/start.sh")], check=True, capture_output=True,
                       timeout=180, env={**os.environ, "ACTIVEMQ_BASE": base or _activemq_base()})
    else:
        raise ValueError(broker)


def _activemq_base() -> str:
    """The data folder of the running ActiveMQ (its -Dactivemq.base), where its pid file is."""
    found = broker_process("activemq")
    if found is None:
        raise RuntimeError("no ActiveMQ process found")
    for argument in found[1]:
        if argument.startswith("-Dactivemq.base="):
            base = argument.split("=", 1)[1]
            if not (Path(base) / "activemq.pid").exists():
                raise RuntimeError(f"ActiveMQ was not started by scripts/activemq/start.sh (no pid file in {base})")
            return base
    raise RuntimeError("the ActiveMQ process names no -Dactivemq.base")


def wait_for_port(host: str, port: int, *, timeout: float) -> float:
    """Seconds until something listens on host:port."""
    started = time.monotonic()
    while not it._reachable(host, port):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")
        time.sleep(0.2)
    return time.monotonic() - started


BROKER_PORTS = {"rabbitmq": (it.RABBITMQ_HOST, it.RABBITMQ_PORT), "activemq": (it.ACTIVEMQ_HOST, it.ACTIVEMQ_STOMP_PORT)}
