"""Version of the routing configuration, shared through the Django cache.

Every relay process keeps an in-memory snapshot of groups, channels, models and prices
and rebuilds it when this version changes. The version itself is read from the shared
cache at most once a second per process (`core.cache.memo`): a change made in
another process is seen within that second, in the process that made it at once.
"""

import time

from django.core.cache import cache

from core.cache import memo

ROUTING_VERSION_KEY = "routing:version"


def bump_routing_version() -> str:
    version = f"{time.time_ns()}"
    cache.set(ROUTING_VERSION_KEY, version, timeout=None)
    memo.put(ROUTING_VERSION_KEY, version)
    return version


def routing_version() -> str:
    version = memo.get(ROUTING_VERSION_KEY)
    if version is memo.MISSING:
        version = cache.get(ROUTING_VERSION_KEY)
        if version is None:
            return bump_routing_version()
        memo.put(ROUTING_VERSION_KEY, version)
    return version
