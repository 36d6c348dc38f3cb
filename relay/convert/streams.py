"""Stateful stream converters: upstream SSE events in, client SSE bytes out, usage tracked.

Every converter has the same interface, so the relay treats them alike:

- ``feed(event)`` → bytes to send now; never raises on malformed upstream data (it is
  skipped and ``saw_garbage`` is set);
- ``finish()`` → the terminators still owed once the upstream ended cleanly: empty when the
  upstream's own end marker already went out, the end marker when the upstream gave its stop
  reason but closed without one, empty for a stream that never completed;
- ``error(message)`` → a format-native error event for a stream broken after the first byte
  (empty if the stream already ended or already carries an error);
- ``usage`` (upstream-reported billing usage or None), ``output_chars`` (generated text and
  tool arguments, for estimates), ``completed`` (the upstream gave its stop reason or end
  marker: the answer is whole), ``saw_garbage``, ``upstream_error`` (an error event the
  upstream sent mid-stream; it was already relayed to the client, so ``error()`` is then empty).

Relay loop: ``feed`` every parsed event; at a clean EOF (after ``SSEParser.flush()``) send
``finish()`` if ``completed`` else ``error(...)``; on a broken connection or ``SSEError`` send
``error(...)``. Bill ``usage`` when not None, else estimate from ``output_chars``.
"""

from __future__ import annotations

import time

import orjson

from core.pricing import Usage
from relay.convert.requests import JSON_OBJECT_TOOL
from relay.convert.responses import (
    anthropic_error_from,
    anthropic_stop_reason,
    new_id,
    openai_error_from,
    openai_finish_reason,
    upstream_error_message,
)
from relay.convert.shapes import json_object
from relay.convert.sse import OPENAI_DONE, SSEEvent, encode_sse
from relay.convert.usage import (
    estimate_tokens,
    merge_anthropic_usage,
    usage_from_anthropic,
    usage_from_openai,
    usage_to_anthropic,
    usage_to_openai,
)


class StreamConverter:
    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.output_chars = 0
        self.completed = False
        self.saw_garbage = False
        self.upstream_error: str | None = None
        self._terminated = False  # terminators sent: nothing may follow
        self._errored = False

    def feed(self, event: SSEEvent) -> list[bytes]:
        if self._terminated or self._errored:
            return []
        try:
            return self._feed(event)
        except Exception:  # noqa: BLE001 - upstream data must never break the relay's stream loop
            self.saw_garbage = True
            return []

    def finish(self) -> list[bytes]:
        if self._terminated or self._errored:
            return []
        return self._finish()

    def error(self, message: str) -> list[bytes]:
        if self._terminated or self._errored:
            return []
        self._errored = True
        return [self._error_event(message)]

    def _feed(self, event: SSEEvent) -> list[bytes]:
        raise NotImplementedError

    def _finish(self) -> list[bytes]:
        raise NotImplementedError

    def _error_event(self, message: str) -> bytes:
        raise NotImplementedError

    def _json(self, event: SSEEvent) -> dict | None:
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            self.saw_garbage = True
            return None
        return data

    def _upstream_failed(self, data: dict) -> list[bytes]:
        self.upstream_error = upstream_error_message(data) or "upstream stream error"
        return self.error(self.upstream_error)


def _openai_error_event(message: str) -> bytes:
    return encode_sse(openai_error_from(502, message, "upstream_error", "upstream_error"))


def _anthropic_error_event(message: str) -> bytes:
    return encode_sse(anthropic_error_from(502, message, "api_error"), "error")


def _well_formed_error(data: dict) -> bool:
    """An upstream error event clients can read as is: `error` an object with a string message."""
    error = data.get("error")
    return isinstance(error, dict) and isinstance(error.get("message"), str)


def _str(value) -> str:
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------- Anthropic upstream → OpenAI client


class AnthropicToOpenAIStream(StreamConverter):
    """Anthropic message events as OpenAI chat.completion.chunk events."""

    def __init__(self, model: str, include_usage: bool):
        super().__init__()
        self.model = model
        self.include_usage = include_usage
        self._id = new_id("chatcmpl-")
        self._created = int(time.time())
        self._started = False
        self._raw_usage: dict | None = None
        self._tools: dict[int, int] = {}  # Anthropic block index → OpenAI tool_calls index
        self._blocks: set[int] = set()  # every block index started, tools or not
        self._json_blocks: set[int] = set()  # the json_object tool's blocks: their input is the answer
        self._finish_reason: str | None = None

    def _chunk(self, delta: dict, finish_reason: str | None = None) -> bytes:
        chunk = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return encode_sse(chunk)

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return [self._chunk({"role": "assistant", "content": ""})]

    def _feed(self, event: SSEEvent) -> list[bytes]:
        data = self._json(event)
        if data is None:
            return []
        kind = data.get("type") if isinstance(data.get("type"), str) else event.event
        if kind == "message_start":
            message = json_object(data.get("message"))
            if isinstance(message.get("id"), str) and message["id"]:
                self._id = f"chatcmpl-{message['id']}"
            self._track_usage(message.get("usage"))
            return self._start()
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "message_delta":
            self._track_usage(data.get("usage"))
            delta = json_object(data.get("delta"))
            if delta.get("stop_reason") is None or self._finish_reason is not None:
                return []
            self._finish_reason = openai_finish_reason(delta["stop_reason"])
            if self._json_blocks and self._finish_reason == "tool_calls":
                self._finish_reason = "stop"
            self.completed = True
            return [*self._start(), self._chunk({}, self._finish_reason)]
        if kind == "message_stop":
            return self._end()
        if kind == "error":
            return self._upstream_failed(data)
        if kind not in ("ping", "content_block_stop"):
            self.saw_garbage = True
        return []

    def _track_usage(self, raw) -> None:
        if isinstance(raw, dict):
            self._raw_usage = merge_anthropic_usage(self._raw_usage, raw)
            self.usage = usage_from_anthropic(self._raw_usage)

    def _block_start(self, data: dict) -> list[bytes]:
        block = data.get("content_block")
        index = data.get("index")
        if not isinstance(block, dict) or not isinstance(index, int):
            self.saw_garbage = True
            return []
        self._blocks.add(index)
        out = self._start()
        if block.get("type") == "text" and _str(block.get("text")):
            self.output_chars += len(block["text"])
            out.append(self._chunk({"content": block["text"]}))
        elif block.get("type") == "tool_use" and block.get("name") == JSON_OBJECT_TOOL:
            self._json_blocks.add(index)
            args = block.get("input")
            if isinstance(args, dict) and args:
                answer = orjson.dumps(args).decode()
                self.output_chars += len(answer)
                out.append(self._chunk({"content": answer}))
        elif block.get("type") == "tool_use":
            self._tools[index] = len(self._tools)
            args = block.get("input")
            arguments = orjson.dumps(args).decode() if isinstance(args, dict) and args else ""
            self.output_chars += len(arguments)
            call = {
                "index": self._tools[index],
                "id": _str(block.get("id")) or new_id("call_"),
                "type": "function",
                "function": {"name": _str(block.get("name")), "arguments": arguments},
            }
            out.append(self._chunk({"tool_calls": [call]}))
        return out

    def _block_delta(self, data: dict) -> list[bytes]:
        delta = data.get("delta")
        if not isinstance(delta, dict):
            self.saw_garbage = True
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            text = _str(delta.get("text"))
            self.output_chars += len(text)
            return [*self._start(), self._chunk({"content": text})] if text else []
        if kind == "thinking_delta":
            text = _str(delta.get("thinking"))
            self.output_chars += len(text)
            return [*self._start(), self._chunk({"reasoning_content": text})] if text else []
        if kind == "input_json_delta":
            index = data.get("index")
            tool = self._tools.get(index) if isinstance(index, int) else None
            partial = _str(delta.get("partial_json"))
            if isinstance(index, int) and index in self._json_blocks:
                self.output_chars += len(partial)
                return [self._chunk({"content": partial})] if partial else []
            if tool is None:
                # server tool inputs (web search…) have no OpenAI form; unknown blocks are garbage
                self.saw_garbage = self.saw_garbage or not (isinstance(index, int) and index in self._blocks)
                return []
            self.output_chars += len(partial)
            if not partial:
                return []
            return [self._chunk({"tool_calls": [{"index": tool, "function": {"arguments": partial}}]})]
        return []  # signature_delta, citations_delta: nothing to show an OpenAI client

    def _end(self) -> list[bytes]:
        self.completed = True
        self._terminated = True
        out = self._start()
        if self._finish_reason is None:
            self._finish_reason = "stop"
            out.append(self._chunk({}, "stop"))
        if self.include_usage and self.usage is not None:
            out.append(
                encode_sse(
                    {
                        "id": self._id,
                        "object": "chat.completion.chunk",
                        "created": self._created,
                        "model": self.model,
                        "choices": [],
                        "usage": usage_to_openai(self.usage),
                    }
                )
            )
        out.append(OPENAI_DONE)
        return out

    def _finish(self) -> list[bytes]:
        return self._end() if self._finish_reason is not None else []

    def _error_event(self, message: str) -> bytes:
        return _openai_error_event(message)


# ---------------------------------------------------------------- OpenAI upstream → Anthropic client


class OpenAIToAnthropicStream(StreamConverter):
    """OpenAI chat.completion.chunk events as the exact Anthropic message event sequence."""

    def __init__(self, model: str, *, input_tokens: int = 0, thinking: bool = True):
        super().__init__()
        self.model = model
        self.input_tokens = input_tokens  # placeholder for message_start: OpenAI reports usage last
        self.thinking = thinking  # False for `thinking.display: "omitted"`: reasoning is not sent
        self._id = new_id("msg_")
        self._started = False
        self._open: tuple[str, int] | None = None  # (kind, Anthropic index) of the open block
        self._next_index = 0
        self._tools: dict[int, int] = {}  # OpenAI tool_calls index → Anthropic block index
        self._call_ids: set[str] = set()
        self._last_tool: int | None = None
        self._finish_reason: str | None = None
        self._saw_finish = False

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        message: dict = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0},
        }
        return [
            encode_sse({"type": "message_start", "message": message}, "message_start"),
            encode_sse({"type": "ping"}, "ping"),
        ]

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        _, index = self._open
        self._open = None
        return [encode_sse({"type": "content_block_stop", "index": index}, "content_block_stop")]

    def _open_block(self, kind: str, block: dict) -> tuple[list[bytes], int]:
        out = self._close()
        index = self._next_index
        self._next_index += 1
        self._open = (kind, index)
        event = {"type": "content_block_start", "index": index, "content_block": block}
        out.append(encode_sse(event, "content_block_start"))
        return out, index

    def _delta(self, index: int, delta: dict) -> bytes:
        return encode_sse(
            {"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"
        )

    def _text(self, kind: str, text: str) -> list[bytes]:
        """Append to the open text or thinking block, opening one if needed."""
        self.output_chars += len(text)
        out: list[bytes] = []
        if self._open is not None and self._open[0] == kind:
            index = self._open[1]
        elif kind == "text":
            out, index = self._open_block("text", {"type": "text", "text": ""})
        else:
            out, index = self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        field = "text" if kind == "text" else "thinking"
        out.append(self._delta(index, {"type": f"{field}_delta", field: text}))
        return out

    def _feed(self, event: SSEEvent) -> list[bytes]:
        if event.data.strip() == "[DONE]":
            return self._end()
        data = self._json(event)
        if data is None:
            return []
        if "error" in data and "choices" not in data:
            return self._upstream_failed(data)
        if not self._started and isinstance(data.get("id"), str) and data["id"]:
            self._id = data["id"] if data["id"].startswith("msg_") else f"msg_{data['id']}"
        out = self._start()
        if isinstance(data.get("usage"), dict):
            self.usage = usage_from_openai(data["usage"]) or self.usage
        choices = data.get("choices")
        if not isinstance(choices, list):
            self.saw_garbage = True
            return out
        for choice in choices:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out.extend(self._choice(choice))
        return out

    def _choice(self, choice: dict) -> list[bytes]:
        out: list[bytes] = []
        delta = choice.get("delta")
        if isinstance(delta, dict):
            reasoning = _str(delta.get("reasoning_content")) or _str(delta.get("reasoning"))
            if reasoning and self.thinking:
                out.extend(self._text("thinking", reasoning))
            elif reasoning:
                self.output_chars += len(reasoning)  # generated and billed, only not shown
            text = _str(delta.get("content")) or _str(delta.get("refusal"))
            if text:
                out.extend(self._text("text", text))
            if isinstance(delta.get("tool_calls"), list):
                for call in delta["tool_calls"]:
                    if isinstance(call, dict):
                        out.extend(self._tool_call(call))
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish and not self._saw_finish:
            self._saw_finish = True
            self.completed = True
            self._finish_reason = finish
            out.extend(self._close())
        return out

    def _tool_call(self, call: dict) -> list[bytes]:
        function = json_object(call.get("function"))
        call_id = _str(call.get("id"))
        position = call.get("index")
        if not isinstance(position, int) or isinstance(position, bool):
            # servers that omit the index: a new id starts a new call, anything else continues the last
            if self._last_tool is None or (call_id and call_id not in self._call_ids):
                position = max(self._tools, default=-1) + 1
            else:
                position = self._last_tool
        self._last_tool = position
        out: list[bytes] = []
        if position not in self._tools:
            call_id = call_id or new_id("toolu_")
            block = {"type": "tool_use", "id": call_id, "name": _str(function.get("name")), "input": {}}
            out, index = self._open_block("tool", block)
            self._tools[position] = index
            self._call_ids.add(call_id)
        arguments = _str(function.get("arguments"))
        if arguments:
            self.output_chars += len(arguments)
            delta = {"type": "input_json_delta", "partial_json": arguments}
            out.append(self._delta(self._tools[position], delta))
        return out

    def _end(self) -> list[bytes]:
        self.completed = True
        self._terminated = True
        out = [*self._start(), *self._close()]
        stop_reason = anthropic_stop_reason(self._finish_reason, has_tool_calls=bool(self._tools))
        if self.usage:
            usage = usage_to_anthropic(self.usage)
        else:
            usage = {"input_tokens": self.input_tokens, "output_tokens": estimate_tokens(self.output_chars)}
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        out.append(encode_sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta"))
        out.append(encode_sse({"type": "message_stop"}, "message_stop"))
        return out

    def _finish(self) -> list[bytes]:
        return self._end() if self._saw_finish else []

    def _error_event(self, message: str) -> bytes:
        return _anthropic_error_event(message)


# ---------------------------------------------------------------- same-format relaying


class OpenAIPassthroughStream(StreamConverter):
    """OpenAI chunks forwarded unchanged, minus the usage-only chunk the client did not ask for."""

    def __init__(self, include_usage: bool):
        super().__init__()
        self.include_usage = include_usage
        self._saw_finish = False

    def _feed(self, event: SSEEvent) -> list[bytes]:
        if event.data.strip() == "[DONE]":
            return self._end()
        data = self._json(event)
        if data is None:
            return []
        if "error" in data and "choices" not in data:
            self.upstream_error = upstream_error_message(data) or "upstream stream error"
            self._errored = True
            if not _well_formed_error(data):
                return [self._error_event(self.upstream_error)]
            return [encode_sse(event.data)]
        choices = data.get("choices")
        if isinstance(data.get("usage"), dict):
            self.usage = usage_from_openai(data["usage"]) or self.usage
            if not self.include_usage and choices == []:
                return []
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                delta = choice.get("delta")
                if isinstance(delta, dict):
                    self.output_chars += len(_str(delta.get("content")))
                    self.output_chars += len(
                        _str(delta.get("reasoning_content")) or _str(delta.get("reasoning"))
                    )
                    for call in delta.get("tool_calls") or []:
                        function = call.get("function") if isinstance(call, dict) else None
                        if isinstance(function, dict):
                            self.output_chars += len(_str(function.get("arguments")))
                self.output_chars += len(_str(choice.get("text")))  # legacy completions chunks
                if isinstance(choice.get("finish_reason"), str):
                    self._saw_finish = self.completed = True
        return [encode_sse(event.data)]  # chat chunks carry no event name; clients mis-read named ones

    def _end(self) -> list[bytes]:
        self.completed = True
        self._terminated = True
        return [OPENAI_DONE]

    def _finish(self) -> list[bytes]:
        return self._end() if self._saw_finish else []

    def _error_event(self, message: str) -> bytes:
        return _openai_error_event(message)


class AnthropicPassthroughStream(StreamConverter):
    """Anthropic events forwarded unchanged (thinking, signatures, server tools included)."""

    def __init__(self) -> None:
        super().__init__()
        self._raw_usage: dict | None = None
        self._saw_stop_reason = False

    def _feed(self, event: SSEEvent) -> list[bytes]:
        data = self._json(event)
        if data is None:
            return []
        kind = data.get("type") if isinstance(data.get("type"), str) else event.event
        if not kind:
            self.saw_garbage = True  # neither a name nor a type: not an Anthropic event
            return []
        if kind == "error":
            self.upstream_error = upstream_error_message(data) or "upstream stream error"
            self._errored = True
        elif kind == "message_start" and isinstance(data.get("message"), dict):
            self._track_usage(data["message"].get("usage"))
        elif kind == "message_delta":
            self._track_usage(data.get("usage"))
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason") is not None:
                self._saw_stop_reason = self.completed = True
        elif kind == "content_block_delta" and isinstance(data.get("delta"), dict):
            delta = data["delta"]
            for field in ("text", "thinking", "partial_json"):
                self.output_chars += len(_str(delta.get(field)))
        elif kind == "message_stop":
            self.completed = True
            self._terminated = True
        if kind == "error" and not _well_formed_error(data):
            return [self._error_event(self.upstream_error or "upstream stream error")]
        # named by its type, as clients dispatch on the name; a missing type is taken from the name
        payload = event.data if isinstance(data.get("type"), str) else {**data, "type": kind}
        return [encode_sse(payload, kind)]

    def _track_usage(self, raw) -> None:
        if isinstance(raw, dict):
            self._raw_usage = merge_anthropic_usage(self._raw_usage, raw)
            self.usage = usage_from_anthropic(self._raw_usage)

    def _finish(self) -> list[bytes]:
        if not self._saw_stop_reason:
            return []
        self.completed = True
        self._terminated = True
        return [encode_sse({"type": "message_stop"}, "message_stop")]

    def _error_event(self, message: str) -> bytes:
        return _anthropic_error_event(message)
