"""Structured output and reasoning settings across OpenAI chat ⇄ Anthropic messages.

Property tests: a converted structured-output request keeps its schema, and converted reasoning
settings keep their effort, both ways. Unit tests: what Claude Code sends, the json_object forced
tool and its answer, and the 400s naming fields a route cannot carry.
"""

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.convert import ConversionError
from relay.convert.fields import ANTHROPIC_TO_OPENAI_CHAT, OPENAI_CHAT_TO_ANTHROPIC, REFUSED
from relay.convert.requests import (
    JSON_OBJECT_TOOL,
    REASONING_BUDGETS,
    anthropic_messages_to_openai_chat,
    openai_chat_to_anthropic,
)
from relay.convert.responses import anthropic_message_to_openai_chat
from relay.convert.sse import SSEEvent
from relay.convert.streams import AnthropicToOpenAIStream
from tests.relay.test_convert_properties import FAST

NAMES = st.text("abcdefghij_", min_size=1, max_size=8)
SCALARS = st.sampled_from([{"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}])
SCHEMAS = st.recursive(
    SCALARS | st.builds(lambda e: {"type": "string", "enum": e}, st.lists(NAMES, min_size=1, max_size=3)),
    lambda inner: (
        st.builds(lambda i: {"type": "array", "items": i}, inner)
        | st.builds(
            lambda props: {
                "type": "object",
                "properties": props,
                "required": sorted(props),
                "additionalProperties": False,
            },
            st.dictionaries(NAMES, inner, max_size=4),
        )
    ),
    max_leaves=8,
)
OBJECT_SCHEMAS = st.builds(
    lambda props: {
        "type": "object",
        "properties": props,
        "required": sorted(props),
        "additionalProperties": False,
    },
    st.dictionaries(NAMES, SCHEMAS, max_size=4),
)
EFFORTS = st.sampled_from(["low", "medium", "high"])
USER = [{"role": "user", "content": "hi"}]


@FAST
@given(OBJECT_SCHEMAS)
def test_structured_output_requests_keep_their_schema_both_ways(schema):
    openai_body = {
        "model": "claude-sonnet-4-5",
        "messages": USER,
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
    }
    anthropic_body = openai_chat_to_anthropic(openai_body)
    assert anthropic_body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    back = anthropic_messages_to_openai_chat(anthropic_body)
    assert back["response_format"]["type"] == "json_schema"
    assert back["response_format"]["json_schema"]["schema"] == schema
    beta = anthropic_messages_to_openai_chat(
        {
            "model": "m",
            "max_tokens": 9,
            "messages": USER,
            "output_format": {"type": "json_schema", "schema": schema},
        }
    )
    assert beta["response_format"]["json_schema"]["schema"] == schema


@FAST
@given(EFFORTS, st.one_of(st.none(), st.integers(70_000, 200_000)), st.booleans())
def test_reasoning_settings_keep_their_effort_both_ways(effort, max_tokens, stream):
    body = {"model": "claude-sonnet-4-5", "messages": USER, "reasoning_effort": effort, "stream": stream}
    if max_tokens:
        body["max_completion_tokens"] = max_tokens
    anthropic_body = openai_chat_to_anthropic(body)
    thinking = anthropic_body["thinking"]
    assert thinking == {"type": "enabled", "budget_tokens": REASONING_BUDGETS[effort]}
    assert anthropic_body["max_tokens"] > thinking["budget_tokens"]  # Anthropic requires room for the answer
    assert anthropic_messages_to_openai_chat(anthropic_body)["reasoning_effort"] == effort
    claude_code = {"model": "m", "max_tokens": 9, "messages": USER, "thinking": {"type": "adaptive"}}
    converted = anthropic_messages_to_openai_chat({**claude_code, "output_config": {"effort": effort}})
    assert converted["reasoning_effort"] == effort


def test_claude_code_body_for_a_non_claude_model_converts():
    """Claude Code 2.1.x: system reminders inside `messages`, adaptive thinking, an effort."""
    body = {
        "model": "deepseek-v4",
        "max_tokens": 32000,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Say hello"}]},
            {"role": "system", "content": "Deferred tools are available via ToolSearch."},
            {"role": "system", "content": [{"type": "text", "text": "Environment: /tmp"}]},
        ],
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "stream": True,
    }
    out = anthropic_messages_to_openai_chat(body)
    assert [m["role"] for m in out["messages"]] == ["system", "user", "system", "system"]
    assert out["messages"][2]["content"] == "Deferred tools are available via ToolSearch."
    assert out["messages"][3]["content"] == "Environment: /tmp"
    assert out["reasoning_effort"] == "high"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"output_config": {"effort": "high", "task_budget": 5}}, "'output_config.task_budget'"),
        ({"output_config": {"effort": "extreme"}}, "'output_config.effort'"),
        ({"output_config": {"format": {"type": "xml"}}}, "'output_config.format'"),
        ({"output_config": "high"}, "output_config must be a JSON object"),
        (
            {
                "output_config": {"format": {"type": "json_schema", "schema": {}}},
                "output_format": {"type": "json_schema", "schema": {}},
            },
            "not both",
        ),
    ],
)
def test_anthropic_output_settings_that_cannot_be_carried_are_refused_by_name(body, fragment):
    with pytest.raises(ConversionError, match=fragment):
        anthropic_messages_to_openai_chat({"model": "m", "max_tokens": 9, "messages": USER, **body})


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"logprobs": True}, "'logprobs'"),
        ({"top_logprobs": 3}, "'top_logprobs'"),
        ({"logit_bias": {"50256": -100}}, "'logit_bias'"),
        ({"presence_penalty": 0.5}, "'presence_penalty'"),
        ({"modalities": ["text", "audio"]}, "'modalities'"),
        ({"response_format": {"type": "grammar"}}, "'response_format.type'"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "json_schema.schema"),
        ({"reasoning_effort": "extreme"}, "'reasoning_effort'"),
        ({"reasoning_effort": "high", "temperature": 0.2}, "'temperature'"),
        ({"reasoning_effort": "low", "max_completion_tokens": 800}, "'max_completion_tokens'"),
        ({"thinking": {"type": "enabled", "budget_tokens": 10}}, "'thinking.budget_tokens'"),
        ({"thinking": {"type": "on"}}, "'thinking.type'"),
        (
            {
                "response_format": {"type": "json_object"},
                "tools": [{"type": "function", "function": {"name": "f"}}],
            },
            "json_object cannot be combined with 'tools'",
        ),
        ({"response_format": {"type": "json_object"}, "reasoning_effort": "low"}, "with reasoning"),
    ],
)
def test_openai_fields_anthropic_cannot_honour_are_refused_by_name(extra, fragment):
    with pytest.raises(ConversionError, match=fragment):
        openai_chat_to_anthropic({"model": "claude-sonnet-4-5", "messages": USER, **extra})


def test_extra_body_thinking_is_taken_as_is_and_sizes_max_tokens():
    out = openai_chat_to_anthropic(
        {"model": "c", "messages": USER, "thinking": {"type": "enabled", "budget_tokens": 2048}}
    )
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert out["max_tokens"] > 2048
    clamped = openai_chat_to_anthropic(
        {"model": "c", "messages": USER, "reasoning_effort": "high", "max_completion_tokens": 5000}
    )
    assert clamped["thinking"]["budget_tokens"] < clamped["max_tokens"] == 5000
    assert "thinking" not in openai_chat_to_anthropic(
        {"model": "c", "messages": USER, "reasoning_effort": "none"}
    )


def test_json_object_is_a_forced_tool_whose_input_comes_back_as_the_content():
    out = openai_chat_to_anthropic(
        {"model": "c", "messages": USER, "response_format": {"type": "json_object"}}
    )
    assert out["tool_choice"] == {"type": "tool", "name": JSON_OBJECT_TOOL}
    assert [t["name"] for t in out["tools"]] == [JSON_OBJECT_TOOL]
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": JSON_OBJECT_TOOL, "input": {"a": [1, 2]}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }
    chat = anthropic_message_to_openai_chat(message, model="c")
    choice = chat["choices"][0]
    assert json.loads(choice["message"]["content"]) == {"a": [1, 2]}
    assert "tool_calls" not in choice["message"] and choice["finish_reason"] == "stop"


def test_json_object_stream_comes_back_as_content_deltas():
    conv = AnthropicToOpenAIStream("c", include_usage=False)
    events = [
        {
            "type": "message_start",
            "message": {"id": "msg_1", "usage": {"input_tokens": 3, "output_tokens": 1}},
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t", "name": JSON_OBJECT_TOOL, "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"a"'},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": ": 1}"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}},
        {"type": "message_stop"},
    ]
    out = b"".join(b for e in events for b in conv.feed(SSEEvent(e["type"], json.dumps(e))))
    chunks = [json.loads(line[6:]) for line in out.decode().splitlines() if line.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert json.loads("".join(d.get("content") or "" for d in deltas)) == {"a": 1}
    assert not any("tool_calls" in d for d in deltas)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


# ---------------------------------------------------------------- chained and table-driven properties

ANTHROPIC_EFFORTS_ORDER = ["low", "medium", "high"]


@FAST
@given(OBJECT_SCHEMAS, st.sampled_from(["minimal", "low", "medium", "high", "xhigh"]), st.booleans())
def test_responses_and_gemini_requests_reach_anthropic_with_their_schema_and_effort(schema, effort, stream):
    """Responses and Gemini clients on a Claude model go through chat: both steps keep the settings."""
    from relay.convert.gemini import gemini_to_chat
    from relay.convert.openai_responses import responses_to_chat

    responses = {
        "model": "claude-sonnet-4-5",
        "input": "x",
        "stream": stream,
        "reasoning": {"effort": effort},
        "text": {"format": {"type": "json_schema", "name": "out", "schema": schema}},
    }
    there = openai_chat_to_anthropic(responses_to_chat(responses))
    assert there["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert there["thinking"] == {"type": "enabled", "budget_tokens": REASONING_BUDGETS[effort]}
    assert there["max_tokens"] > there["thinking"]["budget_tokens"]
    level = {"minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH"}.get(effort, "HIGH")
    config = {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
        "thinkingConfig": {"thinkingLevel": level},
    }
    gemini = {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": config}
    there = openai_chat_to_anthropic(gemini_to_chat(gemini, model="claude-sonnet-4-5", stream=stream))
    assert there["output_config"]["format"]["schema"] == schema
    assert there["thinking"]["budget_tokens"] == REASONING_BUDGETS[level.lower()]


@FAST
@given(st.integers(1024, 200_000), st.integers(0, 100_000))
def test_anthropic_thinking_budgets_keep_their_order_and_bucket_both_ways(budget, more):
    """A bigger thinking budget never maps to a smaller effort, and an effort sent back to
    Anthropic lands in the budget bucket it was read from."""

    def effort(b: int) -> str:
        body = {"model": "m", "max_tokens": 300_000, "messages": USER}
        return anthropic_messages_to_openai_chat(
            {**body, "thinking": {"type": "enabled", "budget_tokens": b}}
        )["reasoning_effort"]

    low, high = effort(budget), effort(budget + more)
    assert ANTHROPIC_EFFORTS_ORDER.index(low) <= ANTHROPIC_EFFORTS_ORDER.index(high)
    back = openai_chat_to_anthropic({"model": "c", "messages": USER, "reasoning_effort": low})
    assert effort(back["thinking"]["budget_tokens"]) == low


@FAST
@given(st.sampled_from(["low", "medium", "high"]), OBJECT_SCHEMAS)
def test_claude_code_effort_and_schema_reach_an_openai_model_and_come_back(effort, schema):
    """Anthropic output_config (effort + format) → chat → Anthropic again keeps both."""
    body = {
        "model": "m",
        "max_tokens": 64_000,
        "messages": USER,
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": effort, "format": {"type": "json_schema", "schema": schema}},
    }
    chat = anthropic_messages_to_openai_chat(body)
    assert chat["reasoning_effort"] == effort
    assert chat["response_format"]["json_schema"]["schema"] == schema
    back = openai_chat_to_anthropic(chat)
    assert back["output_config"]["format"]["schema"] == schema
    assert back["thinking"]["budget_tokens"] == REASONING_BUDGETS[effort]


def names_a_field(message: str, body: dict) -> bool:
    """The message names one of the body's fields: quoted, or leading (`x must be ...`)."""
    return any(re.search(rf"(^|')({re.escape(key)})\b", message) for key in body)


OPENAI_KEYS = st.sampled_from(sorted(OPENAI_CHAT_TO_ANTHROPIC) + ["frobnicate", "top_k"])
ANTHROPIC_KEYS = st.sampled_from(sorted(ANTHROPIC_TO_OPENAI_CHAT) + ["frobnicate", "n"])
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.sampled_from(["auto", "default", "standard_only", "medium", "low", "u1", ["text"]]),
    st.just({"user_id": "u1"}),
    st.just({"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}),
    st.sampled_from([{}, [], {"effort": []}, {"type": {}}, {"type": "adaptive", "display": "omitted"}]),
)


@FAST
@given(st.dictionaries(OPENAI_KEYS, VALUES, max_size=5))
def test_openai_fields_are_carried_into_anthropic_fields_or_refused_by_name(extra):
    body = {"model": "claude", "messages": USER, **extra}
    try:
        out = openai_chat_to_anthropic(body)
    except ConversionError as exc:
        assert names_a_field(str(exc), body), str(exc)
        return
    assert set(out) <= set(ANTHROPIC_TO_OPENAI_CHAT), "only fields the Anthropic API defines go upstream"
    for key, value in extra.items():
        if OPENAI_CHAT_TO_ANTHROPIC[key].decision == REFUSED:
            assert value in OPENAI_CHAT_TO_ANTHROPIC[key].inert


@FAST
@given(st.dictionaries(ANTHROPIC_KEYS, VALUES, max_size=5))
def test_anthropic_fields_are_carried_into_openai_fields_or_refused_by_name(extra):
    body = {"model": "m", "max_tokens": 64, "messages": USER, **extra}
    try:
        out = anthropic_messages_to_openai_chat(body)
    except ConversionError as exc:
        assert names_a_field(str(exc), body), str(exc)
        return
    assert set(out) <= set(OPENAI_CHAT_TO_ANTHROPIC), "only fields the OpenAI API defines go upstream"
    assert not any(
        ANTHROPIC_TO_OPENAI_CHAT[key].decision == REFUSED and v is not None for key, v in extra.items()
    )
