"""RPM limits through the live relay: their own 429, in the client's format, no fallback."""

import time

import anthropic
import openai
import pytest
import requests

from relay.errors import SATURATED_MESSAGE
from relay.ratelimit import WINDOW_S

pytestmark = [pytest.mark.live]


@pytest.fixture(autouse=True)
def one_window():
    """Limits count in fixed one-minute windows: start where a test's calls all fit in one,
    or a window rolling over between two calls would let the second one through."""
    left = WINDOW_S - time.time() % WINDOW_S
    if left < 20:
        time.sleep(left + 0.05)


HELLO = [{"role": "user", "content": "hello"}]


def test_token_rpm_limit_refuses_with_its_own_429_and_never_falls_back(live):
    key = live.make_key(select="ClaudeCode", fallbacks=["Default"], rpm_limit=2)
    client = live.openai(key=key)
    for _ in range(2):
        client.chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    upstream_calls = sum(s["requests"] for s in live.sim.stats().values())
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    assert exc.value.body["code"] == "rate_limit_exceeded"
    assert "this API key allows 2 requests per minute" in exc.value.message
    assert SATURATED_MESSAGE not in exc.value.message
    assert 1 <= int(exc.value.response.headers["retry-after"]) <= 61
    assert exc.value.response.headers["x-request-id"].startswith("req_")
    # refused before routing: no upstream call, no fallback group tried
    assert sum(s["requests"] for s in live.sim.stats().values()) == upstream_calls
    with pytest.raises(anthropic.RateLimitError) as exc:
        live.anthropic(key=key).messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=HELLO)
    assert exc.value.body["error"]["type"] == "rate_limit_error"


def test_account_rpm_limit_spans_the_accounts_keys(live):
    key = live.make_key(select="ClaudeCode")
    user = live.token_of(key).user
    from accounts.models import User
    from accounts.services import user_operator_update
    from tokens.services import token_create

    user_operator_update(actor=User.objects.get(username="admin"), user=user, rpm_limit=1)

    _, second = token_create(user=user, name="second", select_group=live.token_of(key).select_group)
    live.openai(key=key).chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    resp = requests.post(
        f"{live.url}/v1/chat/completions",
        json={"model": "claude-sonnet-4-5", "messages": HELLO},
        headers={"Authorization": f"Bearer {second}"},
        timeout=30,
    )
    assert resp.status_code == 429 and resp.headers["Retry-After"]
    assert "this account allows 1 requests per minute" in resp.json()["error"]["message"]


def test_no_limit_by_default(live):
    client = live.openai()
    for _ in range(5):
        client.chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
