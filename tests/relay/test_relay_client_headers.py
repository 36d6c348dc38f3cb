"""What customers' clients send and read besides the body: bare keys, request ids, `?beta=true`."""

import anthropic
import pytest
import requests

HELLO = [{"role": "user", "content": "hello"}]


def test_bare_sk_key_without_bearer_is_accepted(live):
    resp = requests.post(
        f"{live.url}/v1/chat/completions",
        json={"model": "gpt-5.1", "messages": HELLO},
        headers={"Authorization": live.key},
    )
    assert resp.status_code == 200, resp.text
    resp = requests.post(
        f"{live.url}/v1/chat/completions",
        json={"model": "gpt-5.1", "messages": HELLO},
        headers={"Authorization": "sk-not-a-real-key"},
    )
    assert resp.status_code == 401


def test_anthropic_sdk_sees_the_request_id_on_an_error(live):
    with pytest.raises(anthropic.NotFoundError) as exc:
        live.anthropic().messages.create(model="no-such-model", max_tokens=8, messages=HELLO)
    assert exc.value.request_id
    assert exc.value.request_id == exc.value.response.headers["x-request-id"]
    assert live.record(exc.value.request_id).http_status == 404


def test_beta_true_reaches_anthropic_channels(live):
    key = live.make_key(select="ClaudeCode")
    client = live.anthropic(key=key, default_query={"beta": "true"})  # as Claude Code sends it
    client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=HELLO)
    seen = live.sim.requests("claude-official") + live.sim.requests("claude-aws")
    assert [r["query"] for r in seen] == [{"beta": "true"}]
