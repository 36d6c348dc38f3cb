"""Key authentication: header forms, disabled/expired keys, IP allowlists, cache invalidation."""

from datetime import timedelta

import pytest
from django.utils import timezone

from relay.auth import ip_allowed
from tokens.keys import hash_key
from tokens.models import Token
from tokens.services import token_update

pytestmark = pytest.mark.django_db

CHAT = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}


def test_bearer_and_x_api_key_both_work(simulator, demo, relay_call):
    key = demo["demo_key"]
    assert relay_call("POST", "/v1/chat/completions", key=key, json=CHAT).status_code == 200
    resp = relay_call("POST", "/v1/messages", json={**CHAT, "max_tokens": 16}, headers={"x-api-key": key})
    assert resp.status_code == 200 and resp.json()["type"] == "message"


def test_changes_to_a_token_apply_at_once(simulator, demo, relay_call):
    key = demo["demo_key"]
    assert relay_call("POST", "/v1/chat/completions", key=key, json=CHAT).status_code == 200  # now cached
    token = Token.objects.get(key_hash=hash_key(key))
    token_update(token=token, enabled=False)
    resp = relay_call("POST", "/v1/chat/completions", key=key, json=CHAT)
    assert resp.status_code == 401 and "disabled" in resp.json()["error"]["message"]
    token_update(token=token, enabled=True)
    token.refresh_from_db()
    token.expires_at = timezone.now() - timedelta(seconds=1)
    token.save()  # saved through the model: the signal drops the cached entry
    resp = relay_call("POST", "/v1/messages", json=CHAT, headers={"x-api-key": key})
    assert resp.status_code == 401 and resp.json()["error"]["type"] == "authentication_error"


def test_ip_allowlist(simulator, demo, relay_call):
    key = demo["demo_key"]
    token = Token.objects.get(key_hash=hash_key(key))
    token_update(token=token, ip_allowlist=["10.0.0.0/8"])  # the test client calls from 127.0.0.1
    resp = relay_call("POST", "/v1/chat/completions", key=key, json=CHAT)
    assert resp.status_code == 403 and resp.json()["error"]["type"] == "permission_error"
    assert "127.0.0.1" in resp.json()["error"]["message"]
    token_update(token=token, ip_allowlist=["10.0.0.0/8", "127.0.0.1"])
    assert relay_call("POST", "/v1/chat/completions", key=key, json=CHAT).status_code == 200


def test_ip_allowed_matches_addresses_and_ranges():
    assert ip_allowed("10.1.2.3", ("10.0.0.0/8",))
    assert ip_allowed("2001:db8::1", ("2001:db8::/32",))
    assert not ip_allowed("192.168.1.5", ("10.0.0.0/8", "192.168.2.0/24"))
    assert not ip_allowed("not-an-ip", ("10.0.0.0/8",))
    assert ip_allowed("192.168.1.5", ())


def test_last_used_at_is_written_at_most_once_a_minute(simulator, demo, relay_call):
    key = demo["demo_key"]
    relay_call("POST", "/v1/chat/completions", key=key, json=CHAT)
    token = Token.objects.get(key_hash=hash_key(key))
    first = token.last_used_at
    assert first is not None
    relay_call("POST", "/v1/chat/completions", key=key, json=CHAT)
    token.refresh_from_db()
    assert token.last_used_at == first


def test_unknown_keys_do_not_reach_the_database_twice(simulator, demo, relay_call, django_assert_num_queries):
    relay_call("POST", "/v1/chat/completions", key="sk-unknown-key", json=CHAT)
    with django_assert_num_queries(0):
        resp = relay_call("POST", "/v1/chat/completions", key="sk-unknown-key", json=CHAT)
    assert resp.status_code == 401 and resp["X-Request-Id"].startswith("req_")


def test_user_group_change_applies_to_cached_tokens_at_once(simulator, demo, relay_call, user_groups):
    from accounts.models import User

    key = demo["demo_key"]
    body = {"model": "claude-opus-4-6", "messages": [{"role": "user", "content": "hi"}]}
    assert (
        relay_call("POST", "/v1/chat/completions", key=key, json=body).status_code == 200
    )  # vip: premium ok
    user = User.objects.get(username="demo")
    user.user_group = user_groups["default"]
    user.save()
    assert relay_call("POST", "/v1/chat/completions", key=key, json=body).status_code == 403
