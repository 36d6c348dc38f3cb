"""Typed reads of untrusted JSON: a field that is not the expected shape reads as empty."""

from __future__ import annotations

from typing import Any


def json_object(value: Any) -> dict:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def json_array(value: Any) -> list:
    """``value`` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []
