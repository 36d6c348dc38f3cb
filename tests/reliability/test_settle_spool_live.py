"""PostgreSQL goes away between hold and settle under load, and nothing is lost.

A real uvicorn relay process reaches the (shared) PostgreSQL server only through a TCP proxy
that this test cuts, so the server itself never stops. Concurrent calls of every client format
take their holds, then the proxy is cut (connections reset, new ones refused) while the
simulated upstream is still answering them; then it is restored. Every call the client got a
200 for is charged exactly once once the relay replayed its spool by itself, the ledger
reconciles (`reconcile` clean) and nothing is left in the spool.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from io import StringIO
from pathlib import Path

import aiohttp
import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from billing import spool
from billing.models import LedgerEntry, UsageRecord
from billing.sweeper import holds_release_stale
from soak.ledger import ledger_problems
from soak.traffic import KINDS
from tests.reliability import figures
from tests.reliability.instances import wait_until
from tests.reliability.load import call
from tests.reliability.private_admin import seed
from tests.reliability.tcp_proxy import TcpProxy, free_port

pytestmark = [pytest.mark.live, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
CALLS = 24
UPSTREAM_LATENCY_MS = 4000  # long enough that every hold is taken before the first answer


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.RequestException:
        return False


@pytest.fixture
def relay_behind_proxy(simulator, transactional_db, tmp_path, settings):
    """The demo data and a customer in the test database, and a relay process using it through a proxy."""
    db = connection.settings_dict
    proxy = TcpProxy(int(db["PORT"] or 5432), db["HOST"] or "127.0.0.1")
    proxy.restore()
    key = seed()["key"]
    settings.BILLING_SPOOL_DIR = tmp_path / "spool"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "apiyi_admin.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}",
        "REDIS_URL": "",
        "SECRET_KEY": settings.SECRET_KEY,
        "KEY_HASH_SECRET": settings.KEY_HASH_SECRET,
        "FERNET_KEYS": ",".join(settings.FERNET_KEYS),
        "VAR_DIR": str(tmp_path / "var"),
        "BILLING_SPOOL_DIR": str(settings.BILLING_SPOOL_DIR),
        "BILLING_SPOOL_REPLAY_INTERVAL_S": "0.5",
        "DB_POOL_TIMEOUT": "3",
        "RELAY_UPSTREAM_READ_TIMEOUT": "30",
        "PYTHONUNBUFFERED": "1",
    }
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    env.pop("CACHE_KEY_PREFIX", None)
    url = f"http://127.0.0.1:{free_port()}"
    cmd = [sys.executable, "-m", "uvicorn", "apiyi_admin.asgi:application", "--host", "127.0.0.1"]
    cmd += ["--port", url.rsplit(":", 1)[1], "--lifespan", "off", "--log-level", "warning"]
    log = tmp_path / "relay.log"
    relay = None
    try:
        with log.open("wb") as out:
            relay = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        wait_until("the relay", lambda: relay.poll() is not None or _ok(f"{url}/healthz"), 120)
        assert relay.poll() is None, log.read_text()[-3000:]
        yield {"url": url, "key": key, "proxy": proxy, "log": log}
    except BaseException:
        if log.exists():
            print(f"--- relay log ---\n{log.read_text()[-5000:]}")
        raise
    finally:
        if relay is not None and relay.poll() is None:
            relay.terminate()
            try:
                relay.wait(timeout=30)
            except subprocess.TimeoutExpired:
                relay.kill()
                relay.wait()
        proxy.close()


def _calls(url: str, key: str, count: int, answers: list) -> threading.Thread:
    async def run():
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=count)) as session:
            answers.extend(
                await asyncio.gather(*(call(session, url, key, KINDS[i % len(KINDS)]) for i in range(count)))
            )

    thread = threading.Thread(target=lambda: asyncio.run(run()), name="calls", daemon=True)
    thread.start()
    return thread


def test_database_cut_between_hold_and_settle_loses_no_charge(relay_behind_proxy, simulator):
    url, key, proxy = relay_behind_proxy["url"], relay_behind_proxy["key"], relay_behind_proxy["proxy"]
    warm: list = []
    _calls(url, key, len(KINDS), warm).join(120)  # token, snapshot and pool warm; all settled at once
    assert [a.status for a in warm] == [200] * len(KINDS), [a.body[:200] for a in warm]
    holds_before = LedgerEntry.objects.filter(kind="hold").count()

    simulator.configure(upstream="*", latency_ms=UPSTREAM_LATENCY_MS)
    answers: list = []
    calls = _calls(url, key, CALLS, answers)
    wait_until(
        "every call held",
        lambda: LedgerEntry.objects.filter(kind="hold").count() - holds_before >= CALLS,
        60,
    )
    proxy.cut()  # the upstream is still answering: every settlement meets a database gone away
    calls.join(180)
    assert not calls.is_alive()
    served = {a.request_id for a in answers if a.status == 200}
    assert len(served) == CALLS, [(a.cause, a.body[:200]) for a in answers if a.status != 200]
    spooled = spool.spool_summary()
    assert spooled.entries > 0  # the outage did meet settlements (they are waiting on disk)
    assert set(spooled.request_ids) <= served
    unsettled = served - set(
        UsageRecord.objects.filter(request_id__in=served, settled_at__isnull=False).values_list(
            "request_id", flat=True
        )
    )
    assert unsettled == set(spooled.request_ids)  # the usage record appears only after replay

    proxy.restore()
    wait_until("the relay replaying its spool", lambda: spool.spool_summary().entries == 0, 120, 0.5)
    assert not list(Path(settings.BILLING_SPOOL_DIR).glob("*.corrupt"))

    # Nothing else is in flight: a hold still open now would belong to a call the client did not
    # get a 200 for (none here), and the sweeper would release it.
    assert holds_release_stale(older_than_s=0) == 0
    everything = served | {a.request_id for a in warm}
    assert ledger_problems(everything, calls=range(len(everything), len(everything) + 1)) == []
    for request_id in served:
        record = UsageRecord.objects.get(request_id=request_id)
        assert (record.status, record.error_code, record.http_status) == ("success", "", 200), request_id
        charges = LedgerEntry.objects.filter(request_id=request_id, kind="charge")
        assert list(charges.values_list("amount_micro", flat=True)) == [-record.cost_micro], request_id
        assert record.cost_micro > 0 and record.uncollected_micro == 0
    out = StringIO()
    call_command("reconcile", stdout=out, stderr=out)
    assert "wallets reconcile with their ledgers" in out.getvalue()
    assert "spooled" not in out.getvalue()
    figures.note(
        f"database cut between hold and settle: {CALLS} concurrent calls, {len(served)} answered 200, "
        f"{spooled.entries} settlements spooled (¥{spooled.total_micro / 1e6:.6f}) and replayed by the "
        "relay, each call charged once, reconcile clean"
    )
