"""Cache backends: the demo's shared file cache and the Redis cache with local fallback."""

import multiprocessing

import pytest
import redis.exceptions

from core.cache import FallbackRedisCache, SharedFileCache, decr_floor, incr_with_ttl


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


def _counters_behave(cache):
    assert incr_with_ttl("c", 1, 60, cache=cache) == 1
    assert incr_with_ttl("c", 2, 60, cache=cache) == 3
    assert cache.get("c") == 3  # readable like any cached int (the routing MGET reads it so)
    assert decr_floor("c", 60, cache=cache) == 2
    assert decr_floor("c", 60, cache=cache) == 1
    assert decr_floor("c", 60, cache=cache) == 0
    assert decr_floor("c", 60, cache=cache) == 0  # never below zero
    assert decr_floor("missing", 60, cache=cache) == 0
    assert (cache.get("missing") or 0) == 0


def test_counters_on_the_file_cache(tmp_path):
    _counters_behave(SharedFileCache(str(tmp_path), {}))


@pytest.mark.redis
def test_counters_on_redis_take_one_round_trip_and_expire_from_creation(settings):
    cache = FallbackRedisCache(settings.REDIS_URL, {"KEY_PREFIX": "counters"})
    cache.delete_many(["c", "missing", "t"])
    _counters_behave(cache)
    client = cache._cache.get_client(write=True)
    incr_with_ttl("t", 1, 60, cache=cache)
    key = cache.make_and_validate_key("t")
    client.expire(key, 30)
    incr_with_ttl("t", 1, 60, cache=cache)
    assert 0 < client.ttl(key) <= 30  # a busy counter still expires (a crashed process's counts go)
    assert cache.get("t") == 2


@pytest.mark.redis
def test_counters_fall_back_to_local_memory_while_redis_is_down(settings, monkeypatch):
    options = {"OPTIONS": {"FALLBACK_RETRY_S": 0}, "KEY_PREFIX": "cdown"}
    cache = FallbackRedisCache(settings.REDIS_URL, options)
    cache.delete_many(["c", "missing"])

    def outage(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(cache._cache, "get_client", outage)
    _counters_behave(cache)
    assert cache.status()["degraded"]
    monkeypatch.undo()
    assert cache.ping() == ""
