"""Cache backends for shared routing state; every caller keeps using `django.core.cache`.

- `FallbackRedisCache` (production): Redis, but when Redis cannot be reached each process
  carries on with a local-memory cache instead of failing requests, retries Redis after a
  few seconds, and reports the outage through `status()` (read by /readyz).
- `SharedFileCache` (embedded default under `make demo`): Django's file-based cache with
  a cross-process lock around read-modify-write operations, so the relay, the Celery worker
  and beat on one machine share counters and probe verdicts without any server.
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
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

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


_STATES: dict[tuple, _RedisState] = {}
_STATES_LOCK = threading.Lock()


class FallbackRedisCache(RedisCache):
    """Redis cache that degrades to per-process local memory while Redis is unreachable."""

    retry_after_s = 5.0

    def __init__(self, server, params):
        super().__init__(server, params)
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
        return "" if os.access(self._dir, os.W_OK) else f"cache folder {self._dir} is not writable"

    def status(self) -> dict:
        return {"backend": "file", "degraded": False, "reason": ""}
