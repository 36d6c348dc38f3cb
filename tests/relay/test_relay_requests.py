"""Request validation (in-process): clear 4xx errors in the client's format, never a 500."""

import pytest

from billing.models import LedgerEntry, UsageRecord

pytestmark = pytest.mark.django_db

HELLO = [{"role": "user", "content": "hi"}]


def test_body_too_large_is_413(simulator, demo, relay_call, settings):
    settings.RELAY_MAX_BODY_BYTES = 500
    resp = relay_call(
        "POST",
        "/v1/chat/completions",
        key=demo["demo_key"],
        json={"model": "gpt-5.1", "messages": [{"role": "user", "content": "x" * 1000}]},
    )
    assert resp.status_code == 413 and resp.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-5.1", "messages": []}, "messages"),
        ({"model": "gpt-5.1", "messages": "hi"}, "messages"),
        ({"model": 5, "messages": HELLO}, "model"),
        ({"model": "gpt-5.1", "messages": HELLO, "max_tokens": -1}, "max_tokens"),
        ({"model": "gpt-5.1", "messages": HELLO, "max_tokens": 10**9}, "max_tokens"),
    ],
)
def test_bad_fields_are_400_with_the_param(simulator, demo, relay_call, body, param):
    resp = relay_call("POST", "/v1/chat/completions", key=demo["demo_key"], json=body)
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == param
    assert not LedgerEntry.objects.filter(request_id=resp["X-Request-Id"]).exists()


def test_unconvertible_request_is_a_400_and_releases_its_hold(simulator, demo, relay_call):
    body = {"model": "claude-sonnet-4-5", "messages": [{"role": "wizard", "content": "hi"}]}
    resp = relay_call("POST", "/v1/chat/completions", key=demo["demo_key"], json=body)
    assert resp.status_code == 400 and "role" in resp.json()["error"]["message"]
    rec = UsageRecord.objects.get(request_id=resp["X-Request-Id"])
    assert rec.status == "error" and rec.cost_micro == 0


def test_wrong_method_is_405(simulator, demo, relay_call):
    resp = relay_call("GET", "/v1/chat/completions", key=demo["demo_key"])
    assert resp.status_code == 405 and resp.json()["error"]["type"] == "invalid_request_error"


def test_video_seconds_out_of_range(simulator, demo, relay_call, groups):
    resp = relay_call(
        "POST", "/v1/videos", key=demo["demo_key"], json={"model": "sora-2", "prompt": "x", "seconds": 999}
    )
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "seconds"


def test_unknown_video_is_404(simulator, demo, relay_call):
    resp = relay_call("GET", "/v1/videos/video_nope", key=demo["demo_key"])
    assert resp.status_code == 404


def test_count_tokens_is_free(simulator, demo, relay_call):
    resp = relay_call(
        "POST",
        "/v1/messages/count_tokens",
        headers={"x-api-key": demo["demo_key"]},
        json={"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hello " * 100}]},
    )
    assert resp.status_code == 200 and resp.json()["input_tokens"] > 100
    assert not LedgerEntry.objects.filter(request_id=resp["X-Request-Id"]).exists()


def test_private_upstream_is_refused_unless_the_channel_allows_it(simulator, demo, relay_call):
    from groups.models import Channel

    channel = Channel.objects.get(name="claude-official")
    channel.allow_private_network = False  # the simulator listens on 127.0.0.1
    channel.save()
    resp = relay_call(
        "POST",
        "/v1/chat/completions",
        key=demo["demo_key"],
        json={"model": "claude-sonnet-4-5", "messages": HELLO},
    )
    assert resp.status_code == 200
    rec = UsageRecord.objects.get(request_id=resp["X-Request-Id"])
    assert [(a["channel"], a["outcome"]) for a in rec.trace] == [
        ("claude-official", "connect_error"),
        ("claude-aws", "ok"),
    ]
