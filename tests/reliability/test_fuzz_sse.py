"""Hostile upstream event streams (and answers) through the live relay, in every direction.

A tiny upstream serves what hypothesis draws: valid OpenAI/Anthropic streams mutated (bad
JSON, missing fields, wrong types, dropped or repeated events, no terminator, huge or odd
events, binary junk, truncated lines, wrong content type, error statuses, connections cut),
and for non-stream calls mutated JSON answers or a stream instead. Whatever it sends, the
client gets a 200 stream that ends with its format's terminator or error event, a 200 answer
(a whole answer of the client's format when converted), or a format-native error body — never
a 500, never a broken connection — the relay logs no unhandled exception, and every call
settles exactly once with the ledger whole.

Deterministic by default (CI); SSE_FUZZ_EXAMPLES=500 explores randomly with more examples.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import threading
from dataclasses import dataclass, field

import anthropic.types
import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion

from groups.models import Channel
from soak.ledger import wait_for_ledger
from tests.relay.test_convert_properties import mutated
from tests.reliability import figures

pytestmark = [pytest.mark.live]

EXPLORE = int(os.environ.get("SSE_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=EXPLORE or 15,
    derandomize=not EXPLORE,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# (client format, model): claude-* is served by Anthropic channels, qwen by an OpenAI one.
DIRECTIONS = {
    "openai-client-openai-upstream": ("openai", "qwen3.5-max", "openai"),
    "openai-client-anthropic-upstream": ("openai", "claude-sonnet-4-5", "anthropic"),
    "anthropic-client-anthropic-upstream": ("anthropic", "claude-sonnet-4-5", "anthropic"),
    "anthropic-client-openai-upstream": ("anthropic", "qwen3.5-max", "openai"),
}


# ---------------------------------------------------------------- the hostile upstream


@dataclass
class Script:
    """What the upstream answers to the next calls."""

    status: int = 200
    content_type: str = "text/event-stream"
    chunks: list[bytes] = field(default_factory=list)
    cut: bool = False  # drop the connection instead of ending the body cleanly


class HostileUpstream:
    def __init__(self) -> None:
        self.script = Script()
        self.loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.runner.setup())
            site = web.TCPSite(self.runner, "127.0.0.1", 0, shutdown_timeout=0.5)
            self.loop.run_until_complete(site.start())
            self.port = self.runner.addresses[0][1]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, name="hostile-upstream", daemon=True)
        self.thread.start()
        assert ready.wait(30), "the hostile upstream did not start"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        script = self.script
        resp = web.StreamResponse(status=script.status)
        if script.content_type:
            resp.content_type = script.content_type
        else:
            resp.headers["Content-Type"] = ""
        await resp.prepare(request)
        try:
            for chunk in script.chunks:
                await resp.write(chunk)
            if script.cut:
                request.transport.close()
                return resp
            await resp.write_eof()
        except ConnectionError:
            pass  # the relay stopped reading (it cut a malformed stream): expected
        return resp

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def hostile_upstream():
    server = HostileUpstream()
    yield server
    server.stop()


# ---------------------------------------------------------------- streams: valid, then mutated

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)


def openai_events(texts: list[str], tool: bool, usage: bool) -> list[tuple[str | None, str]]:
    def chunk(delta: dict, finish=None, **extra) -> tuple[None, str]:
        body = {
            "id": "chatcmpl-fuzz",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "up",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return None, json.dumps(body)

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": text}) for text in texts]
    if tool:
        call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
        events.append(chunk({"tool_calls": [call]}))
        events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 1}'}}]}))
    events.append(chunk({}, "tool_calls" if tool else "stop"))
    if usage:
        counts = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        events.append((None, json.dumps({"id": "chatcmpl-fuzz", "choices": [], "usage": counts})))
    events.append((None, "[DONE]"))
    return events


def anthropic_events(texts: list[str], tool: bool, usage: bool) -> list[tuple[str | None, str]]:
    def event(data: dict) -> tuple[str, str]:
        return data["type"], json.dumps(data)

    message = {
        "id": "msg_fuzz",
        "type": "message",
        "role": "assistant",
        "model": "up",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 11, "output_tokens": 1} if usage else {},
    }
    events = [event({"type": "message_start", "message": message}), event({"type": "ping"})]
    events.append(
        event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    )
    for text in texts:
        delta = {"type": "text_delta", "text": text}
        events.append(event({"type": "content_block_delta", "index": 0, "delta": delta}))
    events.append(event({"type": "content_block_stop", "index": 0}))
    if tool:
        block = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
        events.append(event({"type": "content_block_start", "index": 1, "content_block": block}))
        delta = {"type": "input_json_delta", "partial_json": '{"a": 1}'}
        events.append(event({"type": "content_block_delta", "index": 1, "delta": delta}))
        events.append(event({"type": "content_block_stop", "index": 1}))
    stop = {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None}
    events.append(
        event({"type": "message_delta", "delta": stop, "usage": {"output_tokens": 7} if usage else {}})
    )
    events.append(event({"type": "message_stop"}))
    return events


ODD_EVENTS = [
    (None, ""),
    (None, "[DONE]"),
    ("error", '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'),
    (None, '{"error": {"message": "upstream exploded", "type": "server_error"}}'),
    ("error", "not json"),
    (None, '{"error": "flat"}'),
    ("ping", '{"type": "ping"}'),
    ("message_stop", '{"type": "message_stop"}'),
    ("weird", "{}"),
    (None, "[]"),
    (None, "null"),
    (None, '"a string"'),
    (None, "12"),
    (
        "message_delta",
        '{"type": "message_delta", "delta": {"stop_reason": 7}, "usage": {"output_tokens": -3}}',
    ),
    (None, '{"choices": [{"index": 0, "delta": {"content": 5}, "finish_reason": []}], "usage": {"x": 1}}'),
    (None, '{"choices": "nope", "usage": {"prompt_tokens": "9", "completion_tokens": 1e300}}'),
]
ODD_LINES = [
    b": keep-alive\n",
    b"retry: 10\n",
    b"id: 7\n",
    b"event:\n",
    b"data\n",
    b"nonsense line\n",
    b"\n\n",
]


@st.composite
def hostile_streams(draw, kind: str) -> Script:
    texts = draw(st.lists(TEXT, min_size=1, max_size=4))
    make = openai_events if kind == "openai" else anthropic_events
    events = make(texts, draw(st.booleans()), draw(st.booleans()))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(
            st.sampled_from(
                ["drop", "repeat", "mutate", "bad_json", "rename", "odd", "huge", "truncate", "mutate"]
            )
        )
        at = draw(st.integers(0, len(events) - 1)) if events else 0
        if op == "drop" and events:
            del events[at]
        elif op == "repeat" and events:
            events.insert(at, events[at])
        elif op == "mutate" and events and events[at][1] not in ("[DONE]", ""):
            try:
                data = json.loads(events[at][1])
            except ValueError:
                continue
            events[at] = (events[at][0], json.dumps(draw(mutated(data))))
        elif op == "bad_json" and events:
            name, data = events[at]
            events[at] = (
                name,
                data[: draw(st.integers(0, max(len(data) - 1, 0)))] + draw(st.text(max_size=5)),
            )
        elif op == "rename" and events:
            events[at] = (
                draw(st.none() | st.sampled_from(["error", "message_stop", "x", ""])),
                events[at][1],
            )
        elif op == "odd":
            events.insert(at, draw(st.sampled_from(ODD_EVENTS)))
        elif op == "huge":
            text = "z" * draw(st.integers(10_000, 400_000))
            if kind == "openai":
                body = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
                events.insert(at, (None, json.dumps(body)))
            else:
                delta = {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                }
                events.insert(at, ("content_block_delta", json.dumps(delta)))
        elif op == "truncate":
            events = events[:at]
    newline = draw(st.sampled_from([b"\n", b"\n", b"\r\n", b"\r"]))
    raw = bytearray(b"\xef\xbb\xbf" if draw(st.integers(0, 9)) == 0 else b"")
    for name, data in events:
        if draw(st.integers(0, 7)) == 0:
            raw += draw(st.sampled_from(ODD_LINES))
        if name is not None:
            raw += b"event: " + name.encode() + newline
        for line in data.split("\n"):
            raw += b"data: " + line.encode() + newline
        raw += newline
    return draw(delivered(raw, "text/event-stream"))


@st.composite
def delivered(draw, raw: bytearray, content_type: str) -> Script:
    """`raw` as the upstream sends it: maybe damaged, in random chunks, status and content type
    mostly right, the connection sometimes dropped instead of closed."""
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(raw)))
        if draw(st.booleans()):
            raw[at:at] = draw(st.binary(min_size=1, max_size=40))  # junk bytes, invalid UTF-8 included
        else:
            del raw[at:]  # a line cut short
    cuts = sorted(set(draw(st.lists(st.integers(0, len(raw)), max_size=6))))
    chunks = [bytes(raw[a:b]) for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True) if b > a]
    others = ["text/event-stream", "application/json", "text/plain", ""]
    return Script(
        status=draw(st.sampled_from([200] * 30 + [400, 404, 429, 500, 503, 529])),
        content_type=draw(st.sampled_from([content_type] * 24 + [content_type + "; charset=utf-8", *others])),
        chunks=chunks,
        cut=draw(st.integers(0, 4)) == 0,
    )


def openai_answer(text: str) -> dict:
    return {
        "id": "chatcmpl-fuzz",
        "object": "chat.completion",
        "created": 1,
        "model": "up",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def anthropic_answer(text: str) -> dict:
    return {
        "id": "msg_fuzz",
        "type": "message",
        "role": "assistant",
        "model": "up",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 11, "output_tokens": 7},
    }


@st.composite
def hostile_answers(draw, kind: str) -> Script:
    """A non-stream answer: valid, mutated (missing, retyped fields), or an event stream instead."""
    if draw(st.integers(0, 4)) == 0:
        return draw(hostile_streams(kind))
    answer = (openai_answer if kind == "openai" else anthropic_answer)(draw(TEXT))
    if draw(st.booleans()):
        answer = draw(mutated(answer))
    return draw(delivered(bytearray(orjson.dumps(answer)), "application/json"))


# ---------------------------------------------------------------- what the client must see


def call(url: str, key: str, client: str, model: str, stream: bool) -> tuple[int, str, str, bytes]:
    """One raw HTTP call: (status, content type, request id, body); a broken body fails the test."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    body = {
        "model": model,
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if client == "openai":
        path, headers = "/v1/chat/completions", {"Authorization": f"Bearer {key}"}
    else:
        path, headers = "/v1/messages", {"x-api-key": key, "anthropic-version": "2023-06-01"}
    try:
        conn.request("POST", path, orjson.dumps(body), {**headers, "Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()  # IncompleteRead: the relay broke the stream off
        return resp.status, resp.getheader("Content-Type", ""), resp.getheader("X-Request-Id", ""), data
    finally:
        conn.close()


def events_of(body: bytes) -> list[tuple[str | None, str]]:
    """The relay's own SSE output, parsed strictly: only `event:`/`data:` lines, every event closed."""
    text = body.decode("utf-8")
    assert text.endswith("\n\n"), f"the stream does not end with a complete event: {text[-200:]!r}"
    events = []
    for block in text[:-2].split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            field_name, _, value = line.partition(": ")
            assert field_name in ("event", "data"), f"unexpected line {line!r}"
            if field_name == "event":
                name = value
            else:
                data.append(value)
        events.append((name, "\n".join(data)))
    return events


def is_error(client: str, name: str | None, data) -> bool:
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return False
    return client == "openai" or (name == "error" and data.get("type") == "error")


def assert_native_stream(client: str, body: bytes) -> str:
    """Every event a JSON object (or OpenAI's [DONE]); exactly one ending, last: terminator or error."""
    events = events_of(body)
    assert events, "an empty stream"
    for i, (name, data) in enumerate(events):
        last = i == len(events) - 1
        if client == "openai" and data == "[DONE]":
            assert last, "[DONE] before the end"
            assert name is None
            continue
        parsed = json.loads(data)
        assert isinstance(parsed, dict), data[:200]
        if client == "openai":
            assert name in (None, "error"), f"an OpenAI event named {name!r}"
            if not last:
                assert not is_error(client, name, parsed), f"events after an error: {events[i + 1 :][:2]}"
        else:
            assert name and parsed.get("type") == name, f"event {name!r} carries type {parsed.get('type')!r}"
            if not last:
                assert name not in ("message_stop", "error"), f"events after {name}: {events[i + 1 :][:2]}"
    name, data = events[-1]
    if client == "openai":
        if data == "[DONE]":
            return "terminator"
    elif name == "message_stop":
        return "terminator"
    assert is_error(client, name, json.loads(data)), (
        f"the stream ends without terminator or error: {data[:200]}"
    )
    return "error_event"


def assert_native_error_body(client: str, content_type: str, body: bytes) -> None:
    assert content_type.startswith("application/json"), content_type
    data = orjson.loads(body)
    if client == "anthropic":
        assert data["type"] == "error" and isinstance(data["error"]["type"], str), data
        assert isinstance(data["error"]["message"], str), data
    else:
        assert isinstance(data["error"]["message"], str) and isinstance(data["error"]["type"], str), data


class Unhandled(logging.Handler):
    """Collects log records that carry an exception: the relay never should."""

    LOGGERS = ("", "uvicorn", "uvicorn.error", "django", "relay", "asyncio")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record not in self.records:
            self.records.append(record)

    def __enter__(self):
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)


def aim_channels_at(upstream: HostileUpstream) -> None:
    for name in ("claude-official", "claude-aws", "domestic"):
        channel = Channel.objects.get(name=name)
        channel.base_url = f"http://127.0.0.1:{upstream.port}/v1"
        channel.save()


def checked_call(live, key: str, direction: str, stream: bool) -> tuple[str, str]:
    """One call through the relay, held to the contract; returns (outcome, request id)."""
    from billing.models import UsageRecord

    client, model, _ = DIRECTIONS[direction]
    with Unhandled() as unhandled:
        status, content_type, request_id, body = call(live.url, key, client, model, stream)
        assert status != 500 and (status < 500 or status in (502, 503, 504)), (status, body[:300])
        if status == 200 and stream:
            assert content_type.startswith("text/event-stream"), content_type
            outcome = assert_native_stream(client, body)
        elif status == 200:
            answer = orjson.loads(body)
            assert isinstance(answer, dict), body[:300]
            if client != DIRECTIONS[direction][2]:  # converted: it must be a whole answer of its format
                native = ChatCompletion if client == "openai" else anthropic.types.Message
                native.model_validate(answer)
            outcome = "answer"
        else:
            assert_native_error_body(client, content_type, body)
            outcome = f"http_{status}"
        assert request_id, "no X-Request-Id"
        assert live.settled(request_id) is not None, f"{request_id} never settled"
        assert UsageRecord.objects.filter(request_id=request_id).count() == 1
    assert [r.getMessage() for r in unhandled.records] == []
    return outcome, request_id


@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_hostile_upstream_answers_end_cleanly_and_settle_once(live, hostile_upstream, direction):
    from django.core.cache import cache

    aim_channels_at(hostile_upstream)
    key = live.make_key(select="ClaudeCode", balance_yuan=1000)
    request_ids: list[str] = []
    outcomes: dict[str, int] = {}

    kind = DIRECTIONS[direction][2]
    cases = st.sampled_from([True, True, False]).flatmap(
        lambda stream: st.tuples(hostile_streams(kind) if stream else hostile_answers(kind), st.just(stream))
    )

    @FUZZ
    @given(case=cases)
    def one(case: tuple[Script, bool]) -> None:
        script, stream = case
        cache.clear()  # no cool-down or saturation carried from one example to the next
        hostile_upstream.script = script
        outcome, request_id = checked_call(live, key, direction, stream)
        request_ids.append(request_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    one()
    assert wait_for_ledger(set(request_ids), calls=range(len(request_ids), len(request_ids) + 1)) == []
    figures.note(
        f"upstream fuzz {direction}: {len(request_ids)} calls, outcomes {dict(sorted(outcomes.items()))}"
    )


@pytest.mark.parametrize("direction", list(DIRECTIONS))
def test_an_oversized_upstream_event_ends_the_stream_with_an_error_event(live, hostile_upstream, direction):
    """Past MAX_EVENT_BYTES the relay stops buffering: the client gets its error event, billed once."""
    from relay.convert.sse import MAX_EVENT_BYTES

    aim_channels_at(hostile_upstream)
    kind = DIRECTIONS[direction][2]
    events = (openai_events if kind == "openai" else anthropic_events)(["hello"], False, True)
    head = "".join(f"event: {n}\n" * bool(n) + f"data: {d}\n\n" for n, d in events[:2]).encode()
    huge = b"data: " + b"z" * (MAX_EVENT_BYTES + 1024) + b"\n\n"
    hostile_upstream.script = Script(chunks=[head, huge[: len(huge) // 2], huge[len(huge) // 2 :]])
    key = live.make_key(select="ClaudeCode", balance_yuan=1000)
    outcome, request_id = checked_call(live, key, direction, stream=True)
    assert outcome == "error_event"
    assert live.record(request_id).status == "partial"
    assert wait_for_ledger({request_id}, calls=range(1, 2)) == []
