"""Version of the routing configuration, shared through the Django cache.

Every relay process keeps an in-memory snapshot of groups, channels, models and prices
and rebuilds it when this version changes. The version itself is read from the shared
cache at most once a second per process (`core.cache.memo`): a change made in
another process is seen within that second, in the process that made it at once.

A change bumps the version twice: at once, so readers inside the writing transaction (and
tests that run in one) rebuild from the new rows, and again once the transaction commits,
because a concurrent call that saw the first bump may have rebuilt from the rows as they were
before the commit and would otherwise keep that snapshot under the new version. The bumps
stay in `groups.signals` rather than in each service: the routing configuration is written by
the services, the admin, the DRF API, `seed_demo` and the prober, and a receiver per table
cannot be forgotten by a new write path.
"""

import time

from django.core.cache import cache
from django.db import transaction

from core.cache import memo

ROUTING_VERSION_KEY = "routing:version"


def _publish() -> str:
    version = f"{time.time_ns()}"
    cache.set(ROUTING_VERSION_KEY, version, timeout=None)
    memo.put(ROUTING_VERSION_KEY, version)
    return version


def bump_routing_version() -> str:
    """A new version now and, inside a transaction, another once it commits (one per
    transaction, however many rows it writes: a savepoint rolled back drops its own)."""
    version = _publish()
    connection = transaction.get_connection()
    if connection.in_atomic_block and not any(func is _publish for _, func, _ in connection.run_on_commit):
        transaction.on_commit(_publish)
    return version


def routing_version() -> str:
    version = memo.get(ROUTING_VERSION_KEY)
    if version is memo.MISSING:
        version = cache.get(ROUTING_VERSION_KEY)
        if version is None:
            return _publish()
        memo.put(ROUTING_VERSION_KEY, version)
    return version
