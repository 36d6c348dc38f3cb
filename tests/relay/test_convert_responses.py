"""Non-streaming response conversion, validated against the official SDK models."""

import anthropic.types
import openai.types.chat
import pytest

from core.pricing import Usage
from relay.convert import ConversionError
from relay.convert.responses import (
    anthropic_error_from,
    anthropic_message_to_openai_chat,
    openai_chat_to_anthropic_message,
    openai_error_from,
    upstream_error_message,
)
from relay.convert.usage import usage_from_anthropic, usage_from_openai

ANTHROPIC_TOOL_MESSAGE = {
    "id": "msg_01Aq9w938a90dw8q",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "User wants weather.", "signature": "EqQBCkYIBxgCKkA"},
        {"type": "text", "text": "I'll check the weather."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA", "unit": "celsius"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 2095,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 5000,
        "output_tokens": 503,
        "service_tier": "standard",
    },
}

OPENAI_TOOL_COMPLETION = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "object": "chat.completion",
    "created": 1741570283,
    "model": "deepseek-v4",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Let me look.",
                "reasoning_content": "Need the weather tool.",
                "tool_calls": [
                    {
                        "id": "call_abc123",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                    },
                    {
                        "id": "call_def456",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location": "Tok'},
                    },
                ],
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 1117,
        "completion_tokens": 46,
        "total_tokens": 1163,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_fc9f1d7035",
}


def test_anthropic_message_to_openai_chat_validates_and_keeps_everything():
    out = anthropic_message_to_openai_chat(ANTHROPIC_TOOL_MESSAGE, model="claude-sonnet-4-5")
    completion = openai.types.chat.ChatCompletion.model_validate(out)
    assert completion.model == "claude-sonnet-4-5"
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll check the weather."
    assert out["choices"][0]["message"]["reasoning_content"] == "User wants weather."
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name) == ("toolu_01A09q90qw90lq917835lq9", "get_weather")
    assert call.function.arguments == '{"location":"San Francisco, CA","unit":"celsius"}'
    assert completion.usage.prompt_tokens == 2095 + 100 + 5000
    assert completion.usage.completion_tokens == 503
    assert completion.usage.total_tokens == 2095 + 100 + 5000 + 503
    assert completion.usage.prompt_tokens_details.cached_tokens == 5000
    # billing sees the same usage whichever format it is read in
    assert usage_from_openai(out["usage"]) == usage_from_anthropic(ANTHROPIC_TOOL_MESSAGE["usage"])


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("stop_sequence", "stop"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        (None, "stop"),
    ],
)
def test_stop_reason_to_finish_reason(stop_reason, finish):
    msg = {**ANTHROPIC_TOOL_MESSAGE, "content": [{"type": "text", "text": "x"}], "stop_reason": stop_reason}
    out = anthropic_message_to_openai_chat(msg, model="m")
    assert out["choices"][0]["finish_reason"] == finish
    openai.types.chat.ChatCompletion.model_validate(out)


def test_openai_completion_to_anthropic_message_validates():
    out = openai_chat_to_anthropic_message(OPENAI_TOOL_COMPLETION, model="deepseek-v4")
    message = anthropic.types.Message.model_validate(out)
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert message.content[0].thinking == "Need the weather tool."
    assert message.content[1].text == "Let me look."
    assert message.content[2].input == {"location": "Paris"}
    assert message.content[2].id == "call_abc123"
    assert message.content[3].input == {"_raw_arguments": '{"location": "Tok'}  # kept, not lost
    assert message.usage.input_tokens == 1117 - 1024
    assert message.usage.cache_read_input_tokens == 1024
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.output_tokens == 46
    assert message.id.startswith("msg_")
    assert usage_from_anthropic(out["usage"]) == Usage(
        input_tokens=93, output_tokens=46, cache_read_tokens=1024
    )


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        ("function_call", "tool_use"),
        (None, "end_turn"),
        ("weird", "end_turn"),
    ],
)
def test_finish_reason_to_stop_reason(finish, stop_reason):
    resp = {
        "id": "x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": finish}],
    }
    out = openai_chat_to_anthropic_message(resp, model="m")
    assert out["stop_reason"] == stop_reason
    anthropic.types.Message.model_validate(out)


def test_tool_calls_with_finish_reason_stop_still_mean_tool_use():
    resp = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
                    ],
                },
                "finish_reason": "stop",
            }
        ]
    }
    out = openai_chat_to_anthropic_message(resp, model="m")
    assert out["stop_reason"] == "tool_use"
    assert out["content"] == [{"type": "tool_use", "id": "c1", "name": "f", "input": {}}]
    assert out["usage"] == {"input_tokens": 0, "output_tokens": 0}
    anthropic.types.Message.model_validate(out)


def test_text_only_round_trip():
    msg = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "stop_sequence": None,
        "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " world"}],
        "stop_reason": "max_tokens",
        "usage": {"input_tokens": 10, "output_tokens": 2},
    }
    back = openai_chat_to_anthropic_message(anthropic_message_to_openai_chat(msg, model="m"), model="m")
    assert back["content"] == [{"type": "text", "text": "Hello world"}]
    assert back["stop_reason"] == "max_tokens"
    assert usage_from_anthropic(back["usage"]) == Usage(input_tokens=10, output_tokens=2)
    assert back["id"] == "msg_chatcmpl-msg_1"


@pytest.mark.parametrize("bad", [None, [], {}, {"choices": []}, {"choices": ["x"]}, {"content": "x"}])
def test_unconvertible_responses_raise_conversion_error(bad):
    with pytest.raises(ConversionError):
        openai_chat_to_anthropic_message(bad, model="m")
    with pytest.raises(ConversionError):
        anthropic_message_to_openai_chat(bad, model="m")


def test_error_builders_are_format_native():
    body = openai_error_from(
        429,
        "Current group's upstream is saturated, please try again later",
        "rate_limit_error",
        "upstream_saturated",
    )
    assert body == {
        "error": {
            "message": "Current group's upstream is saturated, please try again later",
            "type": "rate_limit_error",
            "param": None,
            "code": "upstream_saturated",
        }
    }
    assert openai_error_from(400, "bad", "invalid_request_error", None)["error"]["code"] is None
    body = anthropic_error_from(401, "invalid x-api-key", "authentication_error")
    assert body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }
    anthropic.types.ErrorResponse.model_validate(body) if hasattr(anthropic.types, "ErrorResponse") else None


def test_upstream_error_message_reads_both_formats():
    assert upstream_error_message(b'{"error":{"message":"m1","type":"x"}}') == "m1"
    assert (
        upstream_error_message('{"type":"error","error":{"type":"overloaded_error","message":"m2"}}') == "m2"
    )
    assert upstream_error_message({"error": "m3"}) == "m3"
    assert upstream_error_message(b"<html>bad gateway</html>") is None
    assert upstream_error_message(b"[1]") is None
