"""The demo's console: the web server's access log does not drown the consumers' lines."""
import logging

import pytest

from config.logging import QuietAccessLogFilter


def access_line(request_line: str, status: int) -> logging.LogRecord:
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, '"%s" %s %s', (request_line, str(status), "12"),
                               None)
    record.status_code = status
    return record


@pytest.mark.parametrize("request_line", [
    "GET /static/shop/site.css HTTP/1.1",
    "GET /orders/42/journey/ HTTP/1.1",
    "GET /dashboards/shipping/consumers/shipping/panel/?next=/x HTTP/1.1",
    "GET /ops/state.json HTTP/1.1",
])
def test_static_files_and_polling_that_succeed_are_not_logged(request_line):
    assert not QuietAccessLogFilter().filter(access_line(request_line, 200))


def test_pages_posts_and_failures_are_still_logged():
    quiet = QuietAccessLogFilter()
    assert quiet.filter(access_line("GET /orders/42/ HTTP/1.1", 200))
    assert quiet.filter(access_line("POST /api/orders/ HTTP/1.1", 201))
    assert quiet.filter(access_line("GET /ops/state.json HTTP/1.1", 500))
    assert quiet.filter(access_line("GET /static/missing.css HTTP/1.1", 404))
