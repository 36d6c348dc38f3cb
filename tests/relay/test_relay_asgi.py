"""The lean ASGI path that serves /v1 (core/lean_asgi.py), through the real application.

Relay views skip Django's handler (no per-request thread, no request signals, no middleware
stack) but keep what that stack gave them: security headers, the ALLOWED_HOSTS check, the
body size limit, and database connections returned after each unit.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.core.signals import request_started

CHAT = {"model": "gpt-5.1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}


def post(live, path: str = "/v1/chat/completions", *, key: str | None = None, **kwargs):
    return requests.post(
        live.url + path,
        headers={"Authorization": f"Bearer {key or live.key}", **kwargs.pop("headers", {})},
        timeout=30,
        **kwargs,
    )


def test_relay_calls_bypass_djangos_handler_and_the_console_does_not(live):
    started = []

    def count(**kwargs):
        started.append(kwargs.get("sender"))

    request_started.connect(count)
    try:
        assert post(live, json=CHAT).status_code == 200
        assert started == []
        assert requests.get(live.url + "/healthz", timeout=30).status_code == 200
        assert len(started) == 1
    finally:
        request_started.disconnect(count)


@pytest.mark.parametrize("key", [None, "sk-not-a-key"])
def test_relay_responses_keep_the_security_headers_and_a_content_length(live, key):
    resp = post(live, key=key, json=CHAT)
    assert resp.status_code == (200 if key is None else 401)
    headers = resp.headers
    assert headers["X-Request-Id"].startswith("req_")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "camera=()" in headers["Permissions-Policy"]
    assert int(headers["Content-Length"]) == len(resp.content)
    assert "Set-Cookie" not in headers


def test_an_unknown_host_is_refused(live):
    resp = post(live, json=CHAT, headers={"Host": "evil.example.com"})
    assert resp.status_code == 400


def test_a_body_over_the_limit_is_a_413_in_the_clients_format_with_or_without_a_length(live, settings):
    settings.RELAY_MAX_BODY_BYTES = 4096
    big = b'{"model": "gpt-5.1", "messages": [{"role": "user", "content": "' + b"x" * 200_000 + b'"}]}'
    resp = post(live, data=big, headers={"Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "request_too_large"

    def chunked():
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    resp = post(live, "/v1/messages", data=chunked(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.json()["type"] == "error"
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert post(live, json=CHAT).status_code == 200  # the connection pool and server are fine


@pytest.mark.postgres
def test_concurrent_calls_give_every_database_connection_back(live):
    from django.db import connection

    pool = connection.pool
    assert pool is not None, "the PostgreSQL test database runs with the connection pool"

    def checked_out() -> int:
        stats = pool.get_stats()
        return stats["pool_size"] - stats["pool_available"]

    connection.ensure_connection()
    before = checked_out()
    with ThreadPoolExecutor(max_workers=12) as ex:
        codes = list(ex.map(lambda _: post(live, json=CHAT).status_code, range(36)))
    assert codes == [200] * 36
    deadline = time.monotonic() + 15
    while checked_out() > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert checked_out() == before


def test_lifespan_shutdown_closes_the_pooled_upstream_sessions():
    """Without a lifespan, uvicorn tears the loop down with the sessions open ("Unclosed client
    session" at every shutdown)."""
    import asyncio

    from apiyi_admin.asgi import application
    from relay import upstream

    async def run():
        opened = upstream.session(allow_private=True)
        inbox = asyncio.Queue()
        sent = []

        async def send(message):
            sent.append(message["type"])

        for kind in ("lifespan.startup", "lifespan.shutdown"):
            inbox.put_nowait({"type": kind})
        await application({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
        return opened, sent

    opened, sent = asyncio.run(run())
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert opened.closed
