"""Upstream faults and client disconnects: right status, no charge for failures, exact partial bills.

Every test here also proves the ledger reconciles afterwards (`reconciled`).
"""

import http.client
import json
from decimal import Decimal
from urllib.parse import urlparse

import anthropic
import openai
import pytest

from billing.models import LedgerEntry, UsageRecord
from core.pricing import ModelPrice, Usage, price_call
from groups.models import Model
from relay.convert.usage import estimate_tokens

pytestmark = [pytest.mark.live]

HELLO = [{"role": "user", "content": "hello"}]


def assert_not_charged(request_id: str) -> UsageRecord:
    rec = UsageRecord.objects.get(request_id=request_id)
    assert rec.status == "error" and rec.cost_micro == 0
    assert not LedgerEntry.objects.filter(request_id=request_id, kind="charge").exists()
    hold = LedgerEntry.objects.filter(request_id=request_id, kind="hold").first()
    if hold is not None:
        release = LedgerEntry.objects.get(request_id=request_id, kind="release")
        assert release.amount_micro == -hold.amount_micro
    return rec


def assert_billed_as_recorded(rec: UsageRecord) -> None:
    """The charge is exactly the price of the usage the record shows, at its group's multiplier."""
    usage = Usage(
        input_tokens=rec.input_tokens,
        output_tokens=rec.output_tokens,
        cache_read_tokens=rec.cache_read_tokens,
        cache_write_tokens=rec.cache_write_tokens,
    )
    expected = price_call(
        ModelPrice.of(Model.objects.get(name=rec.model_name)),
        usage,
        multiplier=rec.multiplier,
        usd_cny_rate=Decimal(rec.price_breakdown["usd_cny_rate"]),
        billing_mode="usage_first",
    )
    assert rec.cost_micro == expected.cost_micro
    charge = LedgerEntry.objects.get(request_id=rec.request_id, kind="charge")
    assert -charge.amount_micro == rec.cost_micro


@pytest.mark.parametrize("fault", ["reset", "500", "garbage"])
def test_fault_on_first_channel_fails_over_to_the_next(live, reconciled, fault):
    live.sim.configure(upstream="claude-official", error=fault)
    key = live.make_key(select="ClaudeCode")
    raw = live.openai(key=key).chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5", messages=HELLO
    )
    assert raw.parse().choices[0].message.content
    rec = UsageRecord.objects.get(request_id=raw.headers["x-request-id"])
    assert rec.channel_name == "claude-aws" and rec.status == "success"
    first, second = rec.trace
    assert first["channel"] == "claude-official" and first["outcome"] != "ok"
    assert second == {**second, "channel": "claude-aws", "outcome": "ok"}
    assert_billed_as_recorded(rec)


@pytest.mark.parametrize("fault", ["reset", "500", "garbage"])
def test_fault_everywhere_is_a_502_and_not_charged(live, reconciled, fault):
    live.sim.configure(upstream="*", error=fault)
    key = live.make_key(select="ClaudeCode")
    with pytest.raises(openai.InternalServerError) as exc:
        live.openai(key=key).chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    assert exc.value.status_code == 502 and exc.value.body["type"] == "upstream_error"
    rec = assert_not_charged(exc.value.response.headers["x-request-id"])
    assert len(rec.trace) == 2
    with pytest.raises(anthropic.APIStatusError) as exc:
        live.anthropic(key=key).messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=HELLO)
    assert exc.value.status_code == 502 and exc.value.body["error"]["type"] == "api_error"


def test_slow_upstream_times_out_and_fails_over(live, reconciled, settings):
    settings.RELAY_UPSTREAM_READ_TIMEOUT = 0.5
    live.sim.configure(upstream="claude-official", latency_ms=3000)
    key = live.make_key(select="ClaudeCode")
    raw = live.anthropic(key=key).messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=32, messages=HELLO
    )
    assert raw.parse().content
    rec = UsageRecord.objects.get(request_id=raw.headers["x-request-id"])
    assert [(a["channel"], a["outcome"]) for a in rec.trace] == [
        ("claude-official", "timeout"),
        ("claude-aws", "ok"),
    ]


def test_cut_stream_ends_with_an_error_event_and_bills_what_was_delivered(live, reconciled):
    live.sim.configure(upstream="*", error="cut_stream", output_tokens=200)  # cut half-way through the text
    key = live.make_key(select="ClaudeCode")
    raw = live.openai(key=key).chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "write a long story about relays"}],
        stream=True,
        max_tokens=400,
    )
    delivered = ""
    with pytest.raises(openai.APIError) as exc:
        for chunk in raw.parse():
            if chunk.choices:
                delivered += chunk.choices[0].delta.content or ""
    assert "the answer is incomplete" in str(exc.value.message)
    assert delivered
    rec = live.settled(raw.headers["x-request-id"])
    assert rec.status == "partial" and rec.usage_estimated
    assert rec.output_tokens >= estimate_tokens(delivered)
    assert 0 < rec.cost_micro < rec.hold_micro
    assert_billed_as_recorded(rec)


def test_cut_anthropic_stream_gets_a_native_error_event(live, reconciled):
    live.sim.configure(upstream="*", error="cut_stream")
    key = live.make_key(select="ClaudeCode")
    stream = live.anthropic(key=key).messages.stream(
        model="claude-sonnet-4-5", max_tokens=300, messages=[{"role": "user", "content": "a long story"}]
    )
    with pytest.raises(anthropic.APIStatusError) as exc, stream as events:
        for _ in events:
            pass
    assert "the answer is incomplete" in str(exc.value)
    request_id = exc.value.response.headers.get("x-request-id")
    assert live.settled(request_id) is not None  # settled before the test database is flushed


def test_client_disconnect_mid_stream_bills_what_was_generated(live, reconciled, settings):
    settings.RELAY_UPSTREAM_READ_TIMEOUT = 30
    live.sim.configure(upstream="*", latency_ms=3000)  # before the first byte, then spread over the events
    key = live.make_key(select="ClaudeCode")
    url = urlparse(live.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    body = json.dumps(
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 600,
            "stream": True,
            "messages": [{"role": "user", "content": "a long story please " * 20}],
        }
    )
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn.request("POST", "/v1/chat/completions", body, headers)
    resp = conn.getresponse()
    request_id = resp.getheader("x-request-id")
    received = b""
    while received.count(b"\n\n") < 3:
        chunk = resp.fp.read1(4096)
        assert chunk, f"the stream ended early: {received!r}"
        received += chunk
    conn.sock.close()  # the client goes away mid-stream
    conn.close()
    rec = live.settled(request_id)
    assert rec is not None, "the call must settle although the client left"
    assert rec.status == "partial" and rec.error_code == "client_disconnected"
    assert rec.input_tokens > 0 and rec.output_tokens > 0
    assert 0 < rec.cost_micro < rec.hold_micro
    assert_billed_as_recorded(rec)
    assert live.token_of(key).user.wallet.held_micro == 0


def test_garbage_in_a_stream_ends_it_with_an_error_and_a_partial_bill(live, reconciled):
    live.sim.configure(upstream="openai-official", error="garbage")
    raw = live.openai().chat.completions.with_raw_response.create(
        model="gpt-5.1", messages=[{"role": "user", "content": "hello"}], stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in raw.parse():
            pass
    rec = live.settled(raw.headers["x-request-id"])
    assert rec.status == "partial" and rec.usage_estimated and rec.input_tokens > 0
    assert 0 < rec.cost_micro < rec.hold_micro
    assert_billed_as_recorded(rec)
