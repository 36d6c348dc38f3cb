"""Pieces every API package shares: money fields, permissions, pagination, error format.

Errors always look like {"detail": "...", "code": "...", "errors": {field: [messages]}}
("errors" only for validation failures), with the right status and never a 500 for bad input.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, pagination, permissions, serializers, status
from rest_framework.response import Response

from accounts.models import ManagementKey
from billing.ledger import MAX_AMOUNT_MICRO, BillingError, InsufficientBalance
from billing.pricing import PricingError, cny_to_micro, format_cny
from groups.models import TokenGroup

MONEY_PATTERN = r"^-?[0-9]{1,12}(\.[0-9]{1,6})?$"
_MONEY = re.compile(MONEY_PATTERN)
_PRECISE = re.compile(r"^-?[0-9]{1,12}\.[0-9]{7,}$")


@extend_schema_field({"type": "string", "format": "decimal", "pattern": MONEY_PATTERN, "example": "0.021600"})
class MoneyField(serializers.Field):
    """RMB as a decimal string with 6 places, stored as integer micro-yuan."""

    default_error_messages = {
        "invalid": 'Enter an amount in RMB as a decimal string, e.g. "12.50".',
        "negative": "The amount must not be negative.",
        "zero": "The amount must not be zero.",
        "too_large": "The amount must be at most ¥10,000,000.",
        "precision": "At most 6 decimal places.",
    }

    def __init__(self, *, allow_negative: bool = False, allow_zero: bool = True, **kwargs):
        self.allow_negative = allow_negative
        self.allow_zero = allow_zero
        super().__init__(**kwargs)

    def to_representation(self, value: int) -> str:
        return format_cny(value)

    def to_internal_value(self, data) -> int:
        if isinstance(data, bool) or not isinstance(data, (str, int)):
            self.fail("invalid")
        text = str(data).strip()
        if _PRECISE.match(text):
            self.fail("precision")
        if not _MONEY.match(text):
            self.fail("invalid")
        amount = Decimal(text)
        if amount < 0 and not self.allow_negative:
            self.fail("negative")
        if amount == 0 and not self.allow_zero:
            self.fail("zero")
        if abs(amount) > Decimal(MAX_AMOUNT_MICRO) / 1_000_000:
            self.fail("too_large")
        return cny_to_micro(amount)


class NameField(serializers.SlugRelatedField):
    """An object given and shown by its name; a NUL character is refused before any query."""

    def __init__(self, **kwargs):
        super().__init__(slug_field="name", **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)


class GroupNameField(NameField):
    """A token group given and shown by its name."""

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", TokenGroup.objects.all())
        super().__init__(**kwargs)


class IsOperator(permissions.BasePermission):
    """Operator resources: staff only (403 for everyone else who is signed in)."""

    message = "Operators only."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class KeyScope(permissions.BasePermission):
    """A read-only management key may read (and ask for quotes) but never write."""

    message = "This management key is read-only."
    code = "read_only_key"

    def has_permission(self, request, view):
        key = request.auth
        if not isinstance(key, ManagementKey) or not key.read_only:
            return True
        return request.method in permissions.SAFE_METHODS or getattr(view, "read_only_safe", False)


OPERATOR_PERMISSIONS = [permissions.IsAuthenticated, KeyScope, IsOperator]


class Pagination(pagination.LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


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


class ServiceSaveMixin:
    """Create and update go through a service; the serializer only parses and validates."""

    def service_save(self, instance, data: dict):
        raise NotImplementedError

    def perform_create(self, serializer):
        serializer.instance = self.service_save(None, dict(serializer.validated_data))

    def perform_update(self, serializer):
        serializer.instance = self.service_save(serializer.instance, dict(serializer.validated_data))


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
