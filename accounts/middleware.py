"""Activates the time zone the console shows times in, for every request."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.utils import timezone, translation


def request_time_zone(request) -> str:
    """The user's own zone, else the default zone of the active language, else TIME_ZONE."""
    user = getattr(request, "user", None)
    zone = getattr(user, "time_zone", "") if user is not None and user.is_authenticated else ""
    if not zone:
        zone = settings.LANGUAGE_TIME_ZONES.get(translation.get_language() or "", settings.TIME_ZONE)
    return zone


class TimeZoneMiddleware:
    """After LocaleMiddleware and AuthenticationMiddleware: the language is known by then."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            timezone.activate(zoneinfo.ZoneInfo(request_time_zone(request)))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
