"""Pieces every API package shares: money and name fields, pagination, service saves."""

from __future__ import annotations

import re
from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import pagination, serializers

from core.pricing import MAX_AMOUNT_MICRO, cny_to_micro, format_cny

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


class Pagination(pagination.LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class ServiceSaveMixin:
    """Create and update go through a service; the serializer only parses and validates."""

    def service_save(self, instance, data: dict):
        raise NotImplementedError

    def perform_create(self, serializer):
        serializer.instance = self.service_save(None, dict(serializer.validated_data))

    def perform_update(self, serializer):
        serializer.instance = self.service_save(serializer.instance, dict(serializer.validated_data))
