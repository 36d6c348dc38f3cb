"""Shared routing state across processes: two relay servers, a Celery worker and beat.

Real PostgreSQL, real Redis (cache and broker) and the simulated upstreams. The probe
worker flags a saturated upstream; both relay processes — neither of which has seen a
429 itself — route around it without a failed customer call and without sending it a
single customer request; once the upstream recovers, so does routing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from accounts.models import AuditLog
from billing.models import UsageRecord
from groups.models import Channel, ChannelHealth, ChannelModel, Model

pytestmark = [pytest.mark.live, pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
BUSY, SPARE = "claude-official", "claude-aws"  # ClaudeCode's channels, priority 10 and 5
CUSTOMER_MODEL = "claude-sonnet-4-5"
PROBE_MODEL = "claude-haiku-4-5"  # cheaper, so probes use it and customer calls stay countable
STARTUP_S = 120
CHANGE_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, check, timeout: float, procs: dict):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def _get(url: str):
    try:
        return requests.get(url, timeout=5)
    except requests.RequestException:
        return None


def _verdict(relay_url: str, channel: str) -> str | None:
    resp = _get(f"{relay_url}/metrics")
    if resp is None or resp.status_code != 200:
        return None
    prefix = f'apiyi_channel_verdict{{channel="{channel}",verdict="'
    for line in resp.text.splitlines():
        if line.startswith(prefix) and line.endswith(" 1.0"):
            return line[len(prefix) :].split('"', 1)[0]
    return None


@pytest.fixture
def cluster(transactional_db, simulator, tmp_path):
    """Seed demo data, then start 2 relays + worker + beat against the test database."""
    from apiyi_admin.demo import seed_demo

    key = seed_demo()["demo_key"]
    haiku = Model.objects.create(
        name=PROBE_MODEL, kind="text", input_usd_per_mtok="1", output_usd_per_mtok="5"
    )
    for name in (BUSY, SPARE):
        channel = Channel.objects.get(name=name)
        ChannelModel.objects.create(channel=channel, model=haiku)
    Channel.objects.filter(name__in=[BUSY, SPARE]).update(probe_interval_s=2)
    Channel.objects.exclude(name__in=[BUSY, SPARE]).update(enabled=False)

    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "apiyi_admin.settings",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/"
        f"{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "KEY_HASH_SECRET": settings.KEY_HASH_SECRET,
        "FERNET_KEYS": ",".join(settings.FERNET_KEYS),
        "VAR_DIR": str(tmp_path / "var"),
        "PROBE_TICK_S": "1",
        "PROBE_RECOVERY_SUCCESSES": "2",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "4",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CACHE_KEY_PREFIX", None)
    relays = [f"http://127.0.0.1:{_free_port()}" for _ in range(2)]
    commands = {
        "relay-a": [sys.executable, "-m", "uvicorn", "apiyi_admin.asgi:application", "--lifespan", "off"],
        "relay-b": [sys.executable, "-m", "uvicorn", "apiyi_admin.asgi:application", "--lifespan", "off"],
        "worker": [sys.executable, "-m", "celery", "-A", "apiyi_admin", "worker", "-P", "threads", "-c", "4"],
        "beat": [sys.executable, "-m", "celery", "-A", "apiyi_admin", "beat", "-s", str(tmp_path / "beat")],
    }
    for name, url in zip(("relay-a", "relay-b"), relays, strict=True):
        commands[name] += ["--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1], "--log-level", "warning"]
    procs = {}
    logs = {}
    try:
        for name, cmd in commands.items():
            logs[name] = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115
            procs[name] = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=logs[name], stderr=subprocess.STDOUT
            )
        for url in relays:
            _wait(
                f"{url}/healthz",
                lambda u=url: (r := _get(f"{u}/healthz")) is not None and r.ok,
                STARTUP_S,
                procs,
            )
        yield {"relays": relays, "key": key, "procs": procs}
    except BaseException:
        for name in logs:
            logs[name].flush()
            print(f"--- {name} ---\n{(tmp_path / f'{name}.log').read_text()[-3000:]}")
        raise
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for fh in logs.values():
            fh.close()


def _customer_call(relay_url: str, key: str) -> requests.Response:
    return requests.post(
        f"{relay_url}/v1/messages",
        json={"model": CUSTOMER_MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        timeout=60,
    )


def _served_by(resp: requests.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    rec = UsageRecord.objects.get(request_id=resp.headers["X-Request-Id"])
    return [(a["channel"], a["outcome"], a["status"]) for a in rec.trace]


def _customer_requests(simulator, upstream: str) -> int:
    return simulator.stats().get(upstream, {}).get("models", {}).get(CUSTOMER_MODEL, 0)


def test_probe_verdicts_route_every_relay_process_around_a_saturated_upstream(cluster, simulator):
    relay_a, relay_b = cluster["relays"]
    key, procs = cluster["key"], cluster["procs"]

    # 1. The worker's first probes reach both relays; traffic goes to the preferred channel.
    for relay in (relay_a, relay_b):
        _wait(f"{BUSY} healthy on {relay}", lambda r=relay: _verdict(r, BUSY) == "healthy", STARTUP_S, procs)
    for relay in (relay_a, relay_b):
        assert _served_by(_customer_call(relay, key)) == [(BUSY, "ok", 200)]
    assert _customer_requests(simulator, BUSY) == 2

    # 2. The upstream saturates; only the probe sees it (no customer call is made meanwhile).
    simulator.configure(upstream=BUSY, error="429")
    for relay in (relay_a, relay_b):
        _wait(
            f"{BUSY} saturated on {relay}", lambda r=relay: _verdict(r, BUSY) == "saturated", CHANGE_S, procs
        )

    # 3. Both relay processes skip it (status 0: no call made, recorded in the route) and every
    #    customer call succeeds on the spare channel: not one reaches the saturated upstream.
    for relay in (relay_a, relay_b, relay_a, relay_b):
        assert _served_by(_customer_call(relay, key)) == [(BUSY, "saturated", 0), (SPARE, "ok", 200)]
    assert _customer_requests(simulator, BUSY) == 2
    assert simulator.stats()[BUSY]["models"].get(PROBE_MODEL, 0) >= 1  # the probe did call it

    # 4. The upstream recovers; after consecutive healthy probes it is back in rotation everywhere.
    simulator.configure(upstream=BUSY, error=None)
    for relay in (relay_a, relay_b):
        _wait(
            f"{BUSY} healthy again on {relay}",
            lambda r=relay: _verdict(r, BUSY) == "healthy",
            CHANGE_S,
            procs,
        )
    for relay in (relay_a, relay_b):
        assert _served_by(_customer_call(relay, key)) == [(BUSY, "ok", 200)]
    assert _customer_requests(simulator, BUSY) == 4

    # 5. The worker kept the history and audited each change of verdict.
    busy = Channel.objects.get(name=BUSY)
    seen = set(ChannelHealth.objects.filter(channel=busy).values_list("verdict", flat=True))
    assert {"healthy", "saturated"} <= seen
    changes = [
        (a.before["verdict"], a.after["verdict"])
        for a in AuditLog.objects.filter(action="channel.verdict", object_id=str(busy.id)).order_by("id")
    ]
    assert changes == [("healthy", "saturated"), ("saturated", "healthy")]
    ready = requests.get(f"{relay_b}/readyz", timeout=10).json()
    assert ready["status"] == "ok", ready
