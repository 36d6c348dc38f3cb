"""`models.retrieve` of both SDKs against the live relay: only models the key can call."""

import openai
import pytest

pytestmark = [pytest.mark.live]


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
