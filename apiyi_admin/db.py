"""Short database units called from async code, giving their connection back when done.

Under ASGI each request runs its sync code in its own thread with its own connection, and
Django returns that connection only at `request_finished` — after the last byte of a
stream. With the connection pool that caps concurrent streams at the pool size. A relay
call only needs the database for its short hold and settle transactions, so each such unit
closes its connection afterwards (with the pool: hands it back).
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import DatabaseError, OperationalError, connections

try:
    from psycopg_pool import PoolTimeout
except ImportError:  # an install without PostgreSQL
    PoolTimeout = None


def release_connections() -> None:
    """Close (with the pool: return) this thread's connections, unless inside a transaction."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()


class _Outage:
    """Once the pool found no connection for a whole `DB_POOL_TIMEOUT`, only one unit at a time
    waits for one; the others fail at once (a 503 for their call) until a unit succeeds.
    Otherwise every waiting unit would hold a worker thread for the full timeout, and with more
    calls than threads a 503 would take many timeouts to arrive."""

    down = False
    trying = threading.Lock()


def _no_connection(exc: DatabaseError) -> bool:
    return PoolTimeout is not None and isinstance(exc.__cause__, PoolTimeout)


def releasing(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run `fn`, then release this thread's database connections."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        trying = _Outage.down and _Outage.trying.acquire(blocking=False)
        if _Outage.down and not trying:
            raise OperationalError("the database is unreachable (no connection within DB_POOL_TIMEOUT)")
        reachable = True
        try:
            return fn(*args, **kwargs)
        except DatabaseError as exc:
            reachable = not _no_connection(exc)
            raise
        finally:
            _Outage.down = not reachable
            if trying:
                _Outage.trying.release()
            release_connections()

    return run


# Set by `apiyi_admin.lean_asgi` for the requests it serves: they have no per-request thread,
# so their units run on the event loop's thread pool, not asgiref's one process-wide sync thread.
_pooled: contextvars.ContextVar[bool] = contextvars.ContextVar("db_units_pooled", default=False)


def pool_db_units() -> None:
    """From here on in this context, `db_async` units run on a shared thread pool."""
    _pooled.set(True)


def db_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`sync_to_async(fn)` for a short database unit that holds no connection afterwards."""
    return sync_to_async(releasing(fn), thread_sensitive=not _pooled.get())


def db_async_detached(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`db_async` for work that outlives its request (a client left mid-call): the request's
    own thread is gone by then, so the unit runs on a pool thread instead."""
    return sync_to_async(releasing(fn), thread_sensitive=False)
