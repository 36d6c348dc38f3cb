"""The error contract, seen through the SDKs' own exception classes (live relay)."""

import anthropic
import openai
import pytest
import requests

from billing.models import LedgerEntry, UsageRecord
from relay.errors import SATURATED_MESSAGE
from tokens.services import token_update

pytestmark = [pytest.mark.live]

HELLO = [{"role": "user", "content": "hello"}]


def test_401_bad_key_in_both_formats(live):
    with pytest.raises(openai.AuthenticationError) as exc:
        live.openai(key="sk-not-a-real-key").chat.completions.create(model="gpt-5.1", messages=HELLO)
    assert exc.value.body["code"] == "invalid_api_key"
    assert exc.value.response.headers["x-request-id"].startswith("req_")
    with pytest.raises(anthropic.AuthenticationError) as exc:
        live.anthropic(key="sk-not-a-real-key").messages.create(model="gpt-5.1", max_tokens=8, messages=HELLO)
    assert exc.value.body["error"]["type"] == "authentication_error"


def test_401_missing_and_disabled_key(live):
    resp = requests.post(f"{live.url}/v1/chat/completions", json={"model": "gpt-5.1", "messages": HELLO})
    assert resp.status_code == 401 and "Missing API key" in resp.json()["error"]["message"]
    token_update(token=live.token, enabled=False)
    with pytest.raises(openai.AuthenticationError, match="disabled"):
        live.openai().chat.completions.create(model="gpt-5.1", messages=HELLO)


def test_402_insufficient_balance_before_any_upstream_call(live, reconciled):
    key = live.make_key(balance_yuan=0.001)
    with pytest.raises(openai.APIStatusError) as exc:
        live.openai(key=key).chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    assert exc.value.status_code == 402
    assert exc.value.body["type"] == "insufficient_quota"
    with pytest.raises(anthropic.PaymentRequiredError) as exc:
        live.anthropic(key=key).messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=HELLO)
    assert exc.value.body["error"]["type"] == "billing_error"
    assert live.sim.stats() == {}, "no upstream call may happen"
    rec = UsageRecord.objects.get(request_id=exc.value.response.headers["x-request-id"])
    assert (rec.status, rec.http_status, rec.cost_micro) == ("error", 402, 0)


def test_402_token_quota(live, reconciled):
    key = live.make_key(quota_micro=10)
    with pytest.raises(openai.APIStatusError) as exc:
        live.openai(key=key).chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    assert exc.value.status_code == 402 and "quota" in exc.value.message


def test_403_model_tier_not_allowed_for_user_group(live):
    key = live.make_key(user_group="default")
    with pytest.raises(openai.PermissionDeniedError) as exc:
        live.openai(key=key).chat.completions.create(model="claude-opus-4-6", messages=HELLO)
    assert "premium" in exc.value.message
    with pytest.raises(anthropic.PermissionDeniedError):
        live.anthropic(key=key).messages.create(model="claude-opus-4-6", max_tokens=8, messages=HELLO)


def test_403_token_model_allowlist_and_billing_mode(live):
    key = live.make_key(model_allowlist=["deepseek-v4"])
    with pytest.raises(openai.PermissionDeniedError, match="allowlist"):
        live.openai(key=key).chat.completions.create(model="glm-5.1", messages=HELLO)
    per_call = live.make_key(billing_mode="call")
    with pytest.raises(openai.PermissionDeniedError, match="billing mode"):
        live.openai(key=per_call).chat.completions.create(model="glm-5.1", messages=HELLO)


def test_404_unknown_model_names_token_groups(live):
    with pytest.raises(openai.NotFoundError) as exc:
        live.openai().chat.completions.create(model="no-such-model", messages=HELLO)
    assert exc.value.body["code"] == "model_not_found"
    assert "ClaudeCode, Default" in exc.value.message
    with pytest.raises(anthropic.NotFoundError) as exc:
        live.anthropic().messages.create(model="no-such-model", max_tokens=8, messages=HELLO)
    assert exc.value.body["error"]["type"] == "not_found_error"
    rec = UsageRecord.objects.get(request_id=exc.value.response.headers["x-request-id"])
    assert (rec.status, rec.http_status, rec.model_name) == ("error", 404, "no-such-model")


def test_429_all_saturated_exact_message_and_retry_after(live, reconciled):
    key = live.make_key(select="ClaudeCode")
    live.sim.configure(upstream="claude-official", error="429", retry_after_s=7)
    live.sim.configure(upstream="claude-aws", error="429", retry_after_s=9)
    with pytest.raises(openai.RateLimitError) as exc:
        live.openai(key=key).chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    assert exc.value.body["message"] == SATURATED_MESSAGE
    assert exc.value.body["code"] == "upstream_saturated"
    assert int(exc.value.response.headers["retry-after"]) >= 7
    rec = UsageRecord.objects.get(request_id=exc.value.response.headers["x-request-id"])
    assert rec.status == "error" and rec.cost_micro == 0
    assert [(a["channel"], a["outcome"]) for a in rec.trace] == [
        ("claude-official", "upstream_429"),
        ("claude-aws", "upstream_429"),
    ]
    assert LedgerEntry.objects.filter(request_id=rec.request_id, kind="release").count() == 1
    # The channels now cool down: the next call is refused without reaching the upstream.
    before = live.sim.stats()
    with pytest.raises(anthropic.RateLimitError) as exc:
        live.anthropic(key=key).messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=HELLO)
    assert exc.value.body["error"] == {"type": "rate_limit_error", "message": SATURATED_MESSAGE}
    assert exc.value.response.headers["retry-after"]
    assert live.sim.stats() == before


def test_400_malformed_json_and_missing_fields(live):
    headers = {"Authorization": f"Bearer {live.key}", "Content-Type": "application/json"}
    resp = requests.post(f"{live.url}/v1/chat/completions", data=b"{not json", headers=headers)
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"
    assert resp.headers["x-request-id"]
    resp = requests.post(f"{live.url}/v1/chat/completions", json={"messages": HELLO}, headers=headers)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "model"
    resp = requests.post(
        f"{live.url}/v1/messages", json={"model": "claude-sonnet-4-5"}, headers={"x-api-key": live.key}
    )
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"


def test_unknown_endpoint_is_a_json_404_with_request_id(live):
    resp = requests.get(f"{live.url}/v1/nope", headers={"Authorization": f"Bearer {live.key}"})
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"
    assert resp.headers["x-request-id"]
