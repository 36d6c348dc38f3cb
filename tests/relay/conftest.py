"""Relay fixtures: a live ASGI relay (uvicorn in a thread) beside the simulated upstreams.

The relay runs in this process, so it shares the test database (committed data: tests use
`transactional_db`) and the local-memory cache (saturation counters, routing version).
SQLite's in-memory test database cannot take concurrent writers from several threads, so
tests that fire concurrent calls are marked `postgres`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass

import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """seed_demo hashes two passwords; the default hasher would dominate these tests' time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RelayServer:
    url: str
    server: object

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait for the relay's requests in flight: an SDK stops reading a stream at its last
        event, while the relay still writes the settlement, and a test's database flush must
        not race that write (TRUNCATE against the settlement's row locks can deadlock)."""
        deadline = time.monotonic() + timeout
        while self.server.server_state.tasks and time.monotonic() < deadline:
            time.sleep(0.02)


@pytest.fixture(scope="session")
def relay_server(django_db_setup):
    """Set up after the test database: the batched ledger's pool closes before that is dropped."""
    import uvicorn

    config = uvicorn.Config(
        "apiyi_admin.asgi:application",
        host="127.0.0.1",
        port=free_port(),
        log_level="warning",
        lifespan="off",
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="relay-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the relay did not start")
        time.sleep(0.05)
    yield RelayServer(url=f"http://127.0.0.1:{config.port}", server=server)
    from billing import ledger
    from relay import upstream

    for (loop, _), session in list(upstream._sessions.items()):
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(session.close(), loop).result(timeout=10)
    for loop in list(ledger._loops):
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(ledger.close_batched_ledger(), loop).result(timeout=10)
    server.should_exit = True
    thread.join(timeout=10)


@dataclass
class Live:
    url: str
    key: str
    sim: object
    _users = 0

    def openai(self, key: str | None = None, **kwargs):
        import openai

        kwargs.setdefault("timeout", 30)
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key or self.key, max_retries=0, **kwargs)

    def anthropic(self, key: str | None = None, **kwargs):
        import anthropic

        kwargs.setdefault("timeout", 30)
        return anthropic.Anthropic(base_url=self.url, api_key=key or self.key, max_retries=0, **kwargs)

    @property
    def token(self):
        from core.keys import hash_key
        from tokens.models import Token

        return Token.objects.select_related("user").get(key_hash=hash_key(self.key))

    def make_key(
        self, *, user_group="default", select="ClaudeCode", fallbacks=(), balance_yuan=100, **token_kwargs
    ) -> str:
        """A fresh user (pinned to `user_group`) with `balance_yuan` and a token; returns the raw key."""
        from accounts.services import user_create
        from billing.services import wallet_recharge
        from groups.models import TokenGroup, UserGroup
        from tokens.services import token_create

        Live._users += 1
        user = user_create(
            username=f"relayuser{Live._users}",
            user_group=UserGroup.objects.get(name=user_group),
            user_group_pinned=True,
        )
        if balance_yuan:
            wallet_recharge(user=user, amount_micro=int(balance_yuan * 1_000_000), payment_ref=f"t-{user.pk}")
        _, raw = token_create(
            user=user,
            name="test",
            select_group=TokenGroup.objects.get(name=select),
            fallback_groups=[TokenGroup.objects.get(name=name) for name in fallbacks],
            **token_kwargs,
        )
        return raw

    def token_of(self, raw: str):
        from core.keys import hash_key
        from tokens.models import Token

        return Token.objects.select_related("user__wallet").get(key_hash=hash_key(raw))

    def record(self, request_id: str):
        from billing.models import UsageRecord

        return UsageRecord.objects.get(request_id=request_id)

    def settled(self, request_id: str, timeout: float = 15.0):
        """The usage record once settled: a stream whose client went away settles a moment later.

        Polls gently: SQLite's shared in-memory test database refuses a read that overlaps the
        relay's write ("table is locked"), which is retried."""
        from django.db import OperationalError

        from billing.models import UsageRecord

        deadline = time.monotonic() + timeout
        while True:
            time.sleep(0.2)
            try:
                rec = UsageRecord.objects.filter(request_id=request_id, settled_at__isnull=False).first()
            except OperationalError:
                rec = None
            if rec is not None or time.monotonic() > deadline:
                return rec


@pytest.fixture
def live(simulator, relay_server, transactional_db, settings):
    """Demo data pointing at the simulator, and the relay's URL and demo key.

    Celery runs tasks eagerly here, so video polls queued by the relay never reach a broker."""
    from apiyi_admin.celery import app
    from apiyi_admin.demo import seed_demo

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    settings.RELAY_UPSTREAM_READ_TIMEOUT = 5
    seeded = seed_demo()
    yield Live(url=relay_server.url, key=seeded["demo_key"], sim=simulator)
    relay_server.wait_idle()
    app.conf.task_always_eager = eager


@pytest.fixture
def reconciled():
    """Asserts after the test that every wallet still equals its ledger."""
    yield
    from billing.selectors import wallets_out_of_balance

    assert wallets_out_of_balance() == []


@pytest.fixture
def relay_call():
    """Call the relay in-process (Django's AsyncClient): fast, and on the test's own DB connection."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    from relay import upstream

    def call(method: str, path: str, *, key: str | None = None, json=None, headers=None, **extra):
        import orjson

        all_headers = dict(headers or {})
        if key:
            all_headers.setdefault("Authorization", f"Bearer {key}")

        async def run():
            client = AsyncClient(**extra)
            try:
                if method == "GET":
                    return await client.get(path, headers=all_headers)
                return await client.post(
                    path, data=orjson.dumps(json or {}), content_type="application/json", headers=all_headers
                )
            finally:
                await upstream.close_sessions()

        return async_to_sync(run)()

    return call
