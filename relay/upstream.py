"""Upstream HTTP: one pooled aiohttp session per process and event loop, per-kind headers."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import aiohttp
from django.conf import settings
from django.http import StreamingHttpResponse

from groups.routing import ChannelInfo
from groups.urlsafety import safe_client_session

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
FORWARDED_ANTHROPIC_HEADERS = ("anthropic-version", "anthropic-beta")

_sessions: dict[tuple[asyncio.AbstractEventLoop, bool], aiohttp.ClientSession] = {}


def session(*, allow_private: bool = False) -> aiohttp.ClientSession:
    """The pooled session of the running event loop (created on first use).

    Sessions come from the SSRF guard: every connection goes to a vetted address, and one
    separate pool serves the channels that may reach private networks (the demo simulator).
    """
    loop = asyncio.get_running_loop()
    current = _sessions.get((loop, allow_private))
    if current is None:
        for old in [key for key in _sessions if key[0].is_closed()]:
            del _sessions[old]
    if current is None or current.closed:
        current = safe_client_session(
            allow_private=allow_private,
            connector_kwargs={"limit": 0, "limit_per_host": 0, "ttl_dns_cache": 300, "keepalive_timeout": 30},
            auto_decompress=True,
            raise_for_status=False,
            trust_env=False,
        )
        _sessions[(loop, allow_private)] = current
    return current


def timeout(read_s: float | None = None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(
        total=None,
        sock_connect=settings.RELAY_UPSTREAM_CONNECT_TIMEOUT,
        sock_read=read_s or settings.RELAY_UPSTREAM_READ_TIMEOUT,
    )


def headers_for(channel: ChannelInfo, client_headers=None, *, json_body: bool = True) -> dict[str, str]:
    """Auth and format headers for a channel; Anthropic version/beta headers pass through unchanged."""
    headers = {"Accept": "application/json, text/event-stream", "User-Agent": "apiyi-relay/1"}
    if json_body:
        headers["Content-Type"] = "application/json"
    if channel.kind == "anthropic":
        headers["x-api-key"] = channel.api_key
        headers["anthropic-version"] = DEFAULT_ANTHROPIC_VERSION
        for name in FORWARDED_ANTHROPIC_HEADERS:
            value = client_headers.get(name) if client_headers is not None else None
            if value:
                headers[name] = value
    elif channel.kind == "gemini":
        headers["x-goog-api-key"] = channel.api_key
    else:
        headers["Authorization"] = f"Bearer {channel.api_key}"
    return headers


def gemini_path(channel: ChannelInfo, model: str, *, stream: bool) -> str:
    """generateContent or streamGenerateContent (always SSE) of a Gemini channel's model.

    The channel's base URL is the API host (`https://generativelanguage.googleapis.com`); one
    entered with its `/v1beta` suffix works too."""
    version = "" if channel.base_url.rstrip("/").endswith("/v1beta") else "/v1beta"
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{version}/models/{quote(model, safe='')}:{action}"


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds > 0 else None


async def close_sessions() -> None:
    """Close the running event loop's sessions (server shutdown, end of a test's loop)."""
    loop = asyncio.get_running_loop()
    for key in [key for key in _sessions if key[0] is loop]:
        await _sessions.pop(key).close()


def relayed_body(resp: aiohttp.ClientResponse, default_type: str) -> StreamingHttpResponse:
    """An upstream file (image, video, thumbnail) streamed to the client, connection closed after."""

    async def body():
        try:
            async for chunk in resp.content.iter_chunked(64 * 1024):
                yield chunk
        finally:
            resp.close()

    out = StreamingHttpResponse(body(), content_type=resp.headers.get("Content-Type", default_type))
    if resp.headers.get("Content-Length"):
        out["Content-Length"] = resp.headers["Content-Length"]
    return out
