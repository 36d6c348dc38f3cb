"""Key authentication: header forms, disabled/expired keys, IP allowlists, cache invalidation."""

import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from accounts.services import user_operator_update
from core.keys import hash_key
from relay.auth import _load_and_cache, ip_allowed
from tokens.keys import token_cache_key
from tokens.models import Token
from tokens.services import token_update

# Real commits: the services drop cached keys in `transaction.on_commit`.
pytestmark = pytest.mark.django_db(transaction=True)

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
    assert relay_call("POST", "/v1/chat/completions", key=key, json=CHAT).status_code == 200  # cached again
    Token.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    token_update(token=token, rpm_limit=100)  # any service write drops the entry: the expiry is read
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
    user_operator_update(
        actor=User.objects.get(username="admin"), user=user, user_group=user_groups["default"]
    )
    assert relay_call("POST", "/v1/chat/completions", key=key, json=body).status_code == 403


def _call_elsewhere(fn, *args):
    """Run fn on another thread, so on another database connection: a concurrent relay call."""

    def run():
        try:
            fn(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def test_a_revoke_drops_the_cached_key_only_once_it_commits(simulator, demo, relay_call):
    key = demo["demo_key"]
    assert relay_call("POST", "/v1/chat/completions", key=key, json=CHAT).status_code == 200  # now cached
    token = Token.objects.get(key_hash=hash_key(key))
    with transaction.atomic():
        token_update(token=token, enabled=False)
        assert cache.get(token_cache_key(token.key_hash)) is not None, "dropped before the commit"
    assert cache.get(token_cache_key(token.key_hash)) is None
    resp = relay_call("POST", "/v1/chat/completions", key=key, json=CHAT)
    assert resp.status_code == 401 and "disabled" in resp.json()["error"]["message"]


def test_a_call_between_the_revoke_and_its_commit_cannot_re_cache_the_key(simulator, demo, relay_call):
    key = demo["demo_key"]
    token = Token.objects.get(key_hash=hash_key(key))
    with transaction.atomic():
        token_update(token=token, enabled=False)
        # A concurrent call misses the cache and reads the row still visible to it: enabled.
        _call_elsewhere(_load_and_cache, token.key_hash)
        assert cache.get(token_cache_key(token.key_hash)).enabled
    resp = relay_call("POST", "/v1/chat/completions", key=key, json=CHAT)
    assert resp.status_code == 401 and "disabled" in resp.json()["error"]["message"]


def test_a_rolled_back_revoke_keeps_the_key_working(simulator, demo, relay_call):
    key = demo["demo_key"]
    token = Token.objects.get(key_hash=hash_key(key))
    with pytest.raises(RuntimeError), transaction.atomic():
        token_update(token=token, enabled=False)
        raise RuntimeError
    assert relay_call("POST", "/v1/chat/completions", key=key, json=CHAT).status_code == 200
