"""Stream converters, checked by the official SDKs' own stream accumulators."""

import json

import anthropic.types
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from pydantic import TypeAdapter

from core.pricing import Usage
from relay.convert.sse import OPENAI_DONE, SSEEvent
from relay.convert.streams import (
    AnthropicPassthroughStream,
    AnthropicToOpenAIStream,
    OpenAIPassthroughStream,
    OpenAIToAnthropicStream,
)
from tests.relay.convert_samples import (
    TOOL_ARGS,
    anthropic_event,
    anthropic_thinking_stream,
    anthropic_tool_stream,
    deepseek_reasoning_stream,
    delta,
    openai_chunk,
    openai_tool_stream,
    parse,
    run,
)

EVENT = TypeAdapter(anthropic.types.RawMessageStreamEvent)


def openai_final(raw: bytes):
    """Validate every chunk with the SDK and accumulate them the way the SDK does."""
    events = parse(raw)
    assert events[-1].data == "[DONE]"
    assert all(e.data != "[DONE]" for e in events[:-1])
    state = ChatCompletionStreamState()
    chunks = []
    for event in events[:-1]:
        chunk = ChatCompletionChunk.model_validate_json(event.data)
        chunks.append(chunk)
        state.handle_chunk(chunk)
    return state.current_completion_snapshot, chunks


def anthropic_final(raw: bytes):
    events = parse(raw)
    snapshot = None
    json_bufs: dict = {}
    types = []
    for event in events:
        if event.event == "ping":  # the SDK skips pings, as it must
            assert event.data == '{"type":"ping"}'
            types.append("ping")
            continue
        parsed = EVENT.validate_json(event.data)
        assert event.event == parsed.type  # event name always matches the payload's type
        types.append(parsed.type)
        snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs=json_bufs)
    return snapshot, types


# ---------------------------------------------------------------- Anthropic → OpenAI


@pytest.mark.parametrize("pieces", [1, 5, len(TOOL_ARGS)])
def test_anthropic_tool_stream_to_openai_chunks(pieces):
    conv = AnthropicToOpenAIStream("claude-sonnet-4-5", include_usage=True)
    out = run(conv, anthropic_tool_stream(pieces=pieces))
    final, chunks = openai_final(out)
    assert chunks[0].choices[0].delta.role == "assistant"
    message = final.choices[0].message
    assert message.content == "Okay, let's check the weather."
    assert len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert (call.id, call.function.name) == ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")
    assert json.loads(call.function.arguments) == json.loads(TOOL_ARGS)
    assert call.function.arguments == TOOL_ARGS
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.id == "chatcmpl-msg_014p7gG3wDgGV9EUtLvnow3U"
    assert final.model == "claude-sonnet-4-5"
    # usage chunk: empty choices, OpenAI semantics (prompt includes cache)
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 472 + 30 + 1000
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 1000
    assert chunks[-1].usage.completion_tokens == 89
    assert conv.usage == Usage(
        input_tokens=472, output_tokens=89, cache_read_tokens=1000, cache_write_tokens=30
    )
    assert conv.completed and not conv.saw_garbage
    assert conv.output_chars == len("Okay, let's check the weather.") + len(TOOL_ARGS)
    assert conv.finish() == [] and conv.error("late") == []


def test_anthropic_stream_without_include_usage_has_no_usage_anywhere():
    conv = AnthropicToOpenAIStream("m", include_usage=False)
    out = run(conv, anthropic_tool_stream())
    _, chunks = openai_final(out)
    assert b'"usage"' not in out
    assert all(c.choices for c in chunks)
    assert conv.usage.output_tokens == 89  # still tracked for billing


def test_anthropic_thinking_stream_to_openai_reasoning_content():
    conv = AnthropicToOpenAIStream("m", include_usage=True)
    out = run(conv, anthropic_thinking_stream())
    final, chunks = openai_final(out)
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    assert reasoning == "27*453 = 12231"
    assert final.choices[0].message.content == "12,231"
    assert final.choices[0].finish_reason == "length"
    assert b"signature" not in out


def test_anthropic_cut_stream_gets_an_openai_error_event_and_no_done():
    raw = anthropic_tool_stream()
    cut = raw[: raw.index(b'event: content_block_stop\ndata: {"type": "content_block_stop", "index": 1}')]
    conv = AnthropicToOpenAIStream("m", include_usage=True)
    out = run(conv, cut)
    assert not conv.completed
    assert OPENAI_DONE not in out
    err = conv.error("upstream connection reset")
    assert len(err) == 1
    body = json.loads(parse(err[0])[0].data)
    assert body["error"]["message"] == "upstream connection reset"
    assert body["error"]["type"] == "upstream_error"
    assert conv.error("again") == [] and conv.finish() == []
    assert conv.usage == Usage(
        input_tokens=472, output_tokens=2, cache_read_tokens=1000, cache_write_tokens=30
    )
    assert conv.output_chars > 0


def test_anthropic_stream_closed_after_message_delta_is_finished_cleanly():
    raw = anthropic_tool_stream()
    cut = raw[: raw.index(b"event: message_stop")]
    conv = AnthropicToOpenAIStream("m", include_usage=True)
    out = run(conv, cut, finish=False)
    assert conv.completed and OPENAI_DONE not in out  # the answer is whole; the marker is owed
    out += b"".join(conv.finish())
    assert out.endswith(OPENAI_DONE) and conv.finish() == []
    openai_final(out)


def test_anthropic_upstream_error_event_becomes_openai_error():
    raw = anthropic_tool_stream()
    cut = raw[: raw.index(b"event: content_block_stop")]
    error = (
        b"event: error\n"
        b'data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    )
    conv = AnthropicToOpenAIStream("m", include_usage=False)
    out = run(conv, cut + error + raw[len(cut) :], finish=True)
    assert conv.upstream_error == "Overloaded" and not conv.completed
    last = parse(out)[-1]
    assert json.loads(last.data)["error"]["message"] == "Overloaded"
    assert OPENAI_DONE not in out
    assert conv.error("x") == []


def test_anthropic_garbage_events_are_skipped():
    raw = anthropic_tool_stream()
    garbage = (
        b"data: {not json\n\n"
        b"data: [1,2]\n\n"
        b'data: {"type":"content_block_delta","index":7,'
        b'"delta":{"type":"input_json_delta","partial_json":"x"}}\n\n'
        b'data: {"type":"mystery"}\n\n'
        b'data: {"type":"content_block_start","index":"a","content_block":3}\n\n'
    )
    conv = AnthropicToOpenAIStream("m", include_usage=True)
    i = raw.index(b"event: content_block_start")
    out = run(conv, raw[:i] + garbage + raw[i:])
    assert conv.saw_garbage and conv.completed
    final, _ = openai_final(out)
    assert final.choices[0].message.tool_calls[0].function.arguments == TOOL_ARGS


# ---------------------------------------------------------------- OpenAI → Anthropic


def test_openai_tool_stream_to_exact_anthropic_event_sequence():
    conv = OpenAIToAnthropicStream("deepseek-v4", input_tokens=2000)
    out = run(conv, openai_tool_stream(pieces=len(TOOL_ARGS)))
    message, types = anthropic_final(out)
    n = len(TOOL_ARGS)
    assert types == (
        [
            "message_start",
            "ping",
            "content_block_start",
            *["content_block_delta"] * n,
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    )
    anthropic.types.Message.model_validate(message.model_dump())
    assert [b.type for b in message.content] == ["tool_use", "tool_use"]
    assert message.content[0].input == json.loads(TOOL_ARGS)
    assert message.content[0].id == "call_DdmO9pD3xa9XTPNJ32zg2hcA"
    assert (message.content[1].name, message.content[1].input) == ("get_time", {"tz": "UTC"})
    assert message.stop_reason == "tool_use"
    assert message.model == "deepseek-v4"
    assert message.id == "msg_chatcmpl-9xYz"
    assert message.usage.input_tokens == 2006 - 1920
    assert message.usage.cache_read_input_tokens == 1920
    assert message.usage.output_tokens == 300
    start = json.loads(parse(out)[0].data)
    assert start["message"]["usage"] == {"input_tokens": 2000, "output_tokens": 0}
    assert conv.usage == Usage(input_tokens=86, output_tokens=300, cache_read_tokens=1920)
    assert conv.completed and not conv.saw_garbage
    assert conv.output_chars == len(TOOL_ARGS) + len('{"tz": "UTC"}')


def test_deepseek_reasoning_stream_to_thinking_then_text():
    conv = OpenAIToAnthropicStream("deepseek-v4")
    out = run(conv, deepseek_reasoning_stream())
    message, types = anthropic_final(out)
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Let me think hard."
    assert message.content[1].text == "Hello there!"
    assert message.stop_reason == "end_turn"
    assert conv.usage == Usage(input_tokens=116, output_tokens=60, cache_read_tokens=384)
    assert types.count("content_block_start") == types.count("content_block_stop") == 2


def test_openai_stream_without_usage_reports_an_estimate_to_the_client_but_none_for_billing():
    conv = OpenAIToAnthropicStream("m")
    out = run(conv, openai_tool_stream(include_usage=False))
    message, _ = anthropic_final(out)
    assert conv.usage is None
    assert message.usage.output_tokens >= 1


def test_openai_stream_without_done_but_with_finish_reason_is_finished_by_finish():
    raw = openai_tool_stream()
    conv = OpenAIToAnthropicStream("m")
    out = run(conv, raw[: raw.index(b"data: [DONE]")], finish=False)
    assert conv.completed and b"message_stop" not in out
    out += b"".join(conv.finish())
    _, types = anthropic_final(out)
    assert types[-2:] == ["message_delta", "message_stop"]


def test_openai_cut_stream_gets_anthropic_error_event():
    raw = openai_tool_stream()
    conv = OpenAIToAnthropicStream("m")
    out = run(conv, raw[: raw.index(b'"finish_reason": "tool_calls"') - 200].rsplit(b"\n\n", 1)[0] + b"\n\n")
    assert not conv.completed and b"message_stop" not in out
    err = conv.error("upstream stream ended early")
    event = parse(err[0])[0]
    assert event.event == "error"
    assert json.loads(event.data) == {
        "type": "error",
        "error": {"type": "api_error", "message": "upstream stream ended early"},
    }
    assert conv.error("x") == [] and conv.finish() == []


def test_openai_upstream_error_chunk_becomes_anthropic_error_event():
    raw = openai_chunk(delta({"role": "assistant", "content": "Hi"})) + (
        b'data: {"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": null}}\n\n'
    )
    conv = OpenAIToAnthropicStream("m")
    out = run(conv, raw)
    events = parse(out)
    assert events[-1].event == "error" and "Rate limit reached" in events[-1].data
    assert conv.upstream_error == "Rate limit reached" and not conv.completed


def test_openai_tool_calls_without_index_are_grouped_by_id():
    raw = b"".join(
        [
            openai_chunk(
                delta(
                    {
                        "tool_calls": [
                            {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x":'}}
                        ]
                    }
                )
            ),
            openai_chunk(delta({"tool_calls": [{"function": {"arguments": " 1}"}}]})),
            openai_chunk(
                delta(
                    {
                        "tool_calls": [
                            {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}
                        ]
                    }
                )
            ),
            openai_chunk(delta({}, "stop")),
            b"data: [DONE]\n\n",
        ]
    )
    message, _ = anthropic_final(run(OpenAIToAnthropicStream("m"), raw))
    assert [(b.name, b.input) for b in message.content] == [("f", {"x": 1}), ("g", {})]
    assert message.stop_reason == "tool_use"


def test_openai_garbage_chunks_are_skipped():
    raw = deepseek_reasoning_stream()
    garbage = b'data: {oops\n\ndata: "str"\n\ndata: {"choices": "x"}\n\ndata: {"choices": [{"delta": 5}]}\n\n'
    conv = OpenAIToAnthropicStream("m")
    message, _ = anthropic_final(run(conv, garbage + raw))
    assert conv.saw_garbage and conv.completed
    assert message.content[1].text == "Hello there!"


# ---------------------------------------------------------------- pass-through


def test_openai_passthrough_strips_usage_chunk_only_when_not_asked():
    raw = openai_tool_stream()
    events = parse(raw)
    for include_usage in (True, False):
        conv = OpenAIPassthroughStream(include_usage)
        out = run(conv, raw)
        forwarded = parse(out)
        expected = [e for e in events if include_usage or '"choices": []' not in e.data]
        assert forwarded == expected
        assert conv.usage == Usage(input_tokens=86, output_tokens=300, cache_read_tokens=1920)
        assert conv.completed
        assert conv.output_chars == len(TOOL_ARGS) + len('{"tz": "UTC"}')
    assert len(expected) == len(events) - 1


def test_openai_passthrough_cut_and_garbage():
    raw = openai_tool_stream()
    conv = OpenAIPassthroughStream(False)
    out = run(conv, b"data: <html>\n\n" + raw[:300])
    assert conv.saw_garbage and not conv.completed and b"<html>" not in out
    assert conv.finish() == []
    assert json.loads(parse(conv.error("cut")[0])[0].data)["error"]["message"] == "cut"


def test_openai_passthrough_forwards_upstream_error_once():
    conv = OpenAIPassthroughStream(True)
    out = run(conv, b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n')
    assert json.loads(parse(out)[0].data)["error"]["message"] == "boom"
    assert conv.upstream_error == "boom" and conv.error("again") == []


def test_anthropic_passthrough_forwards_everything_and_tracks_usage():
    raw = anthropic_thinking_stream()
    conv = AnthropicPassthroughStream()
    out = run(conv, raw)
    assert parse(out) == parse(raw)
    assert conv.usage == Usage(input_tokens=12, output_tokens=40)
    assert conv.completed and conv.output_chars == len("27*453 = 12231") + len("12,231")
    message, _ = anthropic_final(out)
    assert message.content[0].signature == "EqQBCgIYAhIM1gbcDa9GJwZA"


def test_anthropic_passthrough_finish_and_error():
    raw = anthropic_tool_stream()
    conv = AnthropicPassthroughStream()
    run(conv, raw[: raw.index(b"event: message_stop")], finish=False)
    assert conv.finish() == [b'event: message_stop\ndata: {"type":"message_stop"}\n\n'] and conv.completed
    conv = AnthropicPassthroughStream()
    run(conv, raw[:500] + b"data: garbage\n\n")
    assert not conv.completed and conv.saw_garbage
    assert parse(conv.error("reset")[0])[0].event == "error"


def test_events_without_event_names_are_understood_by_type():
    conv = AnthropicToOpenAIStream("m", include_usage=False)
    for event in parse(anthropic_tool_stream()):
        conv.feed(SSEEvent(None, event.data))
    assert conv.completed


def test_anthropic_server_tool_blocks_are_skipped_without_garbage():
    events = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_s",
                "type": "message",
                "role": "assistant",
                "model": "c",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 5, "output_tokens": 1},
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {
                "type": "server_tool_use",
                "id": "srvtoolu_1",
                "name": "web_search",
                "input": {},
            },
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"query": "x"}'},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": "Found."}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ]
    conv = AnthropicToOpenAIStream("m", include_usage=False)
    out = run(conv, b"".join(anthropic_event(e) for e in events))
    final, _ = openai_final(out)
    assert final.choices[0].message.content == "Found."
    assert not final.choices[0].message.tool_calls
    assert not conv.saw_garbage and conv.completed


def test_openai_refusal_delta_becomes_text():
    raw = (
        openai_chunk(delta({"role": "assistant", "refusal": "I can't help with that."}))
        + openai_chunk(delta({}, "content_filter"))
        + b"data: [DONE]\n\n"
    )
    message, _ = anthropic_final(run(OpenAIToAnthropicStream("m"), raw))
    assert message.content[0].text == "I can't help with that."
    assert message.stop_reason == "refusal"


@pytest.mark.parametrize("index", ["[1]", '"0"', "null", "1.5", "{}"])
def test_odd_block_indexes_are_garbage_not_crashes(index):
    conv = AnthropicToOpenAIStream("m", include_usage=False)
    for event in parse(anthropic_tool_stream())[:2]:
        conv.feed(event)
    data = '{"type":"content_block_delta","index":%s,"delta":{"type":"input_json_delta","partial_json":"x"}}'
    assert conv._feed(SSEEvent(None, data % index)) == []  # the inner method: no safety net involved
    assert conv.saw_garbage


# ---------------------------------------------------------------- pass-through of odd upstream events
# (found by tests/reliability/test_fuzz_sse.py: hostile upstreams through the live relay)


def test_openai_passthrough_drops_event_names_the_sdk_would_misread():
    chunk = json.dumps(
        {"id": "c", "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
    )
    out = OpenAIPassthroughStream(False).feed(SSEEvent("message_stop", chunk))
    assert parse(b"".join(out)) == [SSEEvent(None, chunk)]


@pytest.mark.parametrize(
    "raw",
    [
        b'data: {"error": "flat string"}\n\n',
        b'event: error\ndata: {"error": {"message": 7}}\n\n',
        b'data: {"error": null}\n\n',
    ],
)
def test_malformed_upstream_error_events_become_native_ones(raw):
    conv = OpenAIPassthroughStream(True)
    (event,) = parse(run(conv, raw, finish=False))
    assert event.event is None and isinstance(json.loads(event.data)["error"]["message"], str)
    assert conv.error("again") == []
    conv = AnthropicPassthroughStream()
    (event,) = parse(run(conv, raw.replace(b"data: {", b'data: {"type": "error", '), finish=False))
    error = anthropic.types.ErrorResponse.model_validate_json(event.data)
    assert event.event == "error" == error.type and isinstance(error.error.message, str)
    assert conv.error("again") == []


def test_anthropic_passthrough_names_events_by_type_and_refuses_unnamed_untyped_ones():
    conv = AnthropicPassthroughStream()
    renamed = parse(run(conv, b'event: message_stop\ndata: {"type": "ping"}\n\n', finish=False))
    assert renamed == [SSEEvent("ping", '{"type": "ping"}')] and not conv.completed
    typed = parse(run(conv, b'event: ping\ndata: {"x": 1}\n\n', finish=False))
    assert [(e.event, json.loads(e.data)) for e in typed] == [("ping", {"x": 1, "type": "ping"})]
    assert run(conv, b'data: {"choices": []}\n\n', finish=False) == b""
    assert conv.saw_garbage
