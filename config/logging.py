"""Logging pieces the settings refer to by name."""
import logging
import re


class QuietAccessLogFilter(logging.Filter):
    """The web server's access log without the lines that drown the consumers' own: static files and
    the pages' polling (an order's journey, a consumer panel, the operations state), when they succeed."""

    QUIET = re.compile(r'^"(GET|HEAD) (/static/|/media/|\S*/(journey|panel|state(\.json)?)/?[?" ])')

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        return not (status is not None and status < 400 and self.QUIET.match(record.getMessage()))
