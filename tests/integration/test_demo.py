"""`make demo` runs `manage.py demo`: every process starts, a purchase flows, and stopping stops them all."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.stack import PROJECT_ROOT, Stack, free_port, wait_until


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) is gone for our purposes.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_the_demo_runs_every_process_and_stops_them_all_on_sigterm(embedded_backend, tmp_path):
    stack = Stack(embedded_backend.env(), log_dir=tmp_path)
    stack.prepare()
    port = free_port()
    log = open(tmp_path / "demo.log", "w+")
    demo = subprocess.Popen([sys.executable, "manage.py", "demo", "--port", str(port)], cwd=PROJECT_ROOT,
                            env={**stack.env, "DJANGO_DEBUG": "true"}, stdout=log, stderr=subprocess.STDOUT)
    try:
        stack.base_url = f"http://127.0.0.1:{port}"
        wait_until(stack._web_is_up, timeout=60, what="the demo's web server")
        order = stack.place_order()
        wait_until(lambda: stack.order(order["id"])["status"] == "fulfilled", timeout=60, what="the order to be fulfilled")
        pids = [int(pid) for pid in re.findall(r"started \(pid (\d+)\)", (tmp_path / "demo.log").read_text())]
        assert len(pids) == 7, "web, relay, shipping, loyalty, loyalty-bonus, shop listener, worker"
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    assert [pid for pid in pids if _alive(pid)] == [], "a child outlived the demo"


def _start_demo(stack: Stack, tmp_path, port: int) -> tuple[subprocess.Popen, list[int]]:
    log = open(tmp_path / "demo.log", "w+")
    demo = subprocess.Popen([sys.executable, "manage.py", "demo", "--port", str(port)], cwd=PROJECT_ROOT,
                            env={**stack.env, "DJANGO_DEBUG": "true"}, stdout=log, stderr=subprocess.STDOUT)
    stack.base_url = f"http://127.0.0.1:{port}"
    wait_until(stack._web_is_up, timeout=60, what="the demo's web server")
    pids = wait_until(lambda: len(found := re.findall(r"started \(pid (\d+)\)", (tmp_path / "demo.log").read_text())) == 7
                      and [int(pid) for pid in found], what="seven children")
    return demo, pids


@pytest.mark.parametrize("stop_signal", [signal.SIGHUP, signal.SIGKILL], ids=["terminal-closed", "demo-killed"])
def test_closing_the_terminal_or_killing_the_demo_stops_every_child_and_frees_the_port(embedded_backend, tmp_path,
                                                                                       stop_signal):
    stack = Stack(embedded_backend.env(), log_dir=tmp_path)
    stack.prepare()
    port = free_port()
    demo, pids = _start_demo(stack, tmp_path, port)

    demo.send_signal(stop_signal)
    demo.wait(timeout=30)

    wait_until(lambda: not any(_alive(pid) for pid in pids), timeout=20, what="every child to stop")
    # The next demo may take the port again.
    again = subprocess.run([sys.executable, "-c", f"import socket; socket.socket().bind(('127.0.0.1', {port}))"])
    assert again.returncode == 0


def test_a_demo_on_a_port_already_taken_says_so_in_one_line_and_exits(embedded_backend, tmp_path):
    import socket

    stack = Stack(embedded_backend.env(), log_dir=tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "manage.py", "demo", "--port", str(port)], cwd=PROJECT_ROOT,
                                env=stack.env, capture_output=True, text=True, timeout=60)

    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"CommandError: 127.0.0.1:{port} is already in use (another demo still running?); "
        "stop it, or run on another port: make demo PORT=8001")
    assert "started (pid" not in result.stdout
