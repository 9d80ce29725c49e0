"""What the benchmarks share: fresh backends (a RabbitMQ vhost and PostgreSQL databases, or SQLite files
in a temporary folder), and a child process that configures Django for one backend.

Django reads its settings once per process, so each backend is measured in its own child process:
the parent creates the backend, runs `python bench/<name>.py --child ...` with the backend's
environment variables, reads the JSON the child prints last, and removes the backend.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
RABBITMQ = "127.0.0.1:5672"
SERVICE_ALIASES = {"SHOP_DATABASE_URL": "shop", "SHIPPING_DATABASE_URL": "shipping", "LOYALTY_DATABASE_URL": "loyalty"}
BACKENDS = ("embedded", "rabbitmq+postgres", "activemq+postgres", "sqs+postgres")
ACTIVEMQ = "127.0.0.1:61613"
SQS = "127.0.0.1:4566"

# Every child runs like a deployed process: no debug query log (DEBUG is on by default for the demo),
# quiet logs. Everything else keeps its default.
COMMON_ENV = {"DJANGO_SETTINGS_MODULE": "config.settings.base", "DJANGO_DEBUG": "false", "LOG_LEVEL": "WARNING",
              "PYTHONUNBUFFERED": "1"}


@contextmanager
def rabbitmq_postgres():
    """Three fresh PostgreSQL databases and a fresh RabbitMQ virtual host; yields their env vars."""
    import psycopg

    prefix = f"eventshop_bench_{uuid.uuid4().hex[:8]}"
    vhost = prefix.replace("_", "-")
    names = {variable: f"{prefix}_{service}" for variable, service in SERVICE_ALIASES.items()}
    with psycopg.connect(dbname="postgres", autocommit=True, **POSTGRES) as admin:
        for name in names.values():
            admin.execute(f'CREATE DATABASE "{name}"')
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield {**{variable: f"postgres://postgres@127.0.0.1:5432/{name}" for variable, name in names.items()},
               "BROKER_URL": f"amqp://guest:guest@{RABBITMQ}/{vhost}"}
    finally:
        _rabbitmqctl("delete_vhost", vhost)
        with psycopg.connect(dbname="postgres", autocommit=True, **POSTGRES) as admin:
            for name in names.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def embedded():
    """The embedded default: SQLite files for the three services and the broker, in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="eventshop-bench-"))
    try:
        yield {**{variable: f"sqlite:///{folder / f'{service}.sqlite3'}" for variable, service in SERVICE_ALIASES.items()},
               "BROKER_URL": f"eventshop-sqlite:///{folder / 'broker.sqlite3'}", "EVENTSHOP_VAR_DIR": str(folder)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def postgres_with(broker_url: str):
    """Three fresh PostgreSQL databases beside a broker whose namespace keeps this run apart."""
    import psycopg

    prefix = f"eventshop_bench_{uuid.uuid4().hex[:8]}"
    names = {variable: f"{prefix}_{service}" for variable, service in SERVICE_ALIASES.items()}
    with psycopg.connect(dbname="postgres", autocommit=True, **POSTGRES) as admin:
        for name in names.values():
            admin.execute(f'CREATE DATABASE "{name}"')
    folder = Path(tempfile.mkdtemp(prefix="eventshop-bench-"))
    try:
        yield {**{variable: f"postgres://postgres@127.0.0.1:5432/{name}" for variable, name in names.items()},
               "BROKER_URL": broker_url.format(namespace=prefix.replace("_", "")[-12:]),
               "EVENTSHOP_VAR_DIR": str(folder)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with psycopg.connect(dbname="postgres", autocommit=True, **POSTGRES) as admin:
            for name in names.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backend(name: str):
    if name == "rabbitmq+postgres":
        return rabbitmq_postgres()
    if name == "activemq+postgres":
        return postgres_with(f"stomp://{ACTIVEMQ}?namespace={{namespace}}")
    if name == "sqs+postgres":
        return postgres_with(f"sqs://us-east-1?endpoint=http://{SQS}&namespace={{namespace}}")
    return embedded()


def code_root() -> Path:
    """Where the Eventshop code under measurement lives: this checkout, or another one (`--compare-root`:
    a worktree of an older commit) so today's code and the new code are measured in the same run."""
    return Path(os.environ.get("EVENTSHOP_CODE_ROOT", PROJECT_ROOT))


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def run_child(script: str, backend_env: dict, *args: str, extra_env: dict | None = None, timeout: float = 300) -> dict:
    """Run `script --child *args` with the backend's environment; return the JSON it printed last."""
    env = {**os.environ, **COMMON_ENV, **backend_env, **(extra_env or {})}
    result = subprocess.run([sys.executable, script, "--child", *args], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{script} --child failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def django_setup() -> None:
    """Configure Django from the environment the parent set, and migrate every service's database."""
    sys.path.insert(0, str(code_root()))
    os.chdir(code_root())
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_all", verbosity=0)


def purchase_event(order_id: int, *, customer_id: int = 7):
    """A realistic purchase: two lines, a standard value band (so no bonus subscriber gets it)."""
    from decimal import Decimal

    from messaging.events import Address, PurchaseConfirmed, PurchaseLine

    return PurchaseConfirmed(
        order_id=order_id,
        order_number=f"ES-BENCH-{order_id:08d}",
        customer_id=customer_id,
        customer_email=f"customer{customer_id}@example.com",
        lines=[PurchaseLine(sku="MUG-ENAMEL", name="Enamel camping mug", quantity=2, unit_price=Decimal("12.50")),
               PurchaseLine(sku="NOTEBOOK-A5", name="A5 dotted notebook", quantity=1, unit_price=Decimal("14.00"))],
        total=Decimal("39.00"),
        currency="EUR",
        shipping_address=Address(name="Ada Lovelace", line1="12 St James's Square", city="London",
                                 postal_code="SW1Y 4JH", country="GB"),
    )


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
