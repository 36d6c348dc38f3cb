"""The shared file cache used by `make demo`: atomic counters across processes."""

import multiprocessing

from apiyi_admin.cache import SharedFileCache


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
