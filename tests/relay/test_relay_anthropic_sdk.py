"""The official Anthropic SDK against a live relay: native pass-through and conversion to OpenAI channels."""

from decimal import Decimal

import pytest

pytestmark = [pytest.mark.live]

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_messages_pass_through_to_anthropic_channel(live, reconciled):
    raw = live.anthropic().messages.with_raw_response.create(
        model="claude-sonnet-4-5",
        max_tokens=128,
        system=[{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in English."}],
        messages=[{"role": "user", "content": "hello"}],
    )
    message = raw.parse()
    assert message.model == "claude-sonnet-4-5"
    assert message.content[0].type == "text"
    assert message.stop_reason == "end_turn"
    rec = live.record(raw.headers["x-request-id"])
    assert (rec.status, rec.group_name, rec.multiplier) == ("success", "ClaudeCode", Decimal("0.95"))
    assert rec.input_tokens == message.usage.input_tokens
    assert rec.output_tokens == message.usage.output_tokens
    assert rec.api_format == "anthropic"


def test_messages_converted_to_openai_channel_with_tools(live, reconciled):
    message = live.anthropic().messages.create(
        model="deepseek-v4",
        max_tokens=256,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    )
    assert message.stop_reason == "tool_use"
    tool_use = next(block for block in message.content if block.type == "tool_use")
    assert tool_use.name == "get_weather"
    assert isinstance(tool_use.input, dict)
    follow_up = live.anthropic().messages.create(
        model="deepseek-v4",
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": [tool_use.model_dump(exclude_none=True)]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "Sunny, 21°C"}],
            },
        ],
    )
    assert follow_up.content and follow_up.content[0].type == "text"


def test_messages_stream_converted_from_openai_channel(live, reconciled):
    with live.anthropic().messages.stream(
        model="glm-5.1", max_tokens=128, messages=[{"role": "user", "content": "tell me a story"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_messages_stream_pass_through(live, reconciled):
    with live.anthropic().messages.stream(
        model="claude-sonnet-4-5", max_tokens=128, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and "message_stop" in events
    assert final.usage.output_tokens > 0


def test_beta_query_and_headers_are_accepted(live):
    client = live.anthropic(default_headers={"anthropic-beta": "prompt-caching-2024-07-31"})
    message = client.beta.messages.create(
        model="claude-sonnet-4-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content


def test_count_tokens(live):
    result = live.anthropic().messages.count_tokens(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hello " * 40}]
    )
    assert result.input_tokens > 10


def test_models_list_in_anthropic_shape(live):
    ids = [m.id for m in live.anthropic().models.list()]
    assert "claude-sonnet-4-5" in ids
