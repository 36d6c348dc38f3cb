"""A relay call holds a database connection only for its short transactions, and a database
failure gives the client a clean 503 in its own format, never a 500, and charges nothing."""

import orjson
import pytest
from asgiref.sync import async_to_sync
from django.db import OperationalError, connection
from django.test import AsyncClient
from psycopg_pool import PoolTimeout

from billing.ledger import get_ledger
from billing.models import LedgerEntry, UsageRecord, Wallet
from core.db import _call, _Outage, releasing
from relay import upstream

BODY = orjson.dumps(
    {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
)


def post(key: str, path: str, headers: dict | None = None):
    async def run():
        try:
            return await AsyncClient().post(
                path,
                data=BODY,
                content_type="application/json",
                headers={"Authorization": f"Bearer {key}", **(headers or {})},
            )
        finally:
            await upstream.close_sessions()

    return async_to_sync(run)()


def _down(**kwargs):
    raise OperationalError("couldn't get a connection after 10.00 sec")


def assert_unavailable_in_clients_format(resp, path: str) -> None:
    assert resp.status_code == 503
    body = resp.json()
    if path == "/v1/messages":
        assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
    else:
        assert body["error"]["code"] == "upstream_unavailable"
    assert "nothing was charged" in body["error"]["message"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_database_failure_in_hold_is_a_503_in_the_clients_format_and_charges_nothing(
    simulator, demo, monkeypatch, path
):
    key = demo["demo_key"]
    assert post(key, path).status_code == 200  # warm caches
    before = list(Wallet.objects.values_list("balance_micro", "held_micro").order_by("pk"))
    ledger = LedgerEntry.objects.count()
    monkeypatch.setattr(get_ledger(), "hold", _down)
    resp = post(key, path)
    assert_unavailable_in_clients_format(resp, path)
    assert list(Wallet.objects.values_list("balance_micro", "held_micro").order_by("pk")) == before
    assert LedgerEntry.objects.count() == ledger
    assert UsageRecord.objects.get(request_id=resp["X-Request-Id"]).cost_micro == 0


def _no_connection(**kwargs):
    """What the pool raises after a whole DB_POOL_TIMEOUT without a connection."""
    try:
        raise PoolTimeout("couldn't get a connection after 10.00 sec")
    except PoolTimeout as exc:
        raise OperationalError(*exc.args) from exc


@pytest.fixture
def outage_ends():
    yield
    _Outage.down = False


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_a_call_whose_hold_found_no_connection_answers_without_waiting_for_another(
    simulator, demo, monkeypatch, outage_ends, path
):
    """Its refusal record would have waited a second pool timeout: it is not even tried."""
    key = demo["demo_key"]
    assert post(key, path).status_code == 200  # warm caches: the hold is the call's first unit
    refusals = []
    ledger = get_ledger()
    real_refused = ledger.refuse
    monkeypatch.setattr(ledger, "refuse", lambda **kw: refusals.append(real_refused(**kw)))
    monkeypatch.setattr(ledger, "hold", _no_connection)
    resp = post(key, path)
    assert_unavailable_in_clients_format(resp, path)
    assert refusals == []
    assert not UsageRecord.objects.filter(request_id=resp["X-Request-Id"]).exists()
    assert _call.get() is None  # the call ended, and with it what it knew of the database

    # The next call is a call of its own: its hold tries the database, and is served.
    monkeypatch.undo()
    resp = post(key, path)
    assert resp.status_code == 200, resp.content
    assert UsageRecord.objects.get(request_id=resp["X-Request-Id"]).cost_micro > 0
    assert not _Outage.down


@pytest.mark.django_db
def test_database_failure_while_authenticating_is_a_503(simulator, demo, monkeypatch):
    from relay import auth

    monkeypatch.setattr(auth, "_load_and_cache", lambda key_hash: _down())
    resp = post(demo["demo_key"], "/v1/chat/completions")
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "upstream_unavailable"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_short_unit_gives_its_connection_back():
    assert releasing(Wallet.objects.count)() == Wallet.objects.count()
    releasing(Wallet.objects.count)()
    assert connection.connection is None
