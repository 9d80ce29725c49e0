"""A running Eventshop: the real web server, relay and consumer processes, as a user would start them.

Integration tests drive it through the HTTP API and look inside with plain SQL, never through the
test process's own Django, so what they see is what the processes did.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path

import requests
from messaging.brokers import OutgoingMessage, event_bus
from messaging.events import CONTENT_TYPE
from messaging.transport import register_transport_alias

register_transport_alias()

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "integration-pass"


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, *, timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last value: {last!r})")


def publish_raw(broker_url: str, body: str | bytes, routing_key: str, *, content_type: str = CONTENT_TYPE) -> None:
    """Publish a message as any producer could: straight to the events topic, no outbox."""
    body = body.encode() if isinstance(body, str) else body
    with event_bus(broker_url) as bus:
        result = bus.publish([OutgoingMessage(message_id=str(uuid.uuid4()), routing_key=routing_key, body=body,
                                              content_type=content_type)])
    assert result.error is None, f"the broker refused the message: {result.error}"


def queue_depth(broker_url: str, queue_name: str) -> dict:
    """{"ready": n, "consumers": n or None} as the broker reports them now, through the port."""
    with event_bus(broker_url) as bus:
        [depth] = bus.queue_depths([queue_name])
    return {"ready": depth.ready, "consumers": depth.consumers}


class Stack:
    """The processes of one Eventshop deployment, sharing one environment (databases, broker)."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env = {"EVENTSHOP_VAR_DIR": str(log_dir / "var"), **os.environ, **env,
                    "DJANGO_SETTINGS_MODULE": "config.settings.base", "PYTHONUNBUFFERED": "1",
                    "DEMO_PASSWORD": DEMO_PASSWORD, "DJANGO_DEBUG": "false",
                    # The tests place orders and log in far faster than any customer.
                    "EVENTSHOP_THROTTLE_LOGIN": "off", "EVENTSHOP_THROTTLE_ORDERS": "off"}
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._tokens: dict[str, str] = {}

    # --- set-up --------------------------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_ROOT, env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def prepare(self) -> None:
        # The three set-up commands a deployment runs, in one process (each start of Django costs
        # seconds, times every test). DEBUG is off, as in production: static files are served only
        # once collected.
        script = ("import django; django.setup(); from django.core.management import call_command; "
                  "call_command('migrate_all'); call_command('seed_demo'); "
                  "call_command('collectstatic', interactive=False, verbosity=0)")
        result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=self.env, capture_output=True,
                                text=True, timeout=300)
        if result.returncode != 0:
            raise AssertionError(f"preparing the deployment failed:\n{result.stdout}\n{result.stderr}")

    # --- processes -----------------------------------------------------------------------------

    def start(self, name: str, **env_overrides: str) -> None:
        commands = {
            "web": ["-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "2",
                    "--threads", "4", "--timeout", "60", "--no-control-socket"],
            "relay": ["manage.py", "relay"],
            "shipping": ["manage.py", "consume", "shipping"],
            "loyalty": ["manage.py", "consume", "loyalty"],
            "loyalty-bonus": ["manage.py", "consume", "loyalty-bonus"],
            "shop": ["manage.py", "consume", "shop"],
            "worker": ["-m", "celery", "-A", "config", "worker", "--concurrency", "1", "--queues",
                       "work.shipping-labels,work.default", "--hostname", f"{name.replace('#', '-')}@%h",
                       "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        }
        base = name.split("#")[0]  # "shipping#2" is a second shipping process
        log = open(self.log_dir / f"{name.replace('#', '-')}.log", "ab")
        self.processes[name] = subprocess.Popen([sys.executable, *commands[base]], cwd=PROJECT_ROOT,
                                                env={**self.env, **env_overrides}, stdout=log, stderr=subprocess.STDOUT)
        if base == "web":
            wait_until(self._web_is_up, timeout=30, what="the web server")

    def start_all(self) -> None:
        for name in ("web", "relay", "shipping", "loyalty", "loyalty-bonus", "shop"):
            self.start(name)

    def stop(self, name: str, *, kill: bool = False) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def wait_for_exit(self, name: str, timeout: float = 30) -> int:
        """Wait for a process to end by itself (an injected crash) and forget it."""
        process = self.processes[name]
        wait_until(lambda: process.poll() is not None, timeout=timeout, what=f"{name} to exit")
        del self.processes[name]
        return process.returncode

    def is_running(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def stop_all(self) -> None:
        # Signal every process first, then wait: they wind down together, not one after another.
        processes, self.processes = self.processes, {}
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name.replace('#', '-')}.log").read_text(errors="replace")

    def _web_is_up(self) -> bool:
        try:
            return requests.get(f"{self.base_url}/api/products/", timeout=5).status_code == 200
        except requests.RequestException:  # not listening yet, or still booting its workers
            return False

    # --- the API -------------------------------------------------------------------------------

    def token(self, username: str) -> str:
        if username not in self._tokens:
            response = requests.post(f"{self.base_url}/api/auth/token/",
                                     json={"username": username, "password": DEMO_PASSWORD}, timeout=10)
            response.raise_for_status()
            self._tokens[username] = response.json()["token"]
        return self._tokens[username]

    def api(self, method: str, path: str, *, user: str = "demo", **kwargs) -> requests.Response:
        headers = {"Authorization": f"Token {self.token(user)}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base_url}{path}", headers=headers, timeout=30, **kwargs)

    def place_order(self, items: list[dict] | None = None, **kwargs) -> dict:
        body = {
            "items": items or [{"sku": self.some_sku(), "quantity": 1}],
            "shipping_address": {"name": "Grace Hopper", "line1": "1 Navy Way", "city": "Arlington",
                                 "postal_code": "22201", "country": "US"},
        }
        response = self.api("POST", "/api/orders/", json=body, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def products(self) -> list[dict]:
        products = requests.get(f"{self.base_url}/api/products/?limit=1000", timeout=10).json()
        return products.get("results", products) if isinstance(products, dict) else products

    def some_sku(self, *, min_price: float = 0, max_price: float = float("inf")) -> str:
        products = [p for p in self.products() if min_price <= float(p["price"]) <= max_price]
        return max(products, key=lambda product: product["stock"])["sku"]

    def shipments(self, order_id: int) -> list[dict]:
        data = self.api("GET", f"/api/shipping/shipments/?order={order_id}", user="staff").json()
        return data.get("results", data) if isinstance(data, dict) else data

    def points(self, order_id: int) -> list[dict]:
        data = self.api("GET", f"/api/loyalty/transactions/?order={order_id}", user="staff").json()
        return data.get("results", data) if isinstance(data, dict) else data

    def order(self, order_id: int) -> dict:
        return self.api("GET", f"/api/orders/{order_id}/").json()
