"""A warm relay call asks Redis only what is shared by nature — channel state and in-flight
counts — and reads its key and the routing version from a per-process memo bounded to a second."""

import orjson
import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache
from django.test import AsyncClient
from redis.connection import AbstractConnection

from core.cache import memo
from core.keys import hash_key
from groups.snapshot import ROUTING_VERSION_KEY, bump_routing_version, routing_version
from relay import upstream
from tokens.keys import token_cache_key
from tokens.models import Token
from tokens.services import token_update

BODY = orjson.dumps({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]})


def call(key: str):
    async def run():
        try:
            return await AsyncClient().post(
                "/v1/chat/completions",
                data=BODY,
                content_type="application/json",
                headers={"Authorization": f"Bearer {key}"},
            )
        finally:
            await upstream.close_sessions()

    return async_to_sync(run)()


@pytest.fixture
def clock(monkeypatch):
    """The memo's clock, moved by hand: no test depends on how fast the machine is."""
    now = [1_000.0]
    monkeypatch.setattr(memo, "clock", lambda: now[0])
    return now


def _command_names(packed) -> list[str]:
    raw = b"".join(bytes(part) for part in packed)
    names = []
    for frame in raw.split(b"*")[1:]:
        lines = frame.split(b"\r\n")
        if len(lines) > 2 and lines[1].startswith(b"$"):
            names.append(lines[2].decode(errors="replace").upper())
    return names


@pytest.mark.redis
@pytest.mark.django_db
def test_warm_call_makes_three_redis_round_trips(simulator, demo, clock, monkeypatch):
    key = demo["demo_key"]
    assert call(key).status_code == 200  # warms the memo, the snapshot, last_used_at
    trips: list[list[str]] = []
    real = AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        trips.append(_command_names(command))
        return real(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    assert call(key).status_code == 200
    # channel states (one MGET), take an in-flight slot (SET NX + INCRBY, pipelined), give it back
    assert trips == [["MGET"], ["SET", "INCRBY"], ["DECRBY"]], trips


@pytest.mark.django_db
def test_a_key_disabled_by_another_process_stops_working_within_the_memo_ttl(simulator, demo, clock):
    key = demo["demo_key"]
    assert call(key).status_code == 200
    # What another relay process's save does here: the row changes and the shared entry goes;
    # this process's memo is not told.
    Token.objects.filter(key_hash=hash_key(key)).update(enabled=False)
    cache.delete(token_cache_key(hash_key(key)))
    assert call(key).status_code == 200  # served from the memo: at most `memo.ttl` stale
    clock[0] += memo.ttl
    resp = call(key)
    assert resp.status_code == 401 and "disabled" in resp.json()["error"]["message"]


@pytest.mark.django_db
def test_a_key_disabled_in_this_process_stops_working_at_once(
    simulator, demo, clock, django_capture_on_commit_callbacks
):
    key = demo["demo_key"]
    assert call(key).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        token_update(token=Token.objects.get(key_hash=hash_key(key)), enabled=False)
    assert call(key).status_code == 401


def test_a_routing_change_made_elsewhere_is_seen_within_the_memo_ttl(clock):
    mine = bump_routing_version()
    cache.set(ROUTING_VERSION_KEY, "bumped-by-another-process", None)
    assert routing_version() == mine
    clock[0] += memo.ttl
    assert routing_version() == "bumped-by-another-process"
