"""What customers' SDKs and apiyi's own samples expect of the relay beyond the core calls:
a bare `Authorization: sk-…`, the Anthropic SDK's request id, `models.retrieve`, `?beta=true`."""

import anthropic
import httpx2 as httpx
import openai
import pytest

pytestmark = [pytest.mark.live]


def test_bare_authorization_header_without_bearer_is_accepted(live):
    response = httpx.get(f"{live.url}/v1/models", headers={"Authorization": live.key}, timeout=30)
    assert response.status_code == 200
    assert response.json()["data"]


def test_bare_authorization_header_with_a_wrong_key_is_still_refused(live):
    response = httpx.get(f"{live.url}/v1/models", headers={"Authorization": "sk-not-a-key"}, timeout=30)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_anthropic_sdk_error_carries_the_gateways_request_id(live):
    with pytest.raises(anthropic.NotFoundError) as caught:
        live.anthropic().messages.create(
            model="no-such-model", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    request_id = caught.value.request_id
    assert request_id and request_id.startswith("req_")
    assert caught.value.response.headers["x-request-id"] == request_id
    assert live.record(request_id).http_status == 404


def test_anthropic_sdk_success_carries_the_gateways_request_id(live):
    message = live.anthropic().messages.create(
        model="claude-sonnet-4-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
    )
    assert message._request_id.startswith("req_")
    assert live.record(message._request_id).status == "success"


def test_openai_models_retrieve_returns_a_callable_model(live):
    client = live.openai()
    listed = [m.id for m in client.models.list()]
    model = client.models.retrieve(listed[0])
    assert (model.id, model.object) == (listed[0], "model")
    assert model.owned_by


def test_anthropic_models_retrieve_uses_the_anthropic_shape(live):
    info = live.anthropic().models.retrieve("claude-sonnet-4-5")
    assert (info.id, info.type) == ("claude-sonnet-4-5", "model")


def test_models_retrieve_of_a_model_the_key_cannot_call_is_a_404_naming_its_groups(live):
    client = live.openai()
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("sora-2")  # a video model: only in Sora2Official, not on the demo key
    error = caught.value.body
    assert error["code"] == "model_not_found"
    assert "'sora-2'" in error["message"]
    assert "ClaudeCode, Default" in error["message"]  # the demo key's select and fallback group


def test_beta_query_is_passed_on_to_anthropic_channels(live):
    """Claude Code calls `/v1/messages?beta=true`; Anthropic channels must see the same query."""
    live.anthropic().messages.create(
        model="claude-sonnet-4-5",
        max_tokens=16,
        messages=[{"role": "user", "content": "hi"}],
        extra_query={"beta": "true"},
    )
    seen = live.sim.requests("claude-aws") + live.sim.requests("claude-official")
    assert seen, "the call reached no Anthropic upstream"
    assert seen[-1]["query"].get("beta") == "true"


def test_beta_query_is_not_sent_to_openai_channels(live):
    live.anthropic().messages.create(
        model="deepseek-v4",
        max_tokens=16,
        messages=[{"role": "user", "content": "hi"}],
        extra_query={"beta": "true"},
    )
    seen = live.sim.requests("domestic")
    assert seen, "the call reached no OpenAI-format upstream"
    assert all("beta" not in r["query"] for r in seen)
