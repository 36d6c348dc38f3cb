"""The fault matrix: the live relay under load while its upstreams misbehave, and nothing lost.

For every fault: no 500 (or other gateway-made 5xx) reaches a client, every call has exactly one
settled usage record, no hold is left outstanding and every wallet equals its ledger. The
concurrent variant needs PostgreSQL (SQLite's in-memory test database takes one writer); the
sequential one runs everywhere.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import time

import pytest
import redis
import requests

from groups.models import Channel
from soak.ledger import wait_for_ledger
from soak.traffic import fire, gateway_failures
from tests.relay.conftest import free_port
from tests.reliability import figures
from tests.reliability.instances import PrivateRedis, wait_until
from tests.reliability.load import CONCURRENCY, Load

pytestmark = [pytest.mark.live]


def refuse_connections(live, settings):
    """Both Claude channels point at a closed port: connection refused on every attempt."""
    for name in ("claude-official", "claude-aws"):
        channel = Channel.objects.get(name=name)
        channel.base_url = f"http://127.0.0.1:{free_port()}/v1"
        channel.save()


def sim(**rule):
    def setup(live, settings):
        live.sim.configure(**rule)

    return setup


def burst_5xx(live, settings):
    live.sim.configure(upstream="claude-official", error="500")
    live.sim.configure(upstream="claude-aws", error="503")


def slow_first_byte(live, settings):
    settings.RELAY_UPSTREAM_READ_TIMEOUT = 10
    live.sim.configure(upstream="*", latency_ms=2500)


# name: (setup, client timeout in seconds, share of streams whose client walks away)
FAULTS = {
    "connection_refused": (refuse_connections, 30, 0.0),
    "reset_mid_response": (sim(upstream="*", error="reset"), 30, 0.0),
    "stream_cut_without_terminator": (sim(upstream="*", error="cut_stream", output_tokens=200), 30, 0.0),
    "stream_error_event": (sim(upstream="*", error="stream_error"), 30, 0.0),
    "garbage_json_and_sse": (sim(upstream="*", error="garbage"), 30, 0.0),
    "slow_first_byte_beyond_client_timeout": (slow_first_byte, 1, 0.0),
    "429_storm_without_retry_after": (sim(upstream="*", error="429"), 30, 0.0),
    "429_storm_with_retry_after": (sim(upstream="*", error="429", retry_after_s=1), 30, 0.0),
    "5xx_burst": (burst_5xx, 30, 0.0),
    "client_disconnect_mid_stream": (sim(upstream="*", latency_ms=400, output_tokens=300), 30, 1.0),
}


def drive(live, settings, fault: str, *, count: int, concurrency: int, first: int = 0, key: str = ""):
    setup, timeout_s, disconnect_rate = FAULTS[fault]
    setup(live, settings)
    key = key or live.make_key(select="ClaudeCode")
    results = asyncio.run(
        fire(
            url=live.url,
            key=key,
            count=count,
            concurrency=concurrency,
            models=("claude-sonnet-4-5", "qwen3.5-max"),
            disconnect_rate=disconnect_rate,
            timeout_s=timeout_s,
            first=first,
        )
    )
    causes = collections.Counter(r.cause for r in results)
    request_ids = {r.request_id for r in results if r.request_id}
    # A 503 may be the database refusing the hold (SQLite under overlapping calls): no record then.
    refused = sum(r.status == 503 for r in results)
    # A client that times out before authentication finishes leaves no record (nobody to bill);
    # its hold, if one was taken, must still be released, which the ledger checks cover.
    refused += causes["client_timeout"]
    wait_s = 8 if fault.startswith("slow") else 20  # the slow upstream answers within 2.5 s + generation
    calls = range(first + count - refused, first + count + 1)
    problems = wait_for_ledger(request_ids, calls=calls, timeout=wait_s)
    gateway = gateway_failures(results)
    shown = problems + ([f"gateway-made 5xx: {[r.status for r in gateway]}"] if gateway else [])
    figures.fault(fault, "concurrent" if concurrency > 1 else "sequential", causes, shown)
    assert gateway == [], causes
    assert problems == [], causes
    return causes


MATRIX = list(FAULTS)


@pytest.mark.postgres
@pytest.mark.parametrize("fault", MATRIX)
def test_fault_under_concurrent_load_loses_nothing(live, settings, fault):
    causes = drive(live, settings, fault, count=32, concurrency=16)
    if fault != "client_disconnect_mid_stream" and not fault.startswith("slow"):
        assert causes["ok"] < 32, f"the fault never showed: {causes}"


@pytest.mark.parametrize("fault", MATRIX)
def test_fault_sequentially_loses_nothing(live, settings, fault):
    """One call of each kind, the next only once the last has settled (its client may have left)."""
    key = live.make_key(select="ClaudeCode")
    for first in range(4):
        drive(live, settings, fault, count=1, concurrency=1, first=first, key=key)


@pytest.fixture
def private_redis():
    if shutil.which("redis-server") is None:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("required in CI: redis-server, to run a private Redis that can be killed")
        pytest.skip("needs redis-server to run a private Redis that can be killed")
    server = PrivateRedis()
    server.start()
    yield server
    server.destroy()


def _keys(client: redis.Redis) -> int:
    try:
        return client.dbsize()
    except redis.ConnectionError:  # our own client's connection died with the old server
        return 0


def _readyz(live) -> dict:
    return requests.get(f"{live.url}/readyz", timeout=30).json()


@pytest.mark.postgres
def test_redis_killed_under_concurrent_load_serves_on_local_state_and_comes_back(
    live, settings, private_redis
):
    """Redis (cache and broker) dies under load: every call still succeeds on per-process state,
    /readyz says degraded, and once Redis is back the relay writes its shared state there again."""
    settings.CACHES = {
        "default": {
            "BACKEND": "core.cache.FallbackRedisCache",
            "LOCATION": private_redis.url(),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    settings.CELERY_BROKER_URL = private_redis.url(1)
    shared = redis.Redis.from_url(private_redis.url())
    key = live.make_key(select="ClaudeCode")
    with Load(live.url, key) as load:
        wait_until(
            "calls flowing", lambda: sum(a.status == 200 for a in load.answers) >= 2 * CONCURRENCY, 120
        )
        assert shared.dbsize() > 0, "the relay does not use the private Redis"
        assert _readyz(live)["status"] == "ok"

        killed = time.monotonic()
        private_redis.kill()
        ready = _readyz(live)
        assert ready["status"] == "degraded", ready
        assert ready["checks"]["cache"].startswith("Redis unreachable"), ready
        assert ready["checks"]["broker"].startswith("broker unreachable"), ready
        wait_until("calls served without Redis", lambda: len(load.since(killed)) >= 4 * CONCURRENCY, 120)

        private_redis.start()
        back = time.monotonic()
        # The relay goes back to Redis by itself (its retry window), not only when /readyz pings it.
        wait_until("the relay writing to Redis again", lambda: _keys(shared) > 0, 60)
        returned_s = time.monotonic() - back
        after = time.monotonic()
        wait_until("calls after Redis returned", lambda: len(load.since(after)) >= 2 * CONCURRENCY, 120)
        assert _readyz(live)["status"] == "ok"
    answers = list(load.answers)
    causes = collections.Counter(a.cause for a in answers)
    assert causes == {"ok": len(answers)}, causes
    broken = [a for a in answers if b'"error"' in a.body or b"event: error" in a.body]
    assert broken == [], broken[:3]
    request_ids = {a.request_id for a in answers}
    assert wait_for_ledger(request_ids, calls=range(len(answers), len(answers) + 1), timeout=30) == []
    figures.note(
        f"redis killed under load: {len(answers)} calls, all 200 "
        f"({len(load.since(killed)) - len(load.since(back))} while Redis was down); relay back on Redis "
        f"{returned_s:.1f} s after it restarted"
    )
