"""`python manage.py loadgen`: place orders through the real API at a fixed rate, with an optional spike.

    python manage.py loadgen --url http://127.0.0.1:8000 --rate 20 --duration 30 \\
        --spike-at 10 --spike-rate 200 --spike-duration 5

Every request goes to `--url` and nowhere else (redirects are not followed). The scheduler and the
statistics live in shop/loadgen.py.
"""
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from shop.loadgen import LoadStats, RateScheduler, Spike, progress_line, send_offsets, summary_lines

PRODUCT_PAGES_MAX = 20
PROGRESS_INTERVAL_SECONDS = 0.2
LATE_WARNING_SECONDS = 0.1
# (name, line1, city, postal code, country): customers from around the EU.
EU_ADDRESSES = [
    ("Marie Curie", "11 Rue Pierre et Marie Curie", "Paris", "75005", "FR"),
    ("Max Planck", "Marktstraße 8", "Kiel", "24103", "DE"),
    ("Lise Meitner", "Boltzmanngasse 5", "Wien", "1090", "AT"),
    ("Niels Bohr", "Blegdamsvej 17", "København", "2100", "DK"),
    ("Rita Levi-Montalcini", "Via Po 14", "Torino", "10123", "IT"),
    ("Hendrik Lorentz", "Breestraat 1", "Leiden", "2311 CS", "NL"),
    ("Santiago Ramón y Cajal", "Calle de Atocha 27", "Madrid", "28012", "ES"),
    ("Maria Skłodowska", "ul. Freta 16", "Warszawa", "00-227", "PL"),
    ("Erwin Schrödinger", "Merrion Square 64", "Dublin", "D02", "IE"),
    ("Jöns Jacob Berzelius", "Drottninggatan 7", "Stockholm", "111 51", "SE"),
]


class Command(BaseCommand):
    help = "Place orders through the REST API at a given rate (with an optional spike) and report latency."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="The shop to load; the only host called.")
        parser.add_argument("--rate", type=float, default=20.0, help="Orders per second.")
        parser.add_argument("--duration", type=float, default=30.0, help="Seconds to run.")
        parser.add_argument("--spike-at", type=float, help="Seconds after the start at which the spike begins.")
        parser.add_argument("--spike-rate", type=float, default=200.0, help="Orders per second during the spike.")
        parser.add_argument("--spike-duration", type=float, default=5.0, help="How long the spike lasts, in seconds.")
        parser.add_argument("--username", default="loadgen",
                            help="Default: seed_demo's load tester, whose orders are not throttled.")
        parser.add_argument("--password", help="Default: the DEMO_PASSWORD setting.")
        parser.add_argument("--concurrency", type=int, default=16, help="Requests in flight at most.")
        parser.add_argument("--max-orders", type=int, help="Stop after sending this many orders.")
        parser.add_argument("--timeout", type=float, default=10.0, help="Seconds to wait for each answer.")
        parser.add_argument("--seed", type=int, help="Seed the random choices, to repeat a run.")

    def handle(self, *args, **options):
        self.base_url = _base_url(options["url"])
        if options["rate"] <= 0 or options["duration"] <= 0 or options["concurrency"] < 1:
            raise CommandError("--rate and --duration must be positive, --concurrency at least 1")
        self.timeout = options["timeout"]
        self.random = random.Random(options["seed"])
        self.random_lock = threading.Lock()
        self.local = threading.local()
        password = options["password"] if options["password"] is not None else settings.DEMO_PASSWORD
        self.token = self._token(options["username"], password)
        self.skus = self._skus_in_stock()

        spike = None
        if options["spike_at"] is not None:
            spike = Spike(at=options["spike_at"], rate=options["spike_rate"], duration=options["spike_duration"])
        offsets = list(send_offsets(rate=options["rate"], duration=options["duration"], spike=spike))
        total = len(offsets) if options["max_orders"] is None else min(len(offsets), options["max_orders"])
        plan = f"{options['rate']:g}/s for {options['duration']:g}s"
        if spike:
            plan += f", {spike.rate:g}/s from {spike.at:g}s for {spike.duration:g}s"
        self.stdout.write(f"Placing {total} orders on {self.base_url}: {plan}")
        self.stats = LoadStats()
        scheduler = RateScheduler(iter(offsets), max_count=options["max_orders"])
        started = time.monotonic()
        stop_progress = threading.Event()
        progress = threading.Thread(target=self._progress, args=(stop_progress, started, total), daemon=True)
        progress.start()
        try:
            interrupted = self._run(scheduler, options["concurrency"])
        finally:
            stop_progress.set()
            progress.join()
            self._draw_progress(started, total)
            self.stderr.write("", style_func=_plain)
        summary = self.stats.summary(time.monotonic() - started)
        if interrupted:
            self.stdout.write("Interrupted: the summary so far.")
        for line in summary_lines(summary):
            self.stdout.write(line)
        if self.stats.max_start_lag > LATE_WARNING_SECONDS:
            self.stdout.write(f"requests started up to {self.stats.max_start_lag * 1000:.0f} ms late: all "
                              f"{options['concurrency']} slots were busy, so the server got less than the rate asked")

    def _run(self, scheduler: RateScheduler, concurrency: int) -> bool:
        """Send on schedule until done; True if Ctrl-C cut it short."""
        executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="loadgen")
        try:
            scheduler.run(lambda due: executor.submit(self._place_order, due))
            executor.shutdown(wait=True)
            return False
        except KeyboardInterrupt:
            try:
                # Drop the orders not yet sent; wait for those in flight (each within --timeout) to count them.
                executor.shutdown(wait=True, cancel_futures=True)
            except KeyboardInterrupt:
                executor.shutdown(wait=False, cancel_futures=True)  # a second Ctrl-C: do not wait
            return True

    # --- the API --------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        # One session (and connection pool) per thread: requests.Session is not thread-safe.
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.trust_env = False  # no proxies or .netrc from the environment: only --url
        return self.local.session

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self._session().request(method, f"{self.base_url}{path}", timeout=self.timeout, allow_redirects=False,
                                       **kwargs)

    def _token(self, username: str, password: str) -> str:
        try:
            response = self._request("POST", "/api/auth/token/", json={"username": username, "password": password})
        except requests.RequestException as exc:
            raise CommandError(f"cannot reach {self.base_url}: {exc}") from exc
        if response.status_code != 200:
            raise CommandError(f"no token for {username!r}: {response.status_code} {response.text[:200]}")
        return response.json()["token"]

    def _skus_in_stock(self) -> list[str]:
        skus, path = [], "/api/products/?limit=100"
        for _ in range(PRODUCT_PAGES_MAX):
            response = self._request("GET", path)
            if response.status_code != 200:
                raise CommandError(f"cannot list products: {response.status_code} {response.text[:200]}")
            page = response.json()
            skus += [product["sku"] for product in page["results"] if product["stock"] > 0]
            following = page.get("next")
            if not following or not following.startswith(f"{self.base_url}/"):
                break
            path = following[len(self.base_url):]
        if not skus:
            raise CommandError("no product is in stock")
        return skus

    def _place_order(self, due: float) -> None:
        with self.random_lock:
            skus = self.random.sample(self.skus, k=min(len(self.skus), self.random.randint(1, 3)))
            items = [{"sku": sku, "quantity": self.random.randint(1, 2)} for sku in skus]
            name, line1, city, postal_code, country = self.random.choice(EU_ADDRESSES)
        body = {"items": items, "shipping_address": {"name": name, "line1": line1, "city": city,
                                                     "postal_code": postal_code, "country": country}}
        headers = {"Authorization": f"Token {self.token}", "Idempotency-Key": f"loadgen-{uuid.uuid4()}"}
        self.stats.record_start_lag(time.monotonic() - due)
        started = time.perf_counter()
        try:
            response = self._request("POST", "/api/orders/", json=body, headers=headers)
        except requests.RequestException as exc:
            self.stats.record_error(exc)
        else:
            self.stats.record_response(response.status_code, time.perf_counter() - started)

    # --- the progress bar -----------------------------------------------------------------------

    def _progress(self, stop: threading.Event, started: float, total: int) -> None:
        while not stop.wait(PROGRESS_INTERVAL_SECONDS):
            self._draw_progress(started, total)

    def _draw_progress(self, started: float, total: int) -> None:
        done, elapsed = self.stats.done, time.monotonic() - started
        line = progress_line(done=done, total=total, rate=done / elapsed if elapsed > 0 else 0.0,
                             errors=self.stats.failed)
        self.stderr.write(f"\r{line}", style_func=_plain, ending="")
        self.stderr.flush()


def _plain(text: str) -> str:
    return text  # stderr is styled as errors by default; the progress bar is not one


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise CommandError(f"--url must be an http(s) URL such as http://127.0.0.1:8000, not {url!r}")
    return url.rstrip("/")
