"""Short database units called from async code, giving their connection back when done.

Under ASGI each request runs its sync code in its own thread with its own connection, and
Django returns that connection only at `request_finished` — after the last byte of a
stream. With the connection pool that caps concurrent streams at the pool size. A relay
call only needs the database for its short hold and settle transactions, so each such unit
closes its connection afterwards (with the pool: hands it back).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import DatabaseError, OperationalError, connections

try:
    from psycopg_pool import PoolTimeout
except ImportError:  # an install without PostgreSQL
    PoolTimeout = None  # type: ignore[assignment,misc]  # checked for None before use


def release_connections() -> None:
    """Close (with the pool: return) this thread's connections, unless inside a transaction."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()


class _Outage:
    """Once the pool found no connection for a whole `DB_POOL_TIMEOUT`, only one unit at a time
    waits for one; the others fail at once (a 503 for their call) until a unit succeeds.
    Otherwise every waiting unit would hold a worker thread for the full timeout, and with more
    calls than threads a 503 would take many timeouts to arrive. A unit that was queued for a
    thread when the outage was found does not try either: it has waited already."""

    down = False
    since = 0.0  # when the outage was found (time.monotonic())
    trying = threading.Lock()


class _CallReach:
    """Whether a unit of this call already found the database unreachable: then the call's
    later units (snapshot rebuild, hold, refusal record...) fail at once instead of each waiting
    its own `DB_POOL_TIMEOUT`, so a call waits at most one pool timeout in all. A mutable
    holder, so the threads its units run on (each with a copy of the context) share it."""

    unreachable = False


_call: contextvars.ContextVar[_CallReach | None] = contextvars.ContextVar("db_call_reach", default=None)


@contextlib.contextmanager
def one_call():
    """The database units run inside belong to one call (see `_CallReach`)."""
    token = _call.set(_CallReach())
    try:
        yield
    finally:
        _call.reset(token)


UNREACHABLE = "the database is unreachable (no connection within DB_POOL_TIMEOUT)"


def _no_connection(exc: DatabaseError) -> bool:
    return PoolTimeout is not None and isinstance(exc.__cause__, PoolTimeout)


def releasing(fn: Callable[..., Any], queued_at: float | None = None) -> Callable[..., Any]:
    """Run `fn`, then release this thread's database connections. `queued_at`: when the unit
    was handed to a thread pool (see `_Outage`)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        call = _call.get()
        if call is not None and call.unreachable:
            raise OperationalError(UNREACHABLE)
        may_try = queued_at is None or queued_at >= _Outage.since
        trying = _Outage.down and may_try and _Outage.trying.acquire(blocking=False)
        if _Outage.down and not trying:
            if call is not None:
                call.unreachable = True
            raise OperationalError(UNREACHABLE)
        reachable = True
        try:
            return fn(*args, **kwargs)
        except DatabaseError as exc:
            reachable = not _no_connection(exc)
            raise
        finally:
            if not reachable and not _Outage.down:
                _Outage.since = time.monotonic()
            _Outage.down = not reachable
            if call is not None and not reachable:
                call.unreachable = True
            if trying:
                _Outage.trying.release()
            release_connections()

    return run


# Set by `core.lean_asgi` for the requests it serves: they have no per-request thread,
# so their units run on the event loop's thread pool, not asgiref's one process-wide sync thread.
_pooled: contextvars.ContextVar[bool] = contextvars.ContextVar("db_units_pooled", default=False)


def pool_db_units() -> None:
    """From here on in this context, `db_async` units run on a shared thread pool."""
    _pooled.set(True)


def _unit(fn: Callable[..., Any], thread_sensitive: bool) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def submit(*args, **kwargs):
        # Stamped on hand-over: a unit still queued for a thread when the outage is found fails at once.
        run = releasing(fn, queued_at=time.monotonic())
        return await sync_to_async(run, thread_sensitive=thread_sensitive)(*args, **kwargs)

    return submit


def db_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`sync_to_async(fn)` for a short database unit that holds no connection afterwards."""
    return _unit(fn, thread_sensitive=not _pooled.get())


def db_async_detached(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`db_async` for work that outlives its request (a client left mid-call): the request's
    own thread is gone by then, so the unit runs on a pool thread instead."""
    return _unit(fn, thread_sensitive=False)
