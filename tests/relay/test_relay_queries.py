"""The hot path stays lean: with a warm snapshot and token cache, a call only holds and settles."""

import re

import orjson
import pytest
from asgiref.sync import async_to_sync
from django.db import connections
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext

from billing.models import UsageRecord
from relay import upstream

BODY = orjson.dumps({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]})
RESPONSES_BODY = orjson.dumps({"model": "claude-sonnet-4-5", "input": "hi"})
MONEY_TABLES = {"billing_wallet", "billing_ledgerentry", "billing_usagerecord", "tokens_token"}


def call(key: str, body: bytes = BODY, path: str = "/v1/chat/completions"):
    async def run():
        try:
            return await AsyncClient().post(
                path, data=body, content_type="application/json", headers={"Authorization": f"Bearer {key}"}
            )
        finally:
            await upstream.close_sessions()

    return async_to_sync(run)()


def tables(queries) -> set[str]:
    found = set()
    for q in queries:
        found.update(re.findall(r'(?:FROM|INTO|UPDATE|JOIN)\s+"(\w+)"', q["sql"]))
    return found


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body"), [("/v1/chat/completions", BODY), ("/v1/responses", RESPONSES_BODY)]
)
def test_warm_non_stream_call_runs_only_hold_and_settle_statements(simulator, demo, path, body):
    key = demo["demo_key"]
    assert call(key).status_code == 200  # warms the routing snapshot, the token cache, last_used_at
    with CaptureQueriesContext(connections["default"]) as ctx:
        resp = call(key, body, path)
    assert resp.status_code == 200
    assert tables(ctx.captured_queries) == MONEY_TABLES
    # hold: token, wallet, ledger line; settlement: usage record (claim), token, wallet, ledger lines
    # (SAVEPOINTs are the test's transaction around each unit's atomic block, not the relay's).
    queries = [q for q in ctx.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    if connections["default"].vendor == "postgresql":  # each unit is one statement
        assert [q["sql"].split()[0] for q in queries] == ["WITH", "WITH"], [q["sql"][:80] for q in queries]
        hold, settle = (re.findall(r'(UPDATE|INSERT INTO)\s+"(\w+)"', q["sql"]) for q in queries)
        assert hold == [
            ("UPDATE", "tokens_token"),
            ("UPDATE", "billing_wallet"),
            ("INSERT INTO", "billing_ledgerentry"),
        ]
        assert settle == [
            ("INSERT INTO", "billing_usagerecord"),
            ("UPDATE", "tokens_token"),
            ("UPDATE", "billing_wallet"),
            ("INSERT INTO", "billing_ledgerentry"),
        ]
    else:
        statements = [(q["sql"].split()[0], tables([q]).pop()) for q in queries]
        assert statements == [
            ("UPDATE", "tokens_token"),
            ("UPDATE", "billing_wallet"),
            ("INSERT", "billing_ledgerentry"),
            ("INSERT", "billing_usagerecord"),
            ("UPDATE", "tokens_token"),
            ("UPDATE", "billing_wallet"),
            ("INSERT", "billing_ledgerentry"),
        ], [q["sql"][:80] for q in queries]
    # the wallet row: one conditional UPDATE in the hold and one in the settlement, never locked first
    wallet = re.findall(r'(\w+)\s+"billing_wallet"', " ".join(q["sql"] for q in queries))
    assert wallet == ["UPDATE", "UPDATE"], wallet
    assert not any("FOR UPDATE" in q["sql"] for q in ctx.captured_queries)
    assert UsageRecord.objects.get(request_id=resp["X-Request-Id"]).status == "success"


@pytest.mark.django_db
def test_refusal_after_auth_writes_only_its_usage_record(simulator, demo):
    key = demo["demo_key"]
    call(key)
    body = orjson.dumps({"model": "sora-nope", "messages": [{"role": "user", "content": "hi"}]})
    with CaptureQueriesContext(connections["default"]) as ctx:
        resp = call(key, body)
    assert resp.status_code == 404
    assert tables(ctx.captured_queries) == {"billing_usagerecord"}


@pytest.mark.django_db
def test_routing_change_is_seen_by_the_next_call(simulator, demo):
    from groups.models import Channel

    key = demo["demo_key"]
    call(key)
    Channel.objects.filter(name__in=["claude-official", "claude-aws"]).update(enabled=False)
    Channel.objects.get(name="claude-default").save()  # any save bumps the routing version
    resp = call(key)
    assert resp.status_code == 200
    rec = UsageRecord.objects.get(request_id=resp["X-Request-Id"])
    assert rec.group_name == "Default" and rec.fallback_used
