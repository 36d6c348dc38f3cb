"""The API's one error contract, for every app's API package (the project package sees them all).

Errors always look like {"detail": "...", "code": "...", "errors": {field: [messages]}}
("errors" only for validation failures), with the right status and never a 500 for bad input.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from billing.ledger import BillingError, InsufficientBalance
from core.pricing import PricingError


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [m if k == "non_field_errors" else f"{k}: {m}" for k, v in detail.items() for m in _flatten(v)]
    if isinstance(detail, list):
        return [m for item in detail for m in _flatten(item)]
    return [str(detail)]


def _field_errors(detail, field_map: dict[str, str]) -> dict[str, list[str]]:
    if not isinstance(detail, dict):
        return {"non_field_errors": _flatten(detail)}
    out: dict[str, list[str]] = {}
    for key, value in detail.items():
        name = field_map.get(key, str(key))  # keys are field names (str)
        if name == "__all__":
            name = "non_field_errors"
        out.setdefault(name, []).extend(_flatten(value))
    return out


def _validation_response(errors: dict[str, list[str]]) -> Response:
    messages = next(iter(errors.values()), ["Invalid input."])
    first = messages[0] if messages else "Invalid input."
    return Response(
        {"detail": first, "code": "invalid", "errors": errors}, status=status.HTTP_400_BAD_REQUEST
    )


def api_exception_handler(exc, context):
    """One error shape for the whole API; service and database errors mapped to 4xx."""
    from rest_framework.views import exception_handler, set_rollback  # views import this module

    view = context.get("view")
    if not isinstance(exc, exceptions.APIException | Http404 | DjangoPermissionDenied):
        set_rollback()
    field_map = getattr(view, "error_field_map", {})
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return _validation_response(_field_errors(detail, field_map))
    if isinstance(exc, exceptions.ValidationError):
        return _validation_response(_field_errors(exc.detail, field_map))
    if isinstance(exc, InsufficientBalance):
        return Response({"detail": str(exc), "code": exc.code}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, (BillingError, PricingError)):
        code = getattr(exc, "code", "pricing_error")
        return Response({"detail": str(exc), "code": code}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, (ProtectedError, RestrictedError)):
        return Response(
            {"detail": "Still in use by other objects; remove those references first.", "code": "in_use"},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, DataError):
        return Response(
            {
                "detail": "A value cannot be stored (e.g. a NUL character or an impossible date).",
                "code": "invalid",
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, IntegrityError):
        return Response(
            {"detail": "Conflicts with existing data.", "code": "conflict"}, status=status.HTTP_409_CONFLICT
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        detail = exc.detail if isinstance(exc.detail, str) else " ".join(_flatten(exc.detail))
        response.data = {"detail": str(detail), "code": code}
    return response


ERROR_RESPONSES = {
    "400": "Invalid input: `errors` names each field and what is wrong with it.",
    "401": "Missing, invalid, expired or revoked credentials (or an sk- relay key).",
    "403": "Not allowed: operators only, or a read-only management key writing.",
    "404": "No such object among yours.",
}
WRITE_ERROR_RESPONSES = {"409": "Conflicts with the current state (e.g. balance would go negative)."}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: document the one error shape on every operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = {
        "type": "object",
        "properties": {
            "detail": {"type": "string"},
            "code": {"type": "string"},
            "errors": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
        },
        "required": ["detail", "code"],
    }
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            extra = {**ERROR_RESPONSES, **(WRITE_ERROR_RESPONSES if method != "get" else {})}
            for code, description in extra.items():
                operation["responses"].setdefault(code, {"description": description, "content": ref})
    return result
