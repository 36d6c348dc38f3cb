"""Django builds a cache object per ASGI request; they must share one Redis client and pool."""

from core.cache import FallbackRedisCache


def _cache(location: str) -> FallbackRedisCache:
    return FallbackRedisCache(location, {"OPTIONS": {"socket_connect_timeout": 0.2}})


def test_cache_objects_of_one_location_share_client_and_outage_state():
    first, second = _cache("redis://127.0.0.1:1/0"), _cache("redis://127.0.0.1:1/0")
    assert first._cache is second._cache
    assert first._local is second._local
    first.set("k", 1)  # port 1 refuses: marks the location down, serves from local memory
    assert second.status()["degraded"] is True
    assert second.get("k") == 1


def test_other_location_gets_its_own_client():
    assert _cache("redis://127.0.0.1:1/0")._cache is not _cache("redis://127.0.0.1:1/1")._cache


def test_commands_reuse_one_redis_wrapper_per_pool():
    client = _cache("redis://127.0.0.1:1/2")._cache
    assert client.get_client(write=True) is client.get_client("key", write=True)
    assert client.get_client() is client.get_client(write=True)  # one server: reads go there too
