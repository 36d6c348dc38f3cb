"""Version of the routing configuration, shared through the Django cache.

Every relay process keeps an in-memory snapshot of groups, channels, models and prices
and rebuilds it when this version changes.
"""

import time

from django.core.cache import cache

ROUTING_VERSION_KEY = "routing:version"


def bump_routing_version() -> str:
    version = f"{time.time_ns()}"
    cache.set(ROUTING_VERSION_KEY, version, timeout=None)
    return version


def routing_version() -> str:
    version = cache.get(ROUTING_VERSION_KEY)
    if version is None:
        version = bump_routing_version()
    return version
