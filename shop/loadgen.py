"""The parts of `manage.py loadgen` worth testing alone: when to send, and what came back.

The generator is open-loop: requests leave on a schedule fixed in advance, whatever the server's
speed, as real customers would arrive. (A closed loop, each request waiting for the previous one,
would slow down with the server and hide exactly the queueing a load test is meant to show.)
"""
from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Spike:
    at: float  # seconds after the start
    rate: float  # requests per second while it lasts
    duration: float


def send_offsets(*, rate: float, duration: float, spike: Spike | None = None) -> Iterator[float]:
    """Seconds after the start at which each request is due: `rate` per second, `spike.rate` during the spike.

    Computed per phase as start + i / rate, so no rounding error accumulates over a long run.
    """
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    phases = [(0.0, duration, rate)]
    if spike and spike.rate > 0 and spike.duration > 0 and spike.at < duration:
        spike_end = min(spike.at + spike.duration, duration)
        phases = [(0.0, spike.at, rate), (spike.at, spike_end, spike.rate), (spike_end, duration, rate)]
    for start, end, phase_rate in phases:
        for i in range(math.ceil((end - start) * phase_rate - 1e-9)):
            yield start + i / phase_rate


class RateScheduler:
    """Calls `issue()` at each due offset, on an injectable clock so tests need not sleep."""

    def __init__(self, offsets: Iterator[float], *, max_count: int | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.offsets = offsets
        self.max_count = max_count
        self.clock = clock
        self.sleep = sleep
        self.issued = 0

    def run(self, issue: Callable[[float], None], *, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Issue every due request (or `max_count`), then return how many; `issue` gets its due time."""
        started = self.clock()
        for offset in self.offsets:
            if self.max_count is not None and self.issued >= self.max_count:
                break
            due = started + offset
            wait = due - self.clock()
            if wait > 0:
                self.sleep(wait)
            if should_stop():
                break
            issue(due)
            self.issued += 1
        return self.issued


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class LoadStats:
    """What came back, recorded from many threads at once."""

    status_codes: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # no HTTP answer at all: exception name -> count
    latencies: list[float] = field(default_factory=list)  # seconds, one per answered request
    max_start_lag: float = 0.0  # seconds a request started after its due time, at worst
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record_response(self, status_code: int, latency: float) -> None:
        with self._lock:
            self.status_codes[status_code] += 1
            self.latencies.append(latency)

    def record_start_lag(self, lag: float) -> None:
        with self._lock:
            self.max_start_lag = max(self.max_start_lag, lag)

    def record_error(self, error: BaseException) -> None:
        with self._lock:
            self.errors[type(error).__name__] += 1

    @property
    def done(self) -> int:
        with self._lock:
            return sum(self.status_codes.values()) + sum(self.errors.values())

    @property
    def failed(self) -> int:
        """Requests that placed nothing: no answer at all, or an answer other than 200/201."""
        with self._lock:
            return _failed(self.status_codes, self.errors)

    def summary(self, elapsed: float) -> dict:
        with self._lock:
            latencies = sorted(self.latencies)
            total = sum(self.status_codes.values()) + sum(self.errors.values())
            return {
                "requests": total,
                "orders_placed": self.status_codes.get(201, 0),
                "status_codes": dict(sorted(self.status_codes.items())),
                "errors": dict(self.errors),
                "failed": _failed(self.status_codes, self.errors),
                "elapsed": elapsed,
                "achieved_rate": total / elapsed if elapsed > 0 else 0.0,
                "latency_ms": {name: percentile(latencies, p) * 1000
                               for name, p in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))},
            }


def _failed(status_codes: Counter, errors: Counter) -> int:
    return sum(count for code, count in status_codes.items() if code not in (200, 201)) + sum(errors.values())


def progress_line(*, done: int, total: int, rate: float, errors: int, width: int = 30) -> str:
    """`[#####-----] 120/300 orders  18.9/s  errors 0`"""
    filled = min(width, round(width * done / total)) if total else width
    return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} orders  {rate:.1f}/s  errors {errors}"


def summary_lines(summary: dict) -> list[str]:
    codes = ", ".join(f"{code}: {count}" for code, count in summary["status_codes"].items()) or "none"
    reasons = [f"{code}: {count}" for code, count in summary["status_codes"].items() if code not in (200, 201)]
    reasons += [f"{name}: {count}" for name, count in summary["errors"].items()]
    latency = summary["latency_ms"]
    return [
        f"orders placed   {summary['orders_placed']}",
        f"requests        {summary['requests']}",
        f"status codes    {codes}",
        f"errors          {summary['failed']}" + (f" ({', '.join(reasons)})" if reasons else ""),
        f"achieved rate   {summary['achieved_rate']:.1f}/s over {summary['elapsed']:.1f}s",
        f"latency ms      p50 {latency['p50']:.1f}  p95 {latency['p95']:.1f}  p99 {latency['p99']:.1f}"
        f"  max {latency['max']:.1f}",
    ]
