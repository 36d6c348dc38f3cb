"""The official OpenAI SDK against a live relay and simulated upstreams."""

from decimal import Decimal

import pytest

from apiyi_admin.demo import USD_CNY_RATE as RATE
from core.pricing import ModelPrice, Usage, price_call
from groups.models import Model

pytestmark = [pytest.mark.live]


def expected_cost(model: str, rec, multiplier: str) -> int:
    usage = Usage(
        input_tokens=rec.input_tokens,
        output_tokens=rec.output_tokens,
        cache_read_tokens=rec.cache_read_tokens,
        cache_write_tokens=rec.cache_write_tokens,
    )
    return price_call(
        ModelPrice.of(Model.objects.get(name=model)),
        usage,
        multiplier=Decimal(multiplier),
        usd_cny_rate=Decimal(RATE),
        billing_mode="usage_first",
    ).cost_micro


def test_non_stream_chat_converted_to_anthropic_channel_billed_at_claudecode(live, reconciled):
    raw = live.openai().chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hello there"}], max_tokens=64
    )
    completion = raw.parse()
    assert completion.model == "claude-sonnet-4-5"
    assert "claude-official" in completion.choices[0].message.content
    assert completion.usage.completion_tokens > 0
    request_id = raw.headers["x-request-id"]
    rec = live.record(request_id)
    assert rec.status == "success"
    assert (rec.group_name, rec.channel_name, rec.fallback_used) == ("ClaudeCode", "claude-official", False)
    assert rec.multiplier == Decimal("0.95")
    assert rec.output_tokens == completion.usage.completion_tokens
    assert rec.cost_micro == expected_cost("claude-sonnet-4-5", rec, "0.95") > 0
    assert rec.price_breakdown["multiplier"] == "0.9500"
    assert [(a["group"], a["channel"], a["outcome"], a["status"]) for a in rec.trace] == [
        ("ClaudeCode", "claude-official", "ok", 200)
    ]
    assert rec.hold_micro >= rec.cost_micro


def test_stream_with_usage_chunk_only_when_asked(live, reconciled):
    client = live.openai()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-5.1", messages=[{"role": "user", "content": "count to three"}], stream=True
    )
    chunks = list(raw.parse())
    assert all(c.usage is None for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    rec = live.settled(raw.headers["x-request-id"])
    assert (rec.status, rec.stream, rec.usage_estimated) == ("success", True, False)
    assert rec.output_tokens > 0 and rec.cost_micro == expected_cost("gpt-5.1", rec, "1.0")
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-5.1",
        messages=[{"role": "user", "content": "count to three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    with_usage = list(raw.parse())
    assert with_usage[-1].usage is not None
    rec = live.settled(raw.headers["x-request-id"])
    assert rec.output_tokens == with_usage[-1].usage.completion_tokens


def test_stream_converted_from_anthropic_channel_with_tools(live, reconciled):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    raw = live.openai().chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(raw.parse())
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls and calls[0].function.name == "get_weather"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["tool_calls"]
    rec = live.settled(raw.headers["x-request-id"])
    assert rec.group_name == "ClaudeCode" and rec.output_tokens == chunks[-1].usage.completion_tokens


def test_non_stream_tools_round_trip(live, reconciled):
    client = live.openai()
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
        }
    ]
    first = client.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "look up relays"}],
        tools=tools,
        tool_choice="required",
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "lookup"
    second = client.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[
            {"role": "user", "content": "look up relays"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "relays relay"},
        ],
        tools=tools,
    )
    assert second.choices[0].message.content


def test_embeddings_and_images(live, reconciled):
    client = live.openai()
    emb = client.embeddings.create(model="text-embedding-3-small", input=["hello", "world"])
    assert len(emb.data) == 2 and emb.usage.prompt_tokens > 0
    raw = client.images.with_raw_response.generate(model="nano-banana-pro", prompt="a red fox", n=2)
    images = raw.parse()
    assert len(images.data) == 2
    rec = live.record(raw.headers["x-request-id"])
    # nano-banana-pro is priced per call: one call per image, $0.134 × rate × 1.0 each
    each = int(Decimal("0.134") * RATE * 1_000_000)
    assert (rec.billing_basis, rec.images, rec.cost_micro) == ("call", 2, 2 * each)


def test_models_list_is_what_the_key_can_call(live):
    ids = [m.id for m in live.openai().models.list()]
    assert "claude-sonnet-4-5" in ids and "gpt-5.1" in ids and "deepseek-v4" in ids
    assert "sora-2" not in ids  # Sora2Official is not among the demo token's groups


def test_relay_idle_means_a_stream_read_to_its_last_event_is_settled(live, relay_server):
    """The fixtures flush the database once the relay is idle; the SDK stops at `[DONE]` while
    the relay may still be writing the settlement, which a flush must not race."""
    from billing.models import UsageRecord

    raw = live.openai().chat.completions.with_raw_response.create(
        model="gpt-5.1", messages=[{"role": "user", "content": "count to three"}], stream=True
    )
    assert list(raw.parse())
    relay_server.wait_idle()
    assert not relay_server.server.server_state.tasks
    record = UsageRecord.objects.get(request_id=raw.headers["x-request-id"])
    assert record.settled_at is not None
