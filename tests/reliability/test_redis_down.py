"""Redis down: the relay keeps serving on local state and /readyz says so."""

import socket

import pytest
import requests
from django.test import override_settings

pytestmark = [pytest.mark.live]

HELLO = [{"role": "user", "content": "hello"}]


def _dead_redis() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{s.getsockname()[1]}/0"


def test_relay_serves_on_local_state_while_redis_is_down(live):
    down = _dead_redis()
    caches = {
        "default": {
            "BACKEND": "core.cache.FallbackRedisCache",
            "LOCATION": down,
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    with override_settings(CACHES=caches, CELERY_BROKER_URL=down):
        for _ in range(2):
            reply = live.openai().chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
            assert reply.choices[0].message.content
        ready = requests.get(f"{live.url}/readyz", timeout=10)
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "degraded"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["cache"].startswith("Redis unreachable")
        assert requests.get(f"{live.url}/healthz", timeout=10).status_code == 200
