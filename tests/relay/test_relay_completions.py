"""POST /v1/completions (legacy) through the live relay with the official openai SDK, billed per token."""

from decimal import ROUND_HALF_UP, Decimal

import openai
import pytest
import requests

from apiyi_admin.demo import MODELS, USD_CNY_RATE
from billing.models import UsageRecord

pytestmark = [pytest.mark.live]


def _token_cost(model: str, prompt_tokens: int, completion_tokens: int) -> int:
    prices = MODELS[model][2]
    usd = (
        prompt_tokens * prices["input_usd_per_mtok"] + completion_tokens * prices["output_usd_per_mtok"]
    ) / Decimal(1_000_000)
    return int((usd * USD_CNY_RATE * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_completions_answer_each_prompt_and_bill_tokens(live, reconciled):
    client = live.openai(key=live.make_key(select="Default"))
    raw = client.completions.with_raw_response.create(
        model="gpt-5.1", prompt=["say one", "say two"], max_tokens=50
    )
    done = raw.parse()
    assert [c.index for c in done.choices] == [0, 1]
    assert "say one" in done.choices[0].text and "say two" in done.choices[1].text
    assert done.model == "gpt-5.1" and done.usage.completion_tokens > 0
    rec = live.settled(raw.headers["x-request-id"])
    assert rec.billing_basis == "tokens" and rec.channel_name == "openai-official"
    assert rec.cost_micro == _token_cost("gpt-5.1", done.usage.prompt_tokens, done.usage.completion_tokens)
    sent = live.sim.requests("openai-official")[-1]
    assert sent["path"].endswith("/v1/completions") and sent["body"]["prompt"] == ["say one", "say two"]


def test_completions_stream_relays_text_and_usage_and_settles_once(live, reconciled):
    client = live.openai(key=live.make_key(select="Default"))
    raw = client.completions.with_raw_response.create(
        model="gpt-5.1",
        prompt=["say one", "say two"],
        max_tokens=50,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(raw.parse())
    texts = {0: "", 1: ""}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.text
    assert "say one" in texts[0] and "say two" in texts[1]
    finished = [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason]
    assert finished == ["stop", "stop"]
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage.completion_tokens > 0
    rec = live.settled(raw.headers["x-request-id"])
    assert (rec.status, rec.billing_basis, rec.channel_name) == ("success", "tokens", "openai-official")
    assert rec.cost_micro == _token_cost("gpt-5.1", usage.prompt_tokens, usage.completion_tokens)
    assert UsageRecord.objects.filter(request_id=raw.headers["x-request-id"]).count() == 1
    sent = live.sim.requests("openai-official")[-1]
    assert sent["body"]["stream"] is True and sent["body"]["stream_options"] == {"include_usage": True}


def test_completions_stream_without_usage_asked_still_bills_upstream_usage(live, reconciled):
    client = live.openai(key=live.make_key(select="Default"))
    raw = client.completions.with_raw_response.create(model="gpt-5.1", prompt="say three", stream=True)
    chunks = list(raw.parse())
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)
    assert "say three" in "".join(c.text for chunk in chunks for c in chunk.choices)
    rec = live.settled(raw.headers["x-request-id"])
    assert rec.status == "success" and not rec.usage_estimated and rec.cost_micro > 0
    assert live.sim.requests("openai-official")[-1]["body"]["stream_options"] == {"include_usage": True}


def test_completions_bad_input_and_unknown_model(live, reconciled):
    client = live.openai(key=live.make_key(select="Default"))
    with pytest.raises(openai.BadRequestError) as missing:
        client.completions.create(model="gpt-5.1", prompt=None)
    assert missing.value.body["param"] == "prompt"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-model", prompt="hi", stream=True)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-model", prompt="hi")
    assert not UsageRecord.objects.filter(status="success").exists()


def test_completions_stream_cut_upstream_ends_with_an_error_and_bills_partial_once(live, reconciled):
    live.sim.configure(upstream="*", error="cut_stream", output_tokens=200)
    key = live.make_key(select="Default")
    body = {"model": "gpt-5.1", "prompt": "write a long story about relays", "stream": True}
    resp = requests.post(
        f"{live.url}/v1/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    events = [line for line in resp.text.splitlines() if line.startswith("data: ")]
    assert events[-1].startswith('data: {"error"') and len(events) > 2
    rec = live.settled(resp.headers["X-Request-Id"])
    assert rec.status == "partial" and rec.usage_estimated and rec.cost_micro > 0
    assert UsageRecord.objects.filter(request_id=resp.headers["X-Request-Id"]).count() == 1
