"""One body for every 4xx the API answers, whichever service's view refused the request:

    {"detail": "<one-line summary>", "code": "<what refused it>", "errors": {"<field path>": ["<reason>", ...]}}

`code` is the name of the refusal (`ValidationError`, `NotAuthenticated`, `NotFound`, `OutOfStock`,
`IdempotencyKeyReused`, ...). `errors` maps a dotted field path (`items.1.quantity`,
`shipping_address.country`, `Idempotency-Key`) to its reasons; it is empty when no field is at fault.
This module imports no service's models, so shipping and loyalty use it too.
"""
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import exceptions, serializers
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler


class ApiError(exceptions.APIException):
    """A refusal with field-level reasons: what a view raises when it translates a domain exception."""

    def __init__(self, *, status_code: int, code: str, errors: dict[str, list[str]], detail: str | None = None):
        self.status_code = status_code
        self.errors = errors
        super().__init__(detail=detail or _summary(errors), code=code)


def api_exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()  # Http404's own message can name the model; say no more than "not found"
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    # DRF's handler sets WWW-Authenticate (keeping 401s as 401s), Retry-After and the rollback flag.
    response = exception_handler(exc, context)
    if response is None:
        return None
    response.data = error_body(exc)
    return response


def error_body(exc: exceptions.APIException) -> dict:
    if isinstance(exc, ApiError):
        return {"detail": str(exc.detail), "code": exc.detail.code, "errors": exc.errors}
    if isinstance(exc.detail, (dict, list)):
        errors = dict(_flatten(exc.detail))
        summary = _summary(errors) if isinstance(exc, exceptions.ValidationError) else str(exc.default_detail)
        return {"detail": summary, "code": type(exc).__name__, "errors": errors}
    return {"detail": str(exc.detail), "code": type(exc).__name__, "errors": {}}


def _flatten(detail, path: str = ""):
    """Turn DRF's nested error structure into (dotted path, [reasons]) pairs.

    Non-field errors of a nested serializer belong to the field holding it (`items`, not
    `items.non_field_errors`); only at the top level do they keep DRF's `non_field_errors` key.
    """
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY and path:
                yield from _flatten(value, path)
            else:
                yield from _flatten(value, f"{path}.{key}" if path else str(key))
    elif isinstance(detail, list) and all(not isinstance(item, (dict, list)) for item in detail):
        if detail:
            yield path or api_settings.NON_FIELD_ERRORS_KEY, [str(item) for item in detail]
    elif isinstance(detail, list):
        # A list serializer's errors: one entry per item, empty for the items that were valid.
        for index, item in enumerate(detail):
            yield from _flatten(item, f"{path}.{index}" if path else str(index))
    else:
        yield path or api_settings.NON_FIELD_ERRORS_KEY, [str(detail)]


def _summary(errors: dict[str, list[str]]) -> str:
    if not errors:
        return "Invalid input."
    path, reasons = next(iter(errors.items()))
    more = sum(len(r) for r in errors.values()) - 1
    where = "" if path == api_settings.NON_FIELD_ERRORS_KEY else f"{path}: "
    return f"{where}{reasons[0]}" + (f" (and {more} more)" if more else "")


# --- the error body in the OpenAPI schema ----------------------------------------------------------


@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A one-line summary.")
    code = serializers.CharField(help_text="What refused the request, e.g. ValidationError, OutOfStock.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Reasons by dotted field path, e.g. items.0.quantity; empty when no field is at fault.",
    )


_ERROR_DESCRIPTIONS = {
    400: "The request is invalid: see `errors` for the reasons by field.",
    401: "No credentials, or invalid ones: send `Authorization: Token <token>`.",
    403: "Authenticated, but not allowed (staff only).",
    404: "Not found, or not visible to the caller.",
    409: "Conflicts with the current state (e.g. not enough stock).",
    422: "Understood but refused (e.g. an Idempotency-Key reused with a different body).",
    429: "Too many requests: wait the `Retry-After` seconds before trying again.",
}


def error_responses(*status_codes: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the error statuses an operation can answer, all with the one error body."""
    return {code: OpenApiResponse(ErrorSerializer, description=_ERROR_DESCRIPTIONS[code]) for code in status_codes}
