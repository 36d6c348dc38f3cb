"""The database fails at settlement: the client still gets its answer (or a clean error in its own
format, never a 500); the settlement is spooled and, replayed once the database answers, charges
the call exactly once. Only if even the spool refuses it is the hold left for the sweeper."""

import orjson
import pytest
from asgiref.sync import async_to_sync
from django.db import OperationalError
from django.test import AsyncClient

from billing import spool
from billing.ledger import get_ledger
from billing.models import LedgerEntry, UsageRecord
from billing.selectors import wallets_out_of_balance
from billing.sweeper import holds_release_stale
from relay import upstream


def post(key: str, path: str, *, stream: bool = False):
    body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}

    async def run():
        try:
            resp = await AsyncClient().post(
                path,
                data=orjson.dumps({**body, "stream": stream}),
                content_type="application/json",
                headers={"Authorization": f"Bearer {key}"},
            )
            if stream:
                resp.content_bytes = b"".join([chunk async for chunk in resp.streaming_content])
            return resp
        finally:
            await upstream.close_sessions()

    return async_to_sync(run)()


def _down(**kwargs):
    raise OperationalError("the database system is shutting down")


def _swept_once(request_id: str) -> None:
    assert LedgerEntry.objects.filter(request_id=request_id, kind="hold").count() == 1
    assert not LedgerEntry.objects.filter(request_id=request_id, kind="release").exists()
    assert [holds_release_stale(older_than_s=0) for _ in range(2)] == [1, 0]
    record = UsageRecord.objects.get(request_id=request_id)
    assert (record.error_code, record.cost_micro, record.settled_at is not None) == ("abandoned", 0, True)
    assert LedgerEntry.objects.filter(request_id=request_id, kind="release").count() == 1
    assert wallets_out_of_balance() == []


def _replayed_once(request_id: str, *, status: str) -> UsageRecord:
    """Spooled, not settled; one replay settles it, the next changes nothing, no hold is left."""
    assert not UsageRecord.objects.filter(request_id=request_id).exists()
    assert spool.spool_summary().request_ids == [request_id]
    assert spool.replay().settled == 1
    assert spool.replay().replayed == 0
    assert spool.spool_summary().entries == 0
    record = UsageRecord.objects.get(request_id=request_id)
    assert (record.status, record.settled_at is not None) == (status, True)
    charges = LedgerEntry.objects.filter(request_id=request_id, kind="charge")
    expected = [-record.cost_micro] if record.cost_micro else []
    assert list(charges.values_list("amount_micro", flat=True)) == expected
    assert LedgerEntry.objects.filter(request_id=request_id, kind="release").count() == 1
    assert holds_release_stale(older_than_s=0) == 0
    assert wallets_out_of_balance() == []
    return record


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_upstream_failure_with_the_database_down_is_the_upstream_error_not_a_500(
    simulator, demo, monkeypatch, path
):
    simulator.configure(upstream="*", error="500")
    monkeypatch.setattr(get_ledger(), "settle", _down)
    resp = post(demo["demo_key"], path)
    assert resp.status_code == 502, resp.content
    body = resp.json()
    if path == "/v1/messages":
        assert body["type"] == "error" and body["error"]["type"] == "api_error"
    else:
        assert body["error"]["code"] == "upstream_error"
    monkeypatch.undo()
    record = _replayed_once(resp["X-Request-Id"], status="error")
    assert (record.http_status, record.cost_micro) == (502, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_answered_call_whose_settlement_fails_gets_its_answer_and_is_charged_on_replay(
    simulator, demo, monkeypatch, path
):
    monkeypatch.setattr(get_ledger(), "settle", _down)
    resp = post(demo["demo_key"], path)
    assert resp.status_code == 200, resp.content
    usage = resp.json()["usage"]
    monkeypatch.undo()
    record = _replayed_once(resp["X-Request-Id"], status="success")
    assert record.cost_micro > 0
    assert record.output_tokens == usage.get("completion_tokens", usage.get("output_tokens"))


@pytest.mark.django_db
def test_stream_whose_settlement_fails_is_delivered_and_charged_on_replay(simulator, demo, monkeypatch):
    monkeypatch.setattr(get_ledger(), "settle", _down)
    resp = post(demo["demo_key"], "/v1/chat/completions", stream=True)
    assert resp.status_code == 200
    assert resp.content_bytes.rstrip().endswith(b"data: [DONE]")
    monkeypatch.undo()
    assert _replayed_once(resp["X-Request-Id"], status="success").cost_micro > 0


def _disk_full(**kwargs):
    raise OSError(28, "No space left on device")


@pytest.mark.django_db
def test_answered_call_whose_settlement_cannot_even_be_spooled_is_a_503_and_its_hold_is_swept(
    simulator, demo, monkeypatch
):
    monkeypatch.setattr(get_ledger(), "settle", _down)
    monkeypatch.setattr(spool, "spool_append", _disk_full)
    resp = post(demo["demo_key"], "/v1/messages")
    assert resp.status_code == 503
    assert resp.json()["error"]["type"] == "overloaded_error"
    monkeypatch.undo()
    assert spool.spool_summary().entries == 0
    _swept_once(resp["X-Request-Id"])
