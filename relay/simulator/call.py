"""What a handler gets for one simulated upstream request, and the shared streaming helpers."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from .config import DEFAULT_RULE, Rule


class BadRequest(Exception):
    """A request the real provider would refuse with 400 (or `status`)."""

    def __init__(self, message: str, *, param: str | None = None, status: int = 400, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.code = code


class Call:
    __slots__ = ("request", "sim", "upstream", "fmt", "body", "model", "rule", "status", "response")

    def __init__(self, request: web.Request, sim, upstream: str, fmt: str):
        self.request = request
        self.sim = sim
        self.upstream = upstream
        self.fmt = fmt
        self.body: dict = {}
        self.model = ""
        self.rule: Rule = DEFAULT_RULE
        self.status = "500"
        self.response: web.StreamResponse | None = None

    def json(self, payload: object, *, status: int = 200, headers: dict | None = None) -> web.Response:
        self.status = str(status)
        return web.Response(
            body=orjson.dumps(payload), status=status, content_type="application/json", headers=headers
        )

    def drop_connection(self, *, flush: bool) -> None:
        """Close the socket under the client: after flushing what was written, or at once (reset)."""
        transport = self.request.transport
        if transport is not None:
            if flush:
                transport.close()
            else:
                transport.abort()


class Stream:
    """An SSE response that honours latency spreading and the mid-stream faults.

    `cut_stream` stops half way and drops the socket; `stream_error` sends `error_event` half way
    and ends the response cleanly, as providers do when they fail after the first byte."""

    def __init__(self, call: Call, n_events: int, error_event: bytes):
        self.call = call
        self.resp = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"},
        )
        rule = call.rule
        self.delay = rule.latency_ms / 1000 / max(n_events, 1) if rule.latency_ms else 0.0
        self.fault_at = max(n_events // 2, 1) if rule.error in ("cut_stream", "stream_error") else None
        self.error_event = error_event
        self.sent = 0

    async def start(self, headers: dict | None = None) -> None:
        if headers:
            self.resp.headers.update(headers)
        self.call.status = "200"
        self.call.response = self.resp
        await self.resp.prepare(self.call.request)

    async def send(self, data: bytes) -> None:
        if self.fault_at is not None and self.sent >= self.fault_at:
            if self.call.rule.error == "cut_stream":
                raise StreamCut
            await self.resp.write(self.error_event)
            await self.resp.write_eof()
            raise StreamFailed
        if self.delay and self.sent:
            await asyncio.sleep(self.delay)
        await self.resp.write(data)
        self.sent += 1


class StreamCut(Exception):
    """Raised inside a stream handler to stop writing; the dispatcher then drops the connection."""


class StreamFailed(Exception):
    """Raised after an in-stream error event was sent and the response ended."""
