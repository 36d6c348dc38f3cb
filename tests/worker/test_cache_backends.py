"""Cache backends: the demo's shared file cache and the Redis cache with local fallback."""

import multiprocessing

import pytest
import redis.exceptions

from apiyi_admin.cache import FallbackRedisCache, SharedFileCache


def _bump(location, n):
    cache = SharedFileCache(location, {})
    for _ in range(n):
        cache.incr("counter")


def test_incr_is_atomic_across_processes(tmp_path):
    cache = SharedFileCache(str(tmp_path), {})
    cache.set("counter", 0, None)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_bump, args=(str(tmp_path), 40)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert cache.get("counter") == 160


def test_incr_keeps_expiry_and_refuses_missing_keys(tmp_path):
    cache = SharedFileCache(str(tmp_path), {})
    assert cache.add("k", 1, 60) is True
    assert cache.add("k", 5, 60) is False
    assert cache.incr("k", 2) == 3
    assert cache.decr("k") == 2
    try:
        cache.incr("missing")
    except ValueError:
        pass
    else:
        raise AssertionError("incr of a missing key must raise ValueError")
    assert cache.ping() == ""


@pytest.mark.redis
def test_redis_fallback_degrades_and_comes_back(settings, monkeypatch):
    cache = FallbackRedisCache(settings.REDIS_URL, {"OPTIONS": {"FALLBACK_RETRY_S": 0}, "KEY_PREFIX": "fb"})
    cache.set("k", "in redis")
    real = cache._cache.get_client

    def outage(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(cache._cache, "get_client", outage)
    cache.set("k", "local")
    assert cache.get("k") == "local"
    assert cache.status()["degraded"] and "Redis unreachable" in cache.ping()
    monkeypatch.setattr(cache._cache, "get_client", real)
    assert cache.get("k") == "in redis"  # Redis's value again once it answers
    assert cache.status() == {"backend": "redis", "degraded": False, "reason": ""}
