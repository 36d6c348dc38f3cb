"""Property tests: random and mutated bodies and byte streams never raise anything but
ConversionError / SSEError from the public functions, and valid data survives any chunking."""

import copy
import json
import os

import anthropic.types
import openai.types.chat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.convert import ConversionError, SSEError
from relay.convert.requests import anthropic_messages_to_openai_chat, openai_chat_to_anthropic
from relay.convert.responses import anthropic_message_to_openai_chat, openai_chat_to_anthropic_message
from relay.convert.sse import SSEParser
from relay.convert.streams import (
    AnthropicPassthroughStream,
    AnthropicToOpenAIStream,
    OpenAIPassthroughStream,
    OpenAIToAnthropicStream,
)
from relay.convert.usage import request_chars, usage_from_anthropic, usage_from_openai
from tests.relay.convert_samples import (
    anthropic_thinking_stream,
    anthropic_tool_stream,
    deepseek_reasoning_stream,
    openai_tool_stream,
    parse,
)
from tests.relay.test_convert_requests import CLAUDE_CODE_BODY, OPENAI_TOOL_CONVERSATION
from tests.relay.test_convert_responses import ANTHROPIC_TOOL_MESSAGE, OPENAI_TOOL_COMPLETION

# Deterministic by default (CI); CONVERT_EXAMPLES=2000 explores randomly with more examples.
EXPLORE = int(os.environ.get("CONVERT_EXAMPLES", "0"))
FAST = settings(
    max_examples=EXPLORE or 120,
    derandomize=not EXPLORE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KEYS = st.sampled_from(
    [
        "role",
        "content",
        "type",
        "text",
        "tool_calls",
        "function",
        "arguments",
        "name",
        "id",
        "input",
        "tool_use_id",
        "tool_call_id",
        "image_url",
        "url",
        "source",
        "data",
        "media_type",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "parameters",
        "input_schema",
        "usage",
        "choices",
        "delta",
        "index",
        "finish_reason",
        "stop_reason",
        "message",
        "partial_json",
        "max_tokens",
        "stream",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "user",
            "assistant",
            "system",
            "tool",
            "developer",
            "text",
            "image",
            "tool_use",
            "tool_result",
            "thinking",
            "function",
            "auto",
            "any",
            "required",
            "none",
            "data:image/png;base64,AAAA",
            "https://x.test/a.png",
            "{}",
            '{"a": 1}',
            "[DONE]",
        ]
    ),
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(KEYS | st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=25,
)


@st.composite
def mutated(draw, original):
    """`original` with a few random subtrees replaced, deleted or retyped."""
    value = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 4))):
        nodes = []

        def walk(node, parent, key):
            nodes.append((parent, key))
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(v, node, k)
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    walk(v, node, i)

        walk(value, None, None)
        parent, key = draw(st.sampled_from(nodes))
        action = draw(st.sampled_from(["replace", "delete", "replace"]))
        if parent is None:
            value = draw(JSON)
            continue
        if action == "delete" and isinstance(parent, dict):
            del parent[key]
        else:
            parent[key] = draw(JSON)
    return value


def only_conversion_errors(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except ConversionError as exc:
        assert str(exc)
        return None


@FAST
@given(st.one_of(JSON, mutated(OPENAI_TOOL_CONVERSATION)))
def test_openai_requests_raise_only_conversion_error(body):
    out = only_conversion_errors(openai_chat_to_anthropic, body)
    if out is not None:
        assert isinstance(out["max_tokens"], int) and out["max_tokens"] >= 1
        assert out["messages"] and all(m["role"] in ("user", "assistant") for m in out["messages"])
        roles = [m["role"] for m in out["messages"]]
        assert all(a != b for a, b in zip(roles, roles[1:]))  # strictly alternating
    request_chars(body)


@FAST
@given(st.one_of(JSON, mutated(CLAUDE_CODE_BODY)))
def test_anthropic_requests_raise_only_conversion_error(body):
    out = only_conversion_errors(anthropic_messages_to_openai_chat, body)
    if out is not None and out.get("stream"):
        assert out["stream_options"] == {"include_usage": True}
    request_chars(body)


@FAST
@given(st.one_of(JSON, mutated(ANTHROPIC_TOOL_MESSAGE)))
def test_anthropic_responses_raise_only_conversion_error_and_validate(resp):
    out = only_conversion_errors(anthropic_message_to_openai_chat, resp, model="m")
    if out is not None:
        openai.types.chat.ChatCompletion.model_validate(out)
    usage_from_anthropic(resp.get("usage") if isinstance(resp, dict) else resp)


@FAST
@given(st.one_of(JSON, mutated(OPENAI_TOOL_COMPLETION)))
def test_openai_responses_raise_only_conversion_error_and_validate(resp):
    out = only_conversion_errors(openai_chat_to_anthropic_message, resp, model="m")
    if out is not None:
        anthropic.types.Message.model_validate(out)
    usage_from_openai(resp.get("usage") if isinstance(resp, dict) else resp)


TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)


@FAST
@given(st.lists(st.tuples(st.sampled_from(["user", "assistant"]), TEXT), min_size=1, max_size=6), TEXT)
def test_text_conversations_round_trip(turns, system):
    turns = [("user", "start"), *turns]
    body = {
        "model": "m",
        "messages": [{"role": "system", "content": system}] + [{"role": r, "content": t} for r, t in turns],
    }
    there = openai_chat_to_anthropic(body)
    back = anthropic_messages_to_openai_chat(there)
    assert back["messages"][0] == {"role": "system", "content": system}
    # consecutive same-role turns were merged on the way; their texts survive in order
    texts = []
    for m in back["messages"][1:]:
        texts.append((m["role"], m["content"]))
    merged = []
    for role, text in turns:
        if merged and merged[-1][0] == role:
            sep = "\n\n" if role == "user" else ""
            merged[-1] = (role, merged[-1][1] + sep + text)
        else:
            merged.append((role, text))
    assert texts == merged


# ---------------------------------------------------------------- SSE bytes


def parse_chunks(data: bytes, cuts):
    parser = SSEParser(max_event_bytes=4096)
    events = []
    cuts = sorted({c % (len(data) + 1) for c in cuts})
    start = 0
    for cut in [*cuts, len(data)]:
        events.extend(parser.feed(data[start:cut]))
        start = cut
    return events + parser.flush()


SSE_PIECES = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from(
            [
                b"data: ",
                b"event: x\n",
                b"\n",
                b"\r\n",
                b"\r",
                b":c\n",
                b"data:{}\n\n",
                b"\xef\xbb\xbf",
                b"data: [DONE]\n\n",
                b"\xe4\xbd",
                b"id: 1\n",
                b"retry: x\n",
            ]
        ),
    ),
    max_size=30,
)


@FAST
@given(SSE_PIECES, st.lists(st.integers(0, 10_000), max_size=8))
def test_sse_parser_is_chunking_independent_and_raises_only_sse_error(pieces, cuts):
    data = b"".join(pieces)
    try:
        whole = parse_chunks(data, [])
    except SSEError:
        return
    assert parse_chunks(data, cuts) == whole
    for event in whole:
        assert isinstance(event.data, str)


@settings(max_examples=40, deadline=None, derandomize=not EXPLORE)
@given(st.integers(1, 200), st.lists(st.integers(0, 10**6), max_size=10))
def test_oversized_events_raise_sse_error_at_any_chunking(extra, cuts):
    data = b"data: " + b"x" * (4096 + extra) + b"\n\n"
    try:
        parse_chunks(data, cuts)
    except SSEError:
        return
    raise AssertionError("an event above the bound was accepted")


# ---------------------------------------------------------------- stream converters

CONVERTERS = [
    lambda: AnthropicToOpenAIStream("m", include_usage=True),
    lambda: AnthropicToOpenAIStream("m", include_usage=False),
    lambda: OpenAIToAnthropicStream("m"),
    lambda: OpenAIPassthroughStream(True),
    lambda: OpenAIPassthroughStream(False),
    lambda: AnthropicPassthroughStream(),
]
SAMPLE_EVENTS = [
    e
    for raw in (
        anthropic_tool_stream(),
        anthropic_thinking_stream(),
        openai_tool_stream(),
        deepseek_reasoning_stream(),
    )
    for e in parse(raw)
]


@st.composite
def event_streams(draw):
    from relay.convert.sse import SSEEvent

    events = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["sample", "mutated", "random"]))
        if kind == "sample":
            events.append(draw(st.sampled_from(SAMPLE_EVENTS)))
        elif kind == "mutated":
            base = draw(st.sampled_from(SAMPLE_EVENTS))
            if base.data == "[DONE]":
                events.append(base)
                continue
            data = draw(mutated(json.loads(base.data)))
            events.append(SSEEvent(base.event, json.dumps(data)))
        else:
            events.append(SSEEvent(draw(st.none() | st.text(max_size=10)), draw(st.text(max_size=40))))
    return events


@FAST
@given(st.sampled_from(range(len(CONVERTERS))), event_streams(), st.booleans())
def test_stream_converters_never_raise_and_emit_valid_sse(which, events, end_with_error):
    conv = CONVERTERS[which]()
    out = []
    for event in events:
        if conv._terminated or conv._errored:
            break
        out.extend(conv._feed(event))  # the inner method: no safety net may be needed
    out.extend(conv.error("cut") if end_with_error else conv.finish())
    assert conv.usage is None or conv.usage.input_tokens >= 0
    assert conv.output_chars >= 0
    assert isinstance(conv.completed, bool)
    parsed = parse(b"".join(out))
    for event in parsed:
        if event.data != "[DONE]":
            assert isinstance(json.loads(event.data), dict)


STREAM_CASES = [
    (lambda: AnthropicToOpenAIStream("m", include_usage=True), anthropic_tool_stream()),
    (lambda: AnthropicToOpenAIStream("m", include_usage=False), anthropic_thinking_stream()),
    (lambda: OpenAIToAnthropicStream("m"), openai_tool_stream()),
    (lambda: OpenAIToAnthropicStream("m"), deepseek_reasoning_stream()),
    (lambda: OpenAIPassthroughStream(False), openai_tool_stream()),
    (lambda: AnthropicPassthroughStream(), anthropic_tool_stream()),
]


def relay_loop(make, raw: bytes, cuts) -> list:
    """What the relay does: parse network chunks, feed events, finish at a clean EOF."""
    conv, parser, out = make(), SSEParser(), []
    start = 0
    for cut in [*sorted({c % (len(raw) + 1) for c in cuts}), len(raw)]:
        for event in parser.feed(raw[start:cut]):
            out.extend(conv.feed(event))
        start = cut
    for event in parser.flush():
        out.extend(conv.feed(event))
    assert conv.completed and not conv.saw_garbage
    out.extend(conv.finish())
    events = []
    for event in parse(b"".join(out)):
        data = event.data if event.data == "[DONE]" else json.loads(event.data)
        if isinstance(data, dict):
            data.pop("created", None)
        events.append((event.event, data))
    return events


@FAST
@given(st.sampled_from(range(len(STREAM_CASES))), st.lists(st.integers(0, 10**6), max_size=12))
def test_stream_conversion_does_not_depend_on_network_chunking(case, cuts):
    make, raw = STREAM_CASES[case]
    assert relay_loop(make, raw, cuts) == relay_loop(make, raw, [])
