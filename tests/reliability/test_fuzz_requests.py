"""Hostile request bodies on the relay's two chat endpoints: never a 500, always a native error.

Hypothesis generates random JSON, non-JSON bytes, wrong content types and valid-looking bodies
with fields removed, retyped or blown up; each is POSTed in-process (Django's AsyncClient) with a
valid key, so parsing, validation, conversion and — for bodies that pass — the simulated upstream
are all exercised. Examples are bounded to keep the run short.
"""

from __future__ import annotations

import json

import orjson
import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay import upstream

OPENAI = {
    "model": "claude-sonnet-4-5",
    "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
    "max_tokens": 16,
    "temperature": 0.5,
    "stream": False,
}
ANTHROPIC = {
    "model": "claude-sonnet-4-5",
    "system": "be brief",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
    "max_tokens": 16,
    "stream": False,
}
ENDPOINTS = {"/v1/chat/completions": OPENAI, "/v1/messages": ANTHROPIC}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
huge = st.sampled_from([10**30, -(10**30), 2**63, -1, 0, 1e308, -1e308, 1.5, "16", None, [], {}])


@st.composite
def mutated(draw, base: dict) -> dict:
    """A valid body with a few fields removed, retyped or set to extreme values (also inside messages)."""
    body = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        keys = sorted(body)
        action = draw(st.sampled_from(["drop", "retype", "huge", "message", "extra"]))
        if action == "drop" and keys:
            body.pop(draw(st.sampled_from(keys)))
        elif action == "retype" and keys:
            body[draw(st.sampled_from(keys))] = draw(json_values)
        elif action == "huge":
            body[draw(st.sampled_from(["max_tokens", "temperature", "top_p", "n", "top_k"]))] = draw(huge)
        elif action == "message" and isinstance(body.get("messages"), list) and body["messages"]:
            message = body["messages"][-1]
            if isinstance(message, dict) and message:
                field = draw(st.sampled_from(sorted(message)))
                message[field] = draw(json_values | huge)
        else:
            body[draw(st.text(min_size=1, max_size=12))] = draw(json_values)
    return body


def payloads(base: dict):
    """(raw body, content type) pairs: mutated bodies, random JSON, raw bytes, wrong content types."""
    as_json = st.one_of(mutated(base), json_values).map(lambda v: json.dumps(v).encode())
    content_types = st.sampled_from(
        ["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded", ""]
    )
    return st.one_of(
        st.tuples(as_json, st.just("application/json")),
        st.tuples(st.binary(max_size=200), content_types),
        st.tuples(as_json, content_types),
    )


def post(path: str, body: bytes, content_type: str, key: str) -> tuple[int, bytes]:
    async def run():
        client = AsyncClient()
        try:
            response = await client.post(
                path, data=body, content_type=content_type, headers={"Authorization": f"Bearer {key}"}
            )
            if response.streaming:
                return response.status_code, b"".join([chunk async for chunk in response.streaming_content])
            return response.status_code, response.content
        finally:
            await upstream.close_sessions()

    return async_to_sync(run)()


def assert_native_error(path: str, status: int, content: bytes) -> None:
    assert status != 500 and (status < 500 or status in (502, 503, 504)), (status, content[:300])
    if status == 200:
        return
    data = orjson.loads(content)
    if path == "/v1/messages":
        assert data["type"] == "error" and isinstance(data["error"], dict), data
        assert isinstance(data["error"]["type"], str) and isinstance(data["error"]["message"], str)
    else:
        assert isinstance(data["error"], dict) and isinstance(data["error"]["message"], str), data


@pytest.fixture
def key(simulator, demo, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.RELAY_UPSTREAM_READ_TIMEOUT = 5
    return demo["demo_key"]


FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("path", ENDPOINTS)
@FUZZ
@given(data=st.data())
def test_hostile_bodies_get_a_native_error_or_an_answer(key, path, data):
    body, content_type = data.draw(payloads(ENDPOINTS[path]))
    status, content = post(path, body, content_type, key)
    assert_native_error(path, status, content)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_the_unmutated_bodies_succeed(key, path):
    """The fuzzing's starting point is a valid call, so mutations probe the parser, not a dead end."""
    status, content = post(path, orjson.dumps(ENDPOINTS[path]), "application/json", key)
    assert status == 200, content
