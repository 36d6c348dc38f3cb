"""Text endpoints: OpenAI chat completions and Anthropic messages, both ways, stream or not.

A request goes to a channel of its own format unchanged (but for the model name and, for
OpenAI streams, `stream_options.include_usage`), or is converted when the channel speaks
the other format. The answer comes back in the client's format with the client's model name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

import aiohttp
import orjson
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse

from .accounting import charge_for, estimated_usage
from .convert import gemini_upstream as streams_gemini
from .convert import streams
from .convert.chain import ChainedStream
from .convert.errors import ConversionError, SSEError
from .convert.gemini_upstream import chat_to_gemini_request, gemini_response_to_chat, usage_from_gemini
from .convert.requests import (
    anthropic_messages_to_openai_chat,
    openai_chat_to_anthropic,
    openai_wants_usage,
    openai_with_stream_usage,
    shows_thinking,
)
from .convert.responses import anthropic_message_to_openai_chat, openai_chat_to_anthropic_message
from .convert.sse import SSEParser
from .convert.usage import estimate_tokens, request_chars, usage_from_anthropic, usage_from_openai
from .errors import RelayError
from .flow import Call, Charged, Served, UpstreamRequest
from .pipeline import Estimate, Metered, Spec, read_json, run
from .upstream import gemini_path, headers_for

logger = logging.getLogger("relay")

UPSTREAM_PATHS = {"openai": "/chat/completions", "anthropic": "/messages"}


def parse_body(request) -> dict:
    """The JSON object of a request, or a 400/413 the client can act on."""
    try:
        raw = request.body
    except Exception as exc:  # RequestDataTooBig and friends
        if type(exc).__name__ == "RequestDataTooBig":
            raise RelayError(
                "too_large", f"Request body is larger than {settings.RELAY_MAX_BODY_BYTES} bytes."
            ) from None
        raise
    if len(raw) > settings.RELAY_MAX_BODY_BYTES:
        raise RelayError("too_large", f"Request body is larger than {settings.RELAY_MAX_BODY_BYTES} bytes.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RelayError("invalid_request", f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RelayError("invalid_request", "Request body must be a JSON object.")
    return body


def require_model(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise RelayError("invalid_request", "'model' is required and must be a string.", param="model")
    return model.strip()


def max_tokens_of(body: dict, *keys: str) -> int | None:
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RelayError("invalid_request", f"'{key}' must be a positive integer.", param=key)
        if value > settings.RELAY_MAX_TOKENS_LIMIT:
            raise RelayError(
                "invalid_request", f"'{key}' must be at most {settings.RELAY_MAX_TOKENS_LIMIT}.", param=key
            )
        return value
    return None


class ChatRequest:
    """The client's chat request and its upstream form for each channel kind (converted once)."""

    def __init__(
        self,
        body: dict,
        api_format: str,
        client_headers,
        *,
        model: str,
        stream: bool,
        beta: bool = False,
    ):
        self.body = body
        self.beta = beta  # Anthropic's `?beta=true` (Claude Code sends it): kept on Anthropic channels
        self.api_format = api_format
        self.client_headers = client_headers
        self.model = model
        self.stream = stream
        self.include_usage = openai_wants_usage(body)
        self.shows_thinking = api_format != "anthropic" or shows_thinking(body)
        self.prompt_chars = request_chars(body)
        self._converted: dict[str, dict] = {}

    def upstream_body(self, kind: str) -> dict:
        if kind not in self._converted:
            if kind == self.api_format:
                out = dict(self.body)
            elif kind == "gemini":
                chat = self.body if self.api_format == "openai" else self.upstream_body("openai")
                out = chat_to_gemini_request(chat)
            elif kind == "anthropic":
                out = openai_chat_to_anthropic(self.body)
            else:
                out = anthropic_messages_to_openai_chat(self.body)
            if kind == "openai" and self.stream:
                out = openai_with_stream_usage(out)
            self._converted[kind] = out
        return self._converted[kind]

    def build(self, step, channel) -> UpstreamRequest:
        upstream_model = channel.upstream_model(self.model)
        try:
            body = dict(self.upstream_body(channel.kind))
        except ConversionError as exc:
            raise RelayError("invalid_request", str(exc)) from None
        if channel.kind == "gemini":  # the model is in the path, not the body
            path = gemini_path(channel, upstream_model, stream=self.stream)
        else:
            body["model"] = upstream_model
            path = UPSTREAM_PATHS[channel.kind]
        if self.beta and channel.kind == "anthropic":
            path += "?beta=true"
        return UpstreamRequest(path, orjson.dumps(body), headers_for(channel, self.client_headers))

    stream_content_type = "text/event-stream; charset=utf-8"

    def answer(self, out: dict) -> dict:
        """The client's answer from the chat answer (client-format endpoints built on chat reshape it)."""
        return out

    def answer_from(self, data: dict, kind: str) -> dict:
        """The client's answer from a channel's answer, converted when the channel speaks another format."""
        if kind == self.api_format:
            out = dict(data, model=self.model)
        elif kind == "gemini":
            out = gemini_response_to_chat(data, model=self.model)
            if self.api_format == "anthropic":
                out = openai_chat_to_anthropic_message(out, model=self.model, thinking=self.shows_thinking)
        elif kind == "anthropic":
            out = anthropic_message_to_openai_chat(data, model=self.model)
        else:
            out = openai_chat_to_anthropic_message(data, model=self.model, thinking=self.shows_thinking)
        return self.answer(out)

    def stream_converter(self, channel_kind: str):
        return stream_converter(self, channel_kind)


class ChatSpec(Spec[dict, dict]):
    """POST /v1/chat/completions and POST /v1/messages, and the client formats built on chat.

    Such a format (Responses, Gemini) hands in its request already converted to a chat body in
    `chat_format` and a `chat_type` whose `answer` and `stream_converter` convert back."""

    def __init__(self, request, call: Call, body: dict, *, chat_type=ChatRequest, chat_format=None):
        self.request = request
        self.body = body
        self.chat_type = chat_type
        self.route_format = chat_format or call.api_format

    def parse(self, call: Call) -> None:
        body = self.body
        self.model = call.model_name = require_model(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RelayError("invalid_request", "'messages' must be a non-empty array.", param="messages")
        self.stream = call.stream = body.get("stream") is True
        keys = ("max_completion_tokens", "max_tokens") if self.route_format == "openai" else ("max_tokens",)
        self.max_tokens = max_tokens_of(body, *keys)
        beta = self.request.GET.get("beta") == "true"
        self.chat = self.chat_type(
            body, self.route_format, self.request.headers, model=self.model, stream=self.stream, beta=beta
        )

    def estimate(self) -> Estimate:
        return Estimate(prompt_chars=self.chat.prompt_chars, max_tokens=self.max_tokens)

    def build(self, step, channel) -> UpstreamRequest:
        return self.chat.build(step, channel)

    accept = staticmethod(read_json)

    def respond(self, served: Served[dict]) -> dict:
        return self.chat.answer_from(served.result, served.channel.kind)

    def usage(self, served: Served[dict], reply: dict) -> Metered:
        data = served.result
        kind = served.channel.kind
        if kind == "gemini":
            usage = usage_from_gemini(data.get("usageMetadata"))
        elif kind == "anthropic":
            usage = usage_from_anthropic(data.get("usage"))
        else:
            usage = usage_from_openai(data.get("usage"))
        if usage is None:
            guess = estimated_usage(
                prompt_chars=self.chat.prompt_chars, output_chars=len(orjson.dumps(reply))
            )
            return Metered(guess, estimated=True)
        return Metered(usage)

    def stream_response(self, call: Call, served: Served[bytes]) -> StreamingHttpResponse:
        return ChatStream(call, self.chat, served, self.chat.prompt_chars).response()


async def handle_chat(
    request, call: Call, body: dict, *, chat_type=ChatRequest, chat_format=None
) -> HttpResponse | StreamingHttpResponse:
    """POST /v1/chat/completions and POST /v1/messages (and Responses, Gemini text): see `ChatSpec`."""
    return await run(call, ChatSpec(request, call, body, chat_type=chat_type, chat_format=chat_format))


def stream_converter(chat: ChatRequest, channel_kind: str):
    if channel_kind == "gemini":
        to_chat = streams_gemini.GeminiToChatStream(
            chat.model, chat.include_usage or chat.api_format != "openai"
        )
        if chat.api_format == "openai":
            return to_chat
        return ChainedStream(
            to_chat,
            streams.OpenAIToAnthropicStream(chat.model, input_tokens=estimate_tokens(chat.prompt_chars)),
        )
    if chat.api_format == "openai":
        if channel_kind == "openai":
            return streams.OpenAIPassthroughStream(chat.include_usage)
        return streams.AnthropicToOpenAIStream(chat.model, chat.include_usage)
    if channel_kind == "anthropic":
        return streams.AnthropicPassthroughStream()
    return streams.OpenAIToAnthropicStream(
        chat.model, input_tokens=estimate_tokens(chat.prompt_chars), thinking=chat.shows_thinking
    )


def received_before_break(response: aiohttp.ClientResponse) -> bytes:
    """Bytes that arrived before the upstream connection broke, not yet read.

    Once the connection breaks, aiohttp's `readany` raises instead of handing them out, so the
    last events of a cut stream (often most of it, when it came in one burst) would be lost.
    """
    read = getattr(response.content, "_read_nowait", None)  # the one reader that does not raise
    return read(-1) if read is not None else b""


class StreamTooLong(Exception):
    """A stream outlived RELAY_MAX_CALL_SECONDS: it is ended and billed for what it delivered."""


class MalformedStream(Exception):
    """The upstream sent an event that is not valid JSON: the stream is cut there, not trusted further."""


class StreamSource(Protocol):
    """What `ChatStream` reads of a request: a `ChatRequest`, or the completions endpoint's."""

    stream_content_type: str

    def stream_converter(self, channel_kind: str): ...


class ChatStream:
    """Relays one upstream event stream to the client and settles it exactly once.

    Settlement happens when the stream ends, fails, or the client goes away (the body
    iterator is closed or cancelled), and — should the body never be iterated — when
    Django closes the response.
    """

    def __init__(self, call: Call, chat: StreamSource, served: Served[bytes], prompt_chars: int):
        self.call = call
        self.chat = chat
        self.served = served
        self.prompt_chars = prompt_chars
        self.converter = chat.stream_converter(served.channel.kind)
        self.parser = SSEParser()
        self.status = "success"
        self.error = ""
        self.malformed = False

    def response(self) -> StreamingHttpResponse:
        resp = SettlingStreamingResponse(self, content_type=self.chat.stream_content_type)
        resp["Cache-Control"] = "no-cache"
        resp["X-Accel-Buffering"] = "no"
        return resp

    def _events(self, chunk: bytes) -> list[bytes]:
        """Client bytes for the events in a chunk, stopping at the first malformed one."""
        out: list[bytes] = []
        for event in self.parser.feed(chunk):
            out.extend(self.converter.feed(event))
            if self.converter.saw_garbage:
                self.malformed = True
                break
        return out

    async def body(self):
        response = self.served.response
        try:
            try:
                for part in self._events(self.served.result):
                    yield part
                deadline = self.call.started + settings.RELAY_MAX_CALL_SECONDS
                while not self.malformed:
                    chunk = await response.content.readany()
                    if not chunk:
                        break
                    for part in self._events(chunk):
                        yield part
                    if time.monotonic() > deadline:
                        raise StreamTooLong
                if self.malformed:
                    raise MalformedStream
                tail = []
                for event in self.parser.flush():
                    tail.extend(self.converter.feed(event))
                for part in tail:
                    yield part
                if self.converter.completed:
                    for part in self.converter.finish():
                        yield part
                else:
                    self.status, self.error = "partial", "the upstream stream ended before completion"
                    for part in self.converter.error(
                        "The upstream stream ended early; the answer is incomplete."
                    ):
                        yield part
            except (aiohttp.ClientError, TimeoutError, SSEError, StreamTooLong, MalformedStream) as exc:
                self.status, self.error = "partial", f"upstream stream failed: {type(exc).__name__}"
                if isinstance(exc, aiohttp.ClientPayloadError) and not self.malformed:
                    try:
                        for part in self._events(received_before_break(response)):
                            yield part
                    except SSEError:
                        pass
                for part in self.converter.error("The upstream stream failed; the answer is incomplete."):
                    yield part
        except (asyncio.CancelledError, GeneratorExit):
            self.status, self.error = "partial", "client_disconnected"
            raise
        finally:
            await self.finish()

    async def finish(self) -> None:
        """Release the channel and settle for what the upstream produced, through `Call.finish`."""
        self.served.close()
        if self.call.outcome is not None:
            return
        usage = self.converter.usage
        complete = self.status == "success" and self.converter.completed and usage is not None
        if not complete:
            guess = estimated_usage(prompt_chars=self.prompt_chars, output_chars=self.converter.output_chars)
            if usage is None:
                usage = guess
            else:
                from dataclasses import replace

                usage = replace(
                    usage,
                    input_tokens=usage.input_tokens or guess.input_tokens,
                    output_tokens=max(usage.output_tokens, guess.output_tokens),
                )
        charge = charge_for(
            model=self.call.planned.model,
            usage=usage,
            billing_mode=self.call.token.billing_mode,
            multiplier=self.served.step.multiplier,
            usd_cny_rate=self.call.snapshot.usd_cny_rate,
        )
        try:
            await self.call.finish(
                Charged(
                    self.served,
                    usage,
                    charge,
                    estimated=not complete,
                    status="success" if complete else "partial",
                    error_code=""
                    if complete
                    else ("client_disconnected" if "client" in self.error else "stream_cut"),
                    error_message=self.error,
                )
            )
        except Exception:
            logger.exception("settling stream %s failed", self.call.request_id)

    def _close_from_django(self) -> None:
        """Django closes the response in a worker thread: settle if the body never ran."""
        if self.call.outcome is None:
            from asgiref.sync import async_to_sync

            async_to_sync(self.finish)()


class SettlingStreamingResponse(StreamingHttpResponse):
    """A streaming response that settles its call when Django closes it, iterated or not."""

    def __init__(self, stream, **kwargs):
        super().__init__(stream.body(), **kwargs)
        self._relay_stream = stream

    def close(self):
        try:
            self._relay_stream._close_from_django()
        finally:
            super().close()
