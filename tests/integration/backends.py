"""Real services for the integration and browser tests: RabbitMQ and PostgreSQL, or the embedded default.

Loaded as a pytest plugin by tests/conftest.py, so tests/integration and tests/e2e share it.

In CI (CI=true) a missing RabbitMQ or PostgreSQL fails the tests that need it, loudly; on a laptop
without them those tests skip and say why.
"""
from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import uuid
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
import requests

from tests.integration.stack import Stack

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_HOST = os.environ.get("TEST_POSTGRES_HOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("TEST_POSTGRES_PORT", "5432"))
POSTGRES_USER = os.environ.get("TEST_POSTGRES_USER", "postgres")
POSTGRES_PASSWORD = os.environ.get("TEST_POSTGRES_PASSWORD", "")
RABBITMQ_HOST = os.environ.get("TEST_RABBITMQ_HOST", "127.0.0.1")
RABBITMQ_PORT = int(os.environ.get("TEST_RABBITMQ_PORT", "5672"))
RABBITMQ_MANAGEMENT_URL = os.environ.get("TEST_RABBITMQ_MANAGEMENT_URL", f"http://{RABBITMQ_HOST}:15672")
# ActiveMQ (scripts/activemq/start.sh) over STOMP, and the SQS + SNS emulator (scripts/sqs/start.sh).
ACTIVEMQ_HOST = os.environ.get("TEST_ACTIVEMQ_HOST", "127.0.0.1")
ACTIVEMQ_STOMP_PORT = int(os.environ.get("TEST_ACTIVEMQ_STOMP_PORT", "61613"))
SQS_HOST = os.environ.get("TEST_SQS_HOST", "127.0.0.1")
SQS_PORT = int(os.environ.get("TEST_SQS_PORT", "4566"))
SERVICE_ALIASES = ("default", "shipping", "loyalty")


def pytest_collection_modifyitems(items):
    for item in items:
        path = str(item.fspath)
        if "tests/integration/" in path or "tests/e2e/" in path:
            item.add_marker(pytest.mark.integration)
        if "tests/e2e/" in path:
            item.add_marker(pytest.mark.browser)


def _reachable(host: str, port: int) -> bool:
    try:
        with closing(socket.create_connection((host, port), timeout=2)):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}: CI must run the {name} tests (start it: see README)", pytrace=False)
    pytest.skip(f"{message}; start it to run these tests")


# --- PostgreSQL --------------------------------------------------------------------------------


class PostgresDatabases:
    """Three fresh PostgreSQL databases, one per service, dropped at the end."""

    def __init__(self):
        self.prefix = f"eventshop_it_{uuid.uuid4().hex[:8]}"
        self.names = {alias: f"{self.prefix}_{alias}" for alias in SERVICE_ALIASES}

    def _admin(self):
        return psycopg.connect(host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, password=POSTGRES_PASSWORD,
                               dbname="postgres", autocommit=True)

    def create(self) -> None:
        with self._admin() as connection:
            for name in self.names.values():
                connection.execute(f'CREATE DATABASE "{name}"')

    def drop(self) -> None:
        with self._admin() as connection:
            for name in self.names.values():
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url(self, alias: str) -> str:
        auth = POSTGRES_USER + (f":{POSTGRES_PASSWORD}" if POSTGRES_PASSWORD else "")
        return f"postgres://{auth}@{POSTGRES_HOST}:{POSTGRES_PORT}/{self.names[alias]}"

    def env(self) -> dict[str, str]:
        return {"SHOP_DATABASE_URL": self.url("default"), "SHIPPING_DATABASE_URL": self.url("shipping"),
                "LOYALTY_DATABASE_URL": self.url("loyalty")}

    def sql(self, alias: str, query: str, params=()) -> list[tuple]:
        with psycopg.connect(host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, password=POSTGRES_PASSWORD,
                             dbname=self.names[alias], autocommit=True) as connection:
            cursor = connection.execute(query.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []


class SqliteDatabases:
    """The embedded default: one SQLite file per service in a temporary folder."""

    def __init__(self, folder: Path):
        self.folder = folder

    def create(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def drop(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def path(self, alias: str) -> Path:
        return self.folder / f"{alias}.sqlite3"

    def env(self) -> dict[str, str]:
        return {"SHOP_DATABASE_URL": f"sqlite:///{self.path('default')}",
                "SHIPPING_DATABASE_URL": f"sqlite:///{self.path('shipping')}",
                "LOYALTY_DATABASE_URL": f"sqlite:///{self.path('loyalty')}",
                "EVENTSHOP_VAR_DIR": str(self.folder)}

    def sql(self, alias: str, query: str, params=()) -> list[tuple]:
        # Autocommit, like the PostgreSQL helper: a test's UPDATE must be seen by the processes.
        with closing(sqlite3.connect(self.path(alias), timeout=30, isolation_level=None)) as connection:
            return connection.execute(query, params).fetchall()


# --- RabbitMQ ----------------------------------------------------------------------------------


class RabbitMQVhost:
    """A fresh virtual host, so a run never sees another run's queues or messages."""

    def __init__(self):
        self.name = f"eventshop-it-{uuid.uuid4().hex[:8]}"

    def _rabbitmqctl(self, *args: str) -> None:
        subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)

    def create(self) -> None:
        if shutil.which("rabbitmqctl"):
            self._rabbitmqctl("add_vhost", self.name)
            self._rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
            return
        # Without the CLI (RabbitMQ in a container), the management API does the same.
        auth = ("guest", "guest")
        requests.put(f"{RABBITMQ_MANAGEMENT_URL}/api/vhosts/{self.name}", auth=auth, timeout=10).raise_for_status()
        requests.put(f"{RABBITMQ_MANAGEMENT_URL}/api/permissions/{self.name}/guest", auth=auth, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()

    def delete(self) -> None:
        try:
            if shutil.which("rabbitmqctl"):
                self._rabbitmqctl("delete_vhost", self.name)
            else:
                requests.delete(f"{RABBITMQ_MANAGEMENT_URL}/api/vhosts/{self.name}", auth=("guest", "guest"), timeout=10)
        except (subprocess.SubprocessError, requests.RequestException):
            pass  # leaving a test vhost behind is untidy, not wrong

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{self.name}"


# --- the backends a stack runs on ----------------------------------------------------------------


class Backend:
    def __init__(self, name: str, databases, broker_url: str):
        self.name = name
        self.databases = databases
        self.broker_url = broker_url

    def env(self) -> dict[str, str]:
        return {**self.databases.env(), "BROKER_URL": self.broker_url}

    def sql(self, alias: str, query: str, params=()) -> list[tuple]:
        return self.databases.sql(alias, query, params)


@pytest.fixture
def rabbitmq_postgres_backend(tmp_path):
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    require_service("RabbitMQ", RABBITMQ_HOST, RABBITMQ_PORT)
    databases = PostgresDatabases()
    vhost = RabbitMQVhost()
    databases.create()
    vhost.create()
    try:
        yield Backend("rabbitmq+postgres", databases, vhost.url)
    finally:
        vhost.delete()
        databases.drop()


def _namespaced_backend(name: str, service: str, host: str, port: int, url: str):
    """PostgreSQL databases of their own and a broker URL in a namespace of its own: a run never sees
    another run's destinations or messages."""
    require_service("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    require_service(service, host, port)
    databases = PostgresDatabases()
    databases.create()
    try:
        yield Backend(name, databases, url)
    finally:
        databases.drop()


@pytest.fixture
def activemq_postgres_backend(tmp_path):
    yield from _namespaced_backend("activemq+postgres", "ActiveMQ (STOMP)", ACTIVEMQ_HOST, ACTIVEMQ_STOMP_PORT,
                                   f"stomp://{ACTIVEMQ_HOST}:{ACTIVEMQ_STOMP_PORT}?namespace=it{uuid.uuid4().hex[:8]}")


@pytest.fixture
def sqs_postgres_backend(tmp_path):
    # A short visibility timeout: a killed consumer's message comes back within the test's patience.
    yield from _namespaced_backend("sqs+postgres", "the SQS + SNS emulator", SQS_HOST, SQS_PORT,
                                   f"sqs://us-east-1?endpoint=http://{SQS_HOST}:{SQS_PORT}"
                                   f"&namespace=it{uuid.uuid4().hex[:8]}&visibility_timeout=3")


@pytest.fixture
def embedded_backend(tmp_path):
    databases = SqliteDatabases(tmp_path / "embedded")
    databases.create()
    yield Backend("embedded", databases, f"eventshop-sqlite:///{tmp_path / 'embedded' / 'broker.sqlite3'}")


BACKEND_FIXTURES = {"embedded": "embedded_backend", "rabbitmq+postgres": "rabbitmq_postgres_backend",
                    "activemq+postgres": "activemq_postgres_backend", "sqs+postgres": "sqs_postgres_backend"}


@pytest.fixture(params=["embedded", "rabbitmq+postgres"])
def backend(request):
    return request.getfixturevalue(BACKEND_FIXTURES[request.param])


@pytest.fixture(params=list(BACKEND_FIXTURES))
def any_broker_backend(request):
    """Each of the four brokers the port supports, for the scenarios run once per broker."""
    return request.getfixturevalue(BACKEND_FIXTURES[request.param])


def _stack(backend: Backend, tmp_path: Path):
    stack = Stack(backend.env(), log_dir=tmp_path)
    stack.backend = backend
    stack.prepare()
    try:
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
def stack(backend, tmp_path):
    """A prepared deployment on each backend; tests start the processes they need."""
    yield from _stack(backend, tmp_path)


@pytest.fixture
def any_broker_stack(any_broker_backend, tmp_path):
    """A prepared deployment on each of the four brokers."""
    yield from _stack(any_broker_backend, tmp_path)


@pytest.fixture
def rabbitmq_stack(rabbitmq_postgres_backend, tmp_path):
    """A prepared deployment on RabbitMQ + PostgreSQL only."""
    yield from _stack(rabbitmq_postgres_backend, tmp_path)


@pytest.fixture
def embedded_stack(embedded_backend, tmp_path):
    """A prepared deployment on the embedded default only (the browser tests)."""
    yield from _stack(embedded_backend, tmp_path)
