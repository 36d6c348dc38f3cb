"""Continuous load for the fault tests: clients calling the relay back to back while a server
is stopped and started under them, each answer kept with its timing, status and body."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import aiohttp

from soak.traffic import KINDS, _request

CONCURRENCY = 16
CLIENT_TIMEOUT_S = 60


@dataclass
class Answer:
    kind: str
    started: float
    ended: float
    status: int
    request_id: str | None
    body: bytes
    cause: str


class Load:
    """CONCURRENCY clients calling the relay back to back in a background thread until stopped."""

    def __init__(self, url: str, key: str):
        self.url, self.key = url, key
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="load", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=CLIENT_TIMEOUT_S * 2)

    def since(self, t: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.started >= t]

    async def _run(self) -> None:
        connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(self._client(session, i) for i in range(CONCURRENCY)))

    async def _client(self, session: aiohttp.ClientSession, n: int) -> None:
        i = n
        while not self._stop.is_set():
            answer = await call(session, self.url, self.key, KINDS[i % len(KINDS)])
            self.answers.append(answer)
            i += CONCURRENCY
            if answer.status != 200:
                await asyncio.sleep(0.2)  # a client pausing before its retry, as SDKs do


async def call(session: aiohttp.ClientSession, url: str, key: str, kind: str) -> Answer:
    target, headers, body = _request(kind, url, key, "claude-sonnet-4-5", 32)
    started = time.monotonic()
    status, request_id, data, cause = 0, None, b"", "ok"
    try:
        async with asyncio.timeout(CLIENT_TIMEOUT_S):
            async with session.post(target, json=body, headers=headers) as resp:
                status, request_id = resp.status, resp.headers.get("x-request-id")
                data = await resp.read()
    except TimeoutError:
        cause = "client_timeout"
    except aiohttp.ClientError as exc:
        cause = f"client_error:{type(exc).__name__}"
    if cause == "ok" and status != 200:
        cause = f"http_{status}"
    return Answer(kind, started, time.monotonic(), status, request_id, data, cause)


def burst(url: str, key: str, count: int) -> list[Answer]:
    async def run():
        async with aiohttp.ClientSession() as session:
            gate = asyncio.Semaphore(CONCURRENCY)

            async def one(i):
                async with gate:
                    return await call(session, url, key, KINDS[i % len(KINDS)])

            return await asyncio.gather(*(one(i) for i in range(count)))

    return asyncio.run(run())
