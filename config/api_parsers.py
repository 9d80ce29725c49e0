"""Request parsers for the API."""
from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, except that a body nested too deep to decode is a 400 rather than a 500.

    `json.load` raises RecursionError, not ValueError, for deep nesting, and DRF only turns
    ValueError into a ParseError.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the body is nested too deeply") from None
