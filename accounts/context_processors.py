"""What every console page needs to show the language switcher and the time zone."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone


def zone_label(now=None) -> str:
    """'Asia/Shanghai (UTC+08:00)': the zone's name and its current offset."""
    now = timezone.localtime(now)
    offset = now.strftime("%z")
    return f"{timezone.get_current_timezone_name()} (UTC{offset[:3]}:{offset[3:]})"


def console_locale(request) -> dict:
    return {
        "CONSOLE_LANGUAGES": settings.LANGUAGES,
        "CURRENT_TZ": zone_label(),
        "SIGNUP_ENABLED": settings.SIGNUP_ENABLED,
    }
