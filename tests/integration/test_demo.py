"""`make demo` runs `manage.py demo`: every process starts, a purchase flows, and stopping stops them all."""
import os
import re
import signal
import subprocess
import sys
import time


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
