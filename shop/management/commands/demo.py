"""`python manage.py demo`: run the whole shop as separate processes, like a small deployment.

The web server, the outbox relay, one consumer per subscriber and a Celery worker each run as a
child process, their output prefixed with their name. A child that dies is restarted (with a
growing pause), which is the self-healing half of failure isolation. Ctrl-C stops them all.
"""
import os
import signal
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from messaging.brokers import EventBus, adapter_class

RESTART_MAX_SECONDS = 30


class Command(BaseCommand):
    help = "Run the web server, the relay, the consumers and a worker until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args, host, port, **options):
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
                                 bufsize=1, env=self.child_env, start_new_session=True)
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
        self.stdout.write("Stopping all processes...")
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
  Broker          {adapter_class().capabilities.name}: {EventBus.describe_url(settings.BROKER_URL)}
  Work queues     {EventBus.describe_url(settings.CELERY_BROKER_URL)} (Celery)

  Log in as       demo  / {settings.DEMO_PASSWORD}   (customer)
                  staff / {settings.DEMO_PASSWORD}   (staff: dashboards, admin)

  Processes: web, relay, shipping, loyalty, loyalty-bonus, shop-listener, worker. Ctrl-C stops them all.
"""
        )
