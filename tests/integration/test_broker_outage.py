"""A lost broker is waited out: the relay and the consumers stay up, reconnect with backoff when it
returns, and nothing placed meanwhile is lost. On each networked broker; the broker itself is left
alone (a TCP proxy between it and the processes is cut and restored).

And at start: a broker that cannot be reached, or a BROKER_URL no adapter takes, is one clear line
and a non-zero exit, not a traceback.
"""
import subprocess
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from tests.integration.backends import BACKEND_FIXTURES
from tests.integration.faultproxy import TcpProxy
from tests.integration.stack import PROJECT_ROOT, Stack, free_port, wait_until


def through_proxy(url: str) -> tuple[str, TcpProxy]:
    """The same broker URL, pointed at a new proxy in front of the broker."""
    parts = urlsplit(url)
    if parts.scheme == "sqs":
        query = dict(parse_qsl(parts.query))
        endpoint = urlsplit(query["endpoint"])
        proxy = TcpProxy(endpoint.hostname, endpoint.port)
        query["endpoint"] = endpoint._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
        return parts._replace(query=urlencode(query)).geturl(), proxy
    proxy = TcpProxy(parts.hostname, parts.port)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
    return parts._replace(netloc=netloc).geturl(), proxy


@pytest.fixture(params=["rabbitmq+postgres", "activemq+postgres", "sqs+postgres"])
def proxied_stack(request, tmp_path):
    backend = request.getfixturevalue(BACKEND_FIXTURES[request.param])
    url, proxy = through_proxy(backend.broker_url)
    stack = Stack({**backend.env(), "BROKER_URL": url}, log_dir=tmp_path)
    stack.backend = backend
    stack.prepare()
    try:
        yield stack, proxy
    finally:
        stack.stop_all()
        proxy.close()


def test_the_relay_and_the_consumers_wait_out_a_lost_broker_and_lose_nothing(proxied_stack):
    stack, proxy = proxied_stack
    for name in ("web", "relay", "shipping", "loyalty"):
        stack.start(name)
    before = stack.place_order()
    wait_until(lambda: stack.shipments(before["id"]) and stack.points(before["id"]), timeout=60, what="the first order")

    proxy.cut()
    during = stack.place_order()  # commits; its event waits in the outbox
    wait_until(lambda: "lost the broker" in stack.log("shipping") and "lost the broker" in stack.log("loyalty"),
               timeout=60, what="the consumers to notice")
    for name in ("relay", "shipping", "loyalty"):
        assert stack.is_running(name), f"{name} exited while the broker was away:\n{stack.log(name)[-2000:]}"

    proxy.restore()
    after = stack.place_order()
    for order in (during, after):
        wait_until(lambda: stack.shipments(order["id"]) and stack.points(order["id"]), timeout=90,
                   what=f"{order['number']} to reach shipping and loyalty after the broker came back")
    for name in ("shipping", "loyalty"):
        assert "reconnected to the broker" in stack.log(name)
        assert stack.is_running(name)
    assert all(len(stack.shipments(order["id"])) == 1 for order in (before, during, after))


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.base", **env})


@pytest.mark.parametrize("command", [("relay",), ("consume", "shipping")])
def test_a_broker_unreachable_at_start_is_one_line_naming_broker_url_and_a_nonzero_exit(command, tmp_path):
    result = _manage(*command, BROKER_URL=f"amqp://guest:secret@127.0.0.1:{free_port()}//",
                     BROKER_START_WAIT_SECONDS="1", EVENTSHOP_VAR_DIR=str(tmp_path))

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("CommandError: BROKER_URL") and "cannot reach the broker" in last_line
    assert "Traceback" not in result.stderr and "secret" not in result.stderr


@pytest.mark.parametrize("command", [("relay",), ("consume", "shipping"), ("demo", "--port", "0")])
def test_a_broker_url_no_adapter_takes_is_one_line_and_a_nonzero_exit(command, tmp_path):
    result = _manage(*command, BROKER_URL="kafka://127.0.0.1:9092", EVENTSHOP_VAR_DIR=str(tmp_path))

    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1:] == [
        "CommandError: BROKER_URL='kafka://127.0.0.1:9092': unknown scheme 'kafka'; use one of "
        "eventshop-sqlite://, memory://, amqp://, amqps://, pyamqp://, sqs://, stomp://, stomp+ssl://"]
