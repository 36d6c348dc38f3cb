"""The database fails at settlement: the client still gets a clean answer in its own format (never
a 500), and the hold the call could not resolve is left for the sweeper, which releases it once."""

import orjson
import pytest
from asgiref.sync import async_to_sync
from django.db import OperationalError
from django.test import AsyncClient

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
    _swept_once(resp["X-Request-Id"])


@pytest.mark.django_db
def test_answered_call_whose_settlement_fails_is_a_503_and_its_hold_is_swept(simulator, demo, monkeypatch):
    monkeypatch.setattr(get_ledger(), "settle", _down)
    resp = post(demo["demo_key"], "/v1/messages")
    assert resp.status_code == 503
    assert resp.json()["error"]["type"] == "overloaded_error"
    monkeypatch.undo()
    _swept_once(resp["X-Request-Id"])


@pytest.mark.django_db
def test_stream_whose_settlement_fails_is_delivered_and_its_hold_is_swept(simulator, demo, monkeypatch):
    monkeypatch.setattr(get_ledger(), "settle", _down)
    resp = post(demo["demo_key"], "/v1/chat/completions", stream=True)
    assert resp.status_code == 200
    assert resp.content_bytes.rstrip().endswith(b"data: [DONE]")
    monkeypatch.undo()
    _swept_once(resp["X-Request-Id"])
