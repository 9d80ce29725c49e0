"""`manage.py loadgen`: a schedule that keeps the asked rate (on a fake clock), and a run against a real
server that places real orders and reports them."""
import re
from collections import Counter
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from config.api_throttles import LOAD_TESTERS_GROUP
from shop.loadgen import LoadStats, RateScheduler, Spike, percentile, progress_line, send_offsets, summary_lines
from shop.management.commands import loadgen as loadgen_command
from shop.models import Order
from tests.factories import ProductFactory, UserFactory

ALL_DATABASES = ["default", "shipping", "loyalty"]


class FakeClock:
    """Time that passes only when someone sleeps (or a test says so)."""

    def __init__(self, start: float = 1000.0):
        self.start = self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def issue_times(offsets, *, max_count=None, work_seconds=0.0, clock=None):
    """Run a scheduler on a fake clock; return when (in seconds since the start) each request was issued."""
    clock = clock or FakeClock()
    times = []

    def issue(due):
        times.append(clock() - clock.start)
        clock.now += work_seconds  # the scheduler's own thread being slow

    RateScheduler(offsets, max_count=max_count, clock=clock, sleep=clock.sleep).run(issue)
    return times


def per_second(times) -> dict[int, int]:
    return dict(sorted(Counter(int(t + 1e-9) for t in times).items()))


# --- the schedule -----------------------------------------------------------------------------------


def test_the_scheduler_issues_the_requested_number_of_requests_each_second():
    times = issue_times(send_offsets(rate=20, duration=3))

    assert per_second(times) == {0: 20, 1: 20, 2: 20}
    assert times == sorted(times)
    assert times[1] - times[0] == pytest.approx(0.05)


def test_a_spike_raises_the_rate_for_its_duration_only():
    times = issue_times(send_offsets(rate=10, duration=6, spike=Spike(at=2, rate=100, duration=2)))

    assert per_second(times) == {0: 10, 1: 10, 2: 100, 3: 100, 4: 10, 5: 10}


def test_a_fractional_rate_keeps_its_average_over_the_run():
    assert len(issue_times(send_offsets(rate=2.5, duration=4))) == 10
    assert len(list(send_offsets(rate=7, duration=100))) == 700, "rounding drifted over a long run"


def test_max_orders_stops_the_scheduler_early():
    assert len(issue_times(send_offsets(rate=50, duration=10), max_count=25)) == 25


def test_a_scheduler_that_falls_behind_catches_up_instead_of_dropping_requests():
    times = issue_times(send_offsets(rate=10, duration=2), work_seconds=0.15)

    assert len(times) == 20
    assert times[-1] == pytest.approx(19 * 0.15)


def test_the_scheduler_stops_when_asked():
    clock = FakeClock()
    scheduler = RateScheduler(send_offsets(rate=10, duration=10), clock=clock, sleep=clock.sleep)

    issued = scheduler.run(lambda due: None, should_stop=lambda: clock() - clock.start >= 1)

    assert issued == 10


@pytest.mark.parametrize("rate, duration", [(0, 10), (-1, 10), (10, 0)])
def test_a_rate_or_duration_that_is_not_positive_is_refused(rate, duration):
    with pytest.raises(ValueError):
        list(send_offsets(rate=rate, duration=duration))


# --- the statistics and the lines they print ---------------------------------------------------------


def test_percentiles_are_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert [percentile(values, p) for p in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile([], 50) == 0.0
    assert percentile([7.0], 99) == 7.0


def test_the_summary_counts_status_codes_errors_rate_and_latency():
    stats = LoadStats()
    for latency in (0.010, 0.020, 0.030, 0.040):
        stats.record_response(201, latency)
    stats.record_response(409, 0.005)
    stats.record_error(ConnectionError("refused"))

    summary = stats.summary(elapsed=2.0)

    assert summary["orders_placed"] == 4 and summary["requests"] == 6 and summary["failed"] == 2
    assert summary["status_codes"] == {201: 4, 409: 1}
    assert summary["achieved_rate"] == 3.0
    assert summary["latency_ms"] == {"p50": pytest.approx(20), "p95": pytest.approx(40), "p99": pytest.approx(40),
                                     "max": pytest.approx(40)}
    text = "\n".join(summary_lines(summary))
    assert "orders placed   4" in text and "201: 4, 409: 1" in text
    assert "errors          2 (409: 1, ConnectionError: 1)" in text
    assert "p50 20.0  p95 40.0  p99 40.0  max 40.0" in text


def test_the_progress_bar_shows_done_out_of_total_the_rate_and_errors():
    assert progress_line(done=120, total=300, rate=18.94, errors=0, width=10) == \
        "[####------] 120/300 orders  18.9/s  errors 0"
    assert progress_line(done=300, total=300, rate=20, errors=3, width=10).startswith("[##########] 300/300")


# --- against a real server ----------------------------------------------------------------------------


@pytest.fixture
def shop_to_load(db):
    ProductFactory(sku="MUG-01", price="12.50", stock=1000)
    ProductFactory(sku="PLANT-POT", stock=0)
    # seed_demo's load tester: its orders are not throttled.
    load_tester = UserFactory(username="loadgen", password=settings.DEMO_PASSWORD)
    load_tester.groups.add(Group.objects.create(name=LOAD_TESTERS_GROUP))


def run_loadgen(*args):
    out, err = StringIO(), StringIO()
    call_command("loadgen", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def reported(out: str, label: str) -> int:
    return int(re.search(rf"^{label}\s+(\d+)", out, re.MULTILINE).group(1))


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_loadgen_places_orders_through_the_api_and_reports_them(live_server, shop_to_load, settings):
    settings.EVENTSHOP_THROTTLE_ORDERS = "5/min"  # the load tester is exempt
    # One sender: the test database is SQLite in shared-cache memory, where concurrent writers get
    # "table is locked" at once instead of waiting (the demo's SQLite files wait). Concurrency is
    # proven against the real processes (tests/integration).
    out, err = run_loadgen("--url", live_server.url, "--rate", "20", "--duration", "1.5", "--max-orders", "20",
                           "--concurrency", "1")

    orders = Order.objects.all()
    assert orders.count() == 20
    assert {line.sku for order in orders for line in order.lines.all()} == {"MUG-01"}, "ordered a sold-out product"
    assert all(1 <= line.quantity <= 2 for order in orders for line in order.lines.all())
    assert len({order.idempotency_key for order in orders}) == 20
    assert reported(out, "orders placed") == 20
    assert reported(out, "requests") == 20
    assert "status codes    201: 20" in out
    assert reported(out, "errors") == 0
    assert re.search(r"latency ms\s+p50 [\d.]+\s+p95 [\d.]+\s+p99 [\d.]+\s+max [\d.]+", out)
    assert err.split("\r")[-1].startswith("[" + "#" * 30 + "] 20/20 orders"), err


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_ctrl_c_stops_sending_and_prints_the_summary_so_far(live_server, shop_to_load, monkeypatch):
    class InterruptedAfterFive(RateScheduler):
        def run(self, issue, **kwargs):
            def issue_then_interrupt(due):
                issue(due)
                if self.issued == 4:
                    raise KeyboardInterrupt
            return super().run(issue_then_interrupt, **kwargs)

    monkeypatch.setattr(loadgen_command, "RateScheduler", InterruptedAfterFive)

    out, _ = run_loadgen("--url", live_server.url, "--rate", "50", "--duration", "10", "--concurrency", "2")

    assert "Interrupted: the summary so far." in out
    assert 1 <= reported(out, "orders placed") <= 5
    assert Order.objects.count() == reported(out, "orders placed")


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_a_wrong_password_stops_before_sending_any_order(live_server, shop_to_load):
    with pytest.raises(CommandError, match="no token for 'loadgen'"):
        run_loadgen("--url", live_server.url, "--password", "not-the-password", "--duration", "1")
    assert not Order.objects.exists()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:8000", "127.0.0.1:8000", "http://127.0.0.1:8000/?next=elsewhere"])
def test_a_url_that_is_not_a_plain_http_origin_is_refused(url):
    with pytest.raises(CommandError, match="--url must be"):
        run_loadgen("--url", url)
