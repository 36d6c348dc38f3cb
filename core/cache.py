"""Cache backends for shared routing state; every caller keeps using `django.core.cache`.

- `FallbackRedisCache` (production): Redis, but when Redis cannot be reached each process
  carries on with a local-memory cache instead of failing requests, retries Redis after a
  few seconds, and reports the outage through `status()` (read by /readyz).
- `SharedFileCache` (embedded default under `make demo`): Django's file-based cache with
  a cross-process lock around read-modify-write operations, so the relay, the Celery worker
  and beat on one machine share counters and probe verdicts without any server.
- `incr_with_ttl` / `decr_floor`: counters in one round trip on Redis, any backend otherwise.
- `LocalMemo`: per-process copies of entries read on every relay call, for at most a second.
"""

from __future__ import annotations

import fcntl
import logging
import os
import pickle
import threading
import time
import zlib
from contextlib import contextmanager

import redis.exceptions
from django.core.cache import cache as default_cache
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

log = logging.getLogger(__name__)

REDIS_DOWN_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
_WRAPPED = (
    "add",
    "get",
    "set",
    "touch",
    "delete",
    "get_many",
    "has_key",
    "incr",
    "set_many",
    "delete_many",
    "clear",
)


class _RedisState:
    """One per process and location: the Redis client (its connection pool), the local
    fallback and the outage window, shared by every cache object Django builds (one per
    ASGI request), so a call does not pay a new connection, HELLO and SELECT."""

    def __init__(self, client, local: LocMemCache):
        self.client = client
        self.local = local
        self.down_until = 0.0
        self.reason = ""
        self.lock = threading.Lock()


class _ReusedRedisClient(RedisCacheClient):
    """Django's Redis cache client, but building its `redis.Redis` wrapper once per connection
    pool instead of once per command (a visible share of a relay call's CPU)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


_STATES: dict[tuple, _RedisState] = {}
_STATES_LOCK = threading.Lock()


class FallbackRedisCache(RedisCache):
    """Redis cache that degrades to per-process local memory while Redis is unreachable."""

    retry_after_s = 5.0

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusedRedisClient
        self.retry_after_s = float(params.get("OPTIONS", {}).pop("FALLBACK_RETRY_S", self.retry_after_s))
        key = (tuple(self._servers), repr(sorted(self._options.items())), os.getpid())
        with _STATES_LOCK:
            state = _STATES.get(key)
            if state is None:
                local = LocMemCache(
                    f"redis-fallback-{len(_STATES)}-{os.getpid()}",
                    {"TIMEOUT": params.get("TIMEOUT", 300), "OPTIONS": {"MAX_ENTRIES": 100_000}},
                )
                state = _STATES[key] = _RedisState(self._class(self._servers, **self._options), local)
        self._state = state
        self._cache = state.client
        self._local = state.local

    @property
    def _reason(self) -> str:
        return self._state.reason

    def _mark_down(self, exc: Exception) -> None:
        state = self._state
        with state.lock:
            if not state.reason:
                log.warning("Redis unreachable, serving from local memory: %s", exc)
            state.reason = f"Redis unreachable ({type(exc).__name__}); using per-process local state"
            state.down_until = time.monotonic() + self.retry_after_s

    def _mark_up(self) -> None:
        state = self._state
        if state.reason:
            with state.lock:
                log.warning("Redis reachable again")
                state.reason = ""
                state.down_until = 0.0

    def _call(self, name: str, *args, **kwargs):
        down_until = self._state.down_until
        if down_until and time.monotonic() < down_until:
            return getattr(self._local, name)(*args, **kwargs)
        try:
            result = getattr(RedisCache, name)(self, *args, **kwargs)
        except REDIS_DOWN_ERRORS as exc:
            self._mark_down(exc)
            return getattr(self._local, name)(*args, **kwargs)
        self._mark_up()
        return result

    def _counter(self, on_redis, on_local, *args):
        """A counter operation on the raw Redis client, or on the local fallback while Redis is down."""
        down_until = self._state.down_until
        if not (down_until and time.monotonic() < down_until):
            try:
                result = on_redis(*args)
            except REDIS_DOWN_ERRORS as exc:
                self._mark_down(exc)
            else:
                self._mark_up()
                return result
        return on_local(self._local, *args)

    def incr_with_ttl(self, key: str, delta: int, ttl: int | None) -> int:
        return self._counter(self._redis_incr_with_ttl, _generic_incr_with_ttl, key, delta, ttl)

    def decr_floor(self, key: str, ttl: int | None) -> int:
        return self._counter(self._redis_decr_floor, _generic_decr_floor, key, ttl)

    def _redis_incr_with_ttl(self, key: str, delta: int, ttl: int | None) -> int:
        # SET NX + INCRBY pipelined: the same as add() then incr(), in one round trip.
        key = self.make_and_validate_key(key)
        with self._cache.get_client(key, write=True).pipeline(transaction=False) as pipe:
            pipe.set(key, 0, ex=ttl, nx=True)
            pipe.incrby(key, delta)
            return pipe.execute()[1]

    def _redis_decr_floor(self, key: str, ttl: int | None) -> int:
        key = self.make_and_validate_key(key)
        client = self._cache.get_client(key, write=True)
        value = client.decr(key)
        if value < 0:  # the counter had expired (or was cleared): start again from zero
            client.set(key, 0, ex=ttl)
            value = 0
        return value

    def ping(self) -> str:
        """Check Redis now (ignoring the retry window); '' when reachable, else the reason."""
        try:
            self._cache.get_client(write=True).ping()
        except REDIS_DOWN_ERRORS as exc:
            self._mark_down(exc)
            return self._reason
        self._mark_up()
        return ""

    def status(self) -> dict:
        return {"backend": "redis", "degraded": bool(self._reason), "reason": self._reason}


for _name in _WRAPPED:

    def _make(name):
        def method(self, *args, **kwargs):
            return self._call(name, *args, **kwargs)

        method.__name__ = name
        return method

    setattr(FallbackRedisCache, _name, _make(_name))


class SharedFileCache(FileBasedCache):
    """File-based cache whose add/incr/decr are atomic across processes (flock)."""

    def __init__(self, dir, params):
        super().__init__(dir, params)
        self._lock_path = os.path.join(self._dir, ".lock")

    @contextmanager
    def _locked(self):
        with open(self._lock_path, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        with self._locked():
            return super().add(key, value, timeout, version)

    def incr(self, key, delta=1, version=None):
        with self._locked():
            try:
                with open(self._key_to_file(key, version), "rb") as f:
                    expiry = pickle.load(f)  # noqa: S301 (our own cache folder, mode 0700)
                    value = pickle.loads(zlib.decompress(f.read()))  # noqa: S301
            except (FileNotFoundError, EOFError):
                raise ValueError(f"Key '{key}' not found") from None
            if expiry is not None and expiry < time.time():
                raise ValueError(f"Key '{key}' not found")
            value += delta
            self.set(key, value, None if expiry is None else max(expiry - time.time(), 0.001), version)
            return value

    def ping(self) -> str:
        folder = self._dir  # type: ignore[attr-defined]  # FileBasedCache sets it; django-stubs omit it
        return "" if os.access(folder, os.W_OK) else f"cache folder {folder} is not writable"

    def status(self) -> dict:
        return {"backend": "file", "degraded": False, "reason": ""}


def _generic_incr_with_ttl(cache, key: str, delta: int, ttl: int | None) -> int:
    cache.add(key, 0, ttl)
    try:
        return cache.incr(key, delta)
    except ValueError:  # expired between add and incr
        cache.set(key, delta, ttl)
        return delta


def _generic_decr_floor(cache, key: str, ttl: int | None) -> int:
    try:
        value = cache.decr(key)
    except ValueError:  # expired: nothing left to count down
        return 0
    if value < 0:
        cache.set(key, 0, ttl)
        value = 0
    return value


def incr_with_ttl(key: str, delta: int = 1, ttl: int | None = None, *, cache=None) -> int:
    """Add `delta` to a counter, creating it (expiring after `ttl` s, None = never) if absent.

    One round trip on Redis (SET NX + INCRBY pipelined); `add` + `incr` on other backends.
    """
    cache = default_cache if cache is None else cache
    fast = getattr(cache, "incr_with_ttl", None)
    return fast(key, delta, ttl) if fast is not None else _generic_incr_with_ttl(cache, key, delta, ttl)


def decr_floor(key: str, ttl: int | None = None, *, cache=None) -> int:
    """Count a counter down by one, never below zero; a missing counter stays at zero."""
    cache = default_cache if cache is None else cache
    fast = getattr(cache, "decr_floor", None)
    return fast(key, ttl) if fast is not None else _generic_decr_floor(cache, key, ttl)


_MISSING = object()
_MEMOS: list[LocalMemo] = []


class LocalMemo:
    """Per-process copies of shared cache entries read on every relay call, kept `ttl` seconds.

    A change made by another process is seen here within `ttl` (its writer deletes or bumps
    the shared entry); this process's own writers call `forget`/`put` and see it at once.
    """

    MISSING = _MISSING

    def __init__(self, ttl: float, max_entries: int = 10_000, clock=time.monotonic):
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[object, tuple[float, object]] = {}
        _MEMOS.append(self)

    def get(self, key):
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self.clock():
            return _MISSING
        return entry[1]

    def put(self, key, value) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (self.clock() + self.ttl, value)

    def forget(self, key) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


def clear_memos() -> None:
    """Forget every process-local memo (tests, after clearing the shared cache)."""
    for local in _MEMOS:
        local.clear()


# Token lookups and the routing version: another process's change is seen within a second.
memo = LocalMemo(ttl=1.0)
