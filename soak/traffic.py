"""A small asyncio load driver for the relay: mixed formats, streams, and clients that walk away.

Each call reports its HTTP status, the relay's request id (when the relay answered) and a cause,
so the callers can check the ledger for exactly the calls that reached billing.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

import aiohttp
import orjson

PROMPT = [{"role": "user", "content": "tell me a short story about a relay"}]


@dataclass
class Result:
    kind: str
    status: int
    request_id: str | None
    cause: str
    elapsed_s: float


KINDS = ("openai", "openai_stream", "anthropic", "anthropic_stream")


def _request(kind: str, url: str, key: str, model: str, max_tokens: int) -> tuple[str, dict, dict]:
    stream = kind.endswith("_stream")
    if kind.startswith("openai"):
        body = {"model": model, "messages": PROMPT, "max_tokens": max_tokens, "stream": stream}
        return f"{url}/v1/chat/completions", {"Authorization": f"Bearer {key}"}, body
    body = {"model": model, "messages": PROMPT, "max_tokens": max_tokens, "stream": stream}
    return f"{url}/v1/messages", {"x-api-key": key, "anthropic-version": "2023-06-01"}, body


def classify(status: int, body: bytes = b"") -> str:
    """ "ok", or the status with the error's native code: http_502:upstream_error, http_429:…"""
    if status == 200:
        return "ok"
    try:
        error = orjson.loads(body)["error"]
        code = error.get("code") or error["type"]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        code = "not_native"
    return f"http_{status}:{code}"


async def one_call(
    session: aiohttp.ClientSession,
    *,
    url: str,
    key: str,
    kind: str,
    model: str = "claude-sonnet-4-5",
    max_tokens: int = 64,
    disconnect: bool = False,
    timeout_s: float = 30,
) -> Result:
    """One call; `disconnect` drops a stream after its first events (a client going away)."""
    target, headers, body = _request(kind, url, key, model, max_tokens)
    started = time.monotonic()
    request_id = None
    status = 0
    try:
        async with asyncio.timeout(timeout_s):
            async with session.post(target, json=body, headers=headers) as resp:
                status = resp.status
                request_id = resp.headers.get("x-request-id")
                if disconnect and status == 200 and kind.endswith("_stream"):
                    await resp.content.readany()
                    resp.close()
                    return Result(kind, status, request_id, "client_disconnect", time.monotonic() - started)
                data = await resp.read()
        cause = classify(status, data)
        if status == 200 and kind.endswith("_stream") and (b'"error"' in data or b"event: error" in data):
            cause = "stream_error"
        return Result(kind, status, request_id, cause, time.monotonic() - started)
    except TimeoutError:
        return Result(kind, status, request_id, "client_timeout", time.monotonic() - started)
    except aiohttp.ClientPayloadError:
        return Result(kind, status, request_id, "stream_cut", time.monotonic() - started)
    except aiohttp.ClientError as exc:
        return Result(
            kind, status, request_id, f"client_error:{type(exc).__name__}", time.monotonic() - started
        )


async def fire(
    *,
    url: str | list[str],
    key: str,
    count: int,
    concurrency: int = 20,
    models: tuple[str, ...] = ("claude-sonnet-4-5",),
    disconnect_rate: float = 0.0,
    timeout_s: float = 30,
    seed: int = 0,
    first: int = 0,
) -> list[Result]:
    """`count` calls, `concurrency` at a time, cycling through the four kinds (and the URLs)."""
    urls = [url] if isinstance(url, str) else list(url)
    rng = random.Random(seed)
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency * 2, force_close=False)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def run(i: int) -> Result:
            async with gate:
                kind = KINDS[i % len(KINDS)]
                return await one_call(
                    session,
                    url=urls[i % len(urls)],
                    key=key,
                    kind=kind,
                    model=models[i % len(models)],
                    disconnect=kind.endswith("_stream") and rng.random() < disconnect_rate,
                    timeout_s=timeout_s,
                )

        return await asyncio.gather(*(run(i) for i in range(first, first + count)))


def gateway_failures(results: list[Result]) -> list[Result]:
    """Answers that are the gateway's own fault: a 500, any 5xx other than the upstream ones, or
    one without the native error body the relay gives every upstream failure."""
    return [
        r
        for r in results
        if r.status >= 500 and (r.status not in (502, 503, 504, 529) or r.cause.endswith(":not_native"))
    ]
