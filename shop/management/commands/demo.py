"""`python manage.py demo`: run the whole shop as separate processes, like a small deployment.

The web server, the outbox relay, one consumer per subscriber and a Celery worker each run as a
child process, their output prefixed with their name. A child that dies is restarted (with a
growing pause), which is the self-healing half of failure isolation. Ctrl-C, SIGTERM and SIGHUP
(the terminal closed) stop them all, and a child never outlives the demo, even one killed with -9.
"""
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from messaging.brokers import BrokerConfigurationError, EventBus, adapter_class

RESTART_MAX_SECONDS = 30
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    """In each child, before exec: the kernel sends SIGTERM when the demo dies, however it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: Ctrl-C, SIGTERM and SIGHUP still stop the children


def _refuse_a_taken_port(host: str, port: str) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((host, int(port)))
        except OSError:
            raise CommandError(f"{host}:{port} is already in use (another demo still running?); "
                               f"stop it, or run on another port: make demo PORT=8001") from None


class Command(BaseCommand):
    help = "Run the web server, the relay, the consumers and a worker until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args, host, port, **options):
        try:
            self.broker_name = adapter_class().capabilities.name
        except BrokerConfigurationError as error:
            raise CommandError(str(error)) from None
        _refuse_a_taken_port(host, port)
        python = sys.executable
        self.commands = {
            "web": [python, "manage.py", "runserver", "--noreload", f"{host}:{port}"],
            "relay": [python, "manage.py", "relay"],
            "shipping": [python, "manage.py", "consume", "shipping"],
            "loyalty": [python, "manage.py", "consume", "loyalty"],
            "loyalty-bonus": [python, "manage.py", "consume", "loyalty-bonus"],
            "shop-listener": [python, "manage.py", "consume", "shop"],
            "worker": [python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO", "--concurrency", "1",
                       "--queues", ",".join(settings.WORK_QUEUES), "--hostname", "worker1@%h"],
        }
        # The demo calls itself in the sync checkout mode, and its callbacks may target this machine.
        self.child_env = {**os.environ, "PYTHONUNBUFFERED": "1", "SERVICE_BASE_URL": f"http://{host}:{port}",
                          "CALLBACK_ALLOW_PRIVATE_URLS": os.environ.get("CALLBACK_ALLOW_PRIVATE_URLS", "true")}
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False
        self.print_banner(host, port)
        # The handler only asks; the main loop stops the children (never from inside a handler).
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_stop)
        for name in self.commands:
            self.spawn(name)
        try:
            self.supervise()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop_all()

    def spawn(self, name: str) -> None:
        child = subprocess.Popen(self.commands[name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 bufsize=1, env=self.child_env, start_new_session=True,
                                 preexec_fn=_die_with_parent)
        self.children[name] = child
        self.stdout.write(f"{name:>13} | started (pid {child.pid})")
        threading.Thread(target=self.relay_output, args=(name, child), daemon=True).start()

    def relay_output(self, name: str, child: subprocess.Popen) -> None:
        for line in child.stdout:
            self.stdout.write(f"{name:>13} | {line.rstrip()}")

    def supervise(self) -> None:
        pauses = dict.fromkeys(self.commands, 1.0)
        restart_at: dict[str, float] = {}
        while not self.stopping:
            time.sleep(0.5)
            for name, child in list(self.children.items()):
                if child.poll() is None or self.stopping:
                    continue
                if name not in restart_at:
                    self.stdout.write(self.style.WARNING(
                        f"{name} exited with {child.returncode}; restarting in {pauses[name]:.0f}s"))
                    restart_at[name] = time.monotonic() + pauses[name]
                    pauses[name] = min(pauses[name] * 2, RESTART_MAX_SECONDS)
                elif time.monotonic() >= restart_at[name]:
                    del restart_at[name]
                    self.spawn(name)

    def request_stop(self, signum=None, frame=None) -> None:
        self.stopping = True

    def stop_all(self) -> None:
        self.stopping = True
        try:
            self.stdout.write("Stopping all processes...")
        except OSError:
            pass  # the terminal is gone (SIGHUP): stop the children all the same
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()

    def print_banner(self, host: str, port: str) -> None:
        base = f"http://{host}:{port}"
        self.stdout.write(self.style.SUCCESS("Eventshop is starting"))
        self.stdout.write(
            f"""
  Shop            {base}/
  API docs        {base}/api/docs/
  Admin           {base}/admin/
  Broker          {self.broker_name}: {EventBus.describe_url(settings.BROKER_URL)}
  Work queues     {EventBus.describe_url(settings.CELERY_BROKER_URL)} (Celery)

  Log in as       demo  / {settings.DEMO_PASSWORD}   (customer)
                  staff / {settings.DEMO_PASSWORD}   (staff: dashboards, admin)

  Processes: web, relay, shipping, loyalty, loyalty-bonus, shop-listener, worker. Ctrl-C stops them all.
"""
        )
