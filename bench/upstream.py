"""The minimal upstream every target is measured against: a fixed OpenAI chat-completions answer.

Kept as cheap as aiohttp allows (uvloop, no access log, answers pre-serialised per model)
so that it is never the bottleneck. Routes:

- `POST /v1/chat/completions`: 200 with a small fixed completion, or an SSE stream of
  `--chunks` chunks when the body says `"stream": true`. A model whose name ends in `-slow`
  streams `--slow-chunks` chunks `--slow-delay-ms` apart (the long-lived streams phase).
- `POST /r429/<seconds>/v1/chat/completions`: 429 with `Retry-After: <seconds>`, an
  upstream that is saturated (the failover phase).
- `GET /_stats`: request and 429 counters, `POST /_stats/reset` zeroes them.

Run: `python bench/upstream.py --port P [--chunks N] [--slow-chunks N] [--slow-delay-ms MS]`.
"""

from __future__ import annotations

import argparse
import asyncio

import orjson
from aiohttp import web

CONTENT = "Hello from the bench upstream."
PROMPT_TOKENS = 12
COMPLETION_TOKENS = 8
USAGE = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS, "total_tokens": 20}
JSON = "application/json"
ERROR_429 = orjson.dumps(
    {"error": {"message": "Rate limited (bench upstream)", "type": "rate_limit_error", "code": "rate_limit"}}
)


class Upstream:
    def __init__(self, *, chunks: int, slow_chunks: int, slow_delay_ms: int):
        self.chunks = chunks
        self.slow_chunks = slow_chunks
        self.slow_delay_s = slow_delay_ms / 1000
        self.stats = {"requests": 0, "streams": 0, "r429": 0, "open_streams": 0, "max_open_streams": 0}
        self._bodies: dict[str, bytes] = {}
        self._frames: dict[str, tuple[bytes, bytes, bytes]] = {}

    def body(self, model: str) -> bytes:
        cached = self._bodies.get(model)
        if cached is None:
            cached = self._bodies[model] = orjson.dumps(
                {
                    "id": "chatcmpl-bench",
                    "object": "chat.completion",
                    "created": 1_700_000_000,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": CONTENT},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": USAGE,
                }
            )
        return cached

    def frames(self, model: str) -> tuple[bytes, bytes, bytes]:
        """(content chunk, final chunk, usage chunk) SSE frames for a model."""
        cached = self._frames.get(model)
        if cached is None:
            base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_700_000_000}

            def frame(choices, **extra) -> bytes:
                return (
                    b"data: " + orjson.dumps({**base, "model": model, "choices": choices, **extra}) + b"\n\n"
                )

            cached = self._frames[model] = (
                frame([{"index": 0, "delta": {"content": "tok "}, "finish_reason": None}]),
                frame([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
                frame([], usage=USAGE),
            )
        return cached

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.stats["requests"] += 1
        try:
            payload = orjson.loads(await request.read())
            model = str(payload.get("model") or "bench-model")
        except (orjson.JSONDecodeError, AttributeError):
            return web.Response(status=400, body=b'{"error":{"message":"bad json"}}', content_type=JSON)
        if not payload.get("stream"):
            return web.Response(body=self.body(model), content_type=JSON)
        include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
        return await self.stream(request, model, include_usage)

    async def stream(self, request: web.Request, model: str, include_usage: bool) -> web.StreamResponse:
        slow = model.endswith("-slow")
        count, delay = (self.slow_chunks, self.slow_delay_s) if slow else (self.chunks, 0.0)
        content, final, usage = self.frames(model)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        stats = self.stats
        stats["streams"] += 1
        stats["open_streams"] += 1
        stats["max_open_streams"] = max(stats["max_open_streams"], stats["open_streams"])
        try:
            for i in range(count):
                if delay and i:
                    await asyncio.sleep(delay)
                await response.write(content)
            tail = final + (usage if include_usage else b"") + b"data: [DONE]\n\n"
            await response.write(tail)
            await response.write_eof()
        finally:
            stats["open_streams"] -= 1
        return response

    async def rate_limited(self, request: web.Request) -> web.Response:
        self.stats["r429"] += 1
        await request.read()
        return web.Response(
            status=429,
            body=ERROR_429,
            content_type=JSON,
            headers={"Retry-After": request.match_info["seconds"]},
        )

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.stats), content_type=JSON)

    async def reset_stats(self, request: web.Request) -> web.Response:
        for key in self.stats:
            if key != "open_streams":
                self.stats[key] = 0
        return web.Response(body=orjson.dumps(self.stats), content_type=JSON)


def build_app(**options) -> web.Application:
    upstream = Upstream(**options)
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/v1/chat/completions", upstream.chat)
    app.router.add_post("/r429/{seconds}/v1/chat/completions", upstream.rate_limited)
    app.router.add_get("/_stats", upstream.get_stats)
    app.router.add_post("/_stats/reset", upstream.reset_stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--slow-chunks", type=int, default=10)
    parser.add_argument("--slow-delay-ms", type=int, default=500)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    app = build_app(chunks=args.chunks, slow_chunks=args.slow_chunks, slow_delay_ms=args.slow_delay_ms)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, backlog=4096)


if __name__ == "__main__":
    main()
