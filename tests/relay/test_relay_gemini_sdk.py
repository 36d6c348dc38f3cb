"""The official google-genai SDK (and raw HTTP for `?key=`) against the live relay's /v1beta."""

from decimal import Decimal

import pytest
import requests
from google import genai
from google.genai import errors, types

from apiyi_admin.demo import USD_CNY_RATE
from relay.errors import SATURATED_MESSAGE
from tests.relay.test_relay_openai_sdk import expected_cost

pytestmark = [pytest.mark.live]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# gemini-2.5-flash-image is priced per call: $0.039 × the demo rate × 1.0 (Default)
FLASH_IMAGE_CALL_MICRO = int(Decimal("0.039") * Decimal(USD_CNY_RATE) * 1_000_000)


def gemini(live, key: str | None = None) -> genai.Client:
    return genai.Client(
        api_key=key or live.key,
        http_options=types.HttpOptions(base_url=live.url, api_version="v1beta", timeout=30_000),
    )


def request_id(response) -> str:
    return response.sdk_http_response.headers["x-request-id"]


def test_generate_content_through_an_anthropic_channel_billed_as_chat(live, reconciled):
    client = gemini(live)
    response = client.models.generate_content(
        model="claude-sonnet-4-5",
        contents="hello there",
        config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=64),
    )
    assert "claude-official" in response.text  # the simulator names the channel that answered
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage.prompt_token_count > 0 and usage.candidates_token_count > 0
    rec = live.record(request_id(response))
    assert (rec.status, rec.api_format, rec.group_name) == ("success", "gemini", "ClaudeCode")
    assert rec.output_tokens == usage.candidates_token_count
    assert rec.cost_micro == expected_cost("claude-sonnet-4-5", rec, "0.95") > 0


def test_generate_content_stream_text_and_usage(live, reconciled):
    client = gemini(live)
    chunks = list(client.models.generate_content_stream(model="gpt-5.1", contents="count to three, slowly"))
    text = "".join(c.text or "" for c in chunks)
    assert len(chunks) > 1 and "openai-official" in text
    usage = chunks[-1].usage_metadata
    assert usage.prompt_token_count > 0 and usage.candidates_token_count > 0
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    rec = live.settled(request_id(chunks[0]))
    assert (rec.status, rec.stream, rec.group_name, rec.usage_estimated) == (
        "success",
        True,
        "Default",
        False,
    )
    assert rec.output_tokens == usage.candidates_token_count
    assert rec.cost_micro == expected_cost("gpt-5.1", rec, "1.0") > 0


def test_image_model_returns_an_inline_png_billed_per_call(live, reconciled):
    client = gemini(live)
    response = client.models.generate_content(
        model="gemini-2.5-flash-image",
        contents="a red fox in the snow",
        config=types.GenerateContentConfig(response_modalities=["IMAGE", "TEXT"]),
    )
    images = [p.inline_data for p in response.candidates[0].content.parts if p.inline_data]
    assert len(images) == 1
    assert images[0].mime_type == "image/png" and images[0].data.startswith(PNG_SIGNATURE)
    rec = live.record(request_id(response))
    assert (rec.status, rec.billing_basis, rec.images, rec.group_name) == ("success", "call", 1, "Default")
    assert rec.cost_micro == FLASH_IMAGE_CALL_MICRO


def test_image_model_streamed_is_one_event_with_the_image(live, reconciled):
    client = gemini(live)
    chunks = list(
        client.models.generate_content_stream(model="gemini-3-pro-image-preview", contents="a lighthouse")
    )
    parts = [p for c in chunks for p in c.candidates[0].content.parts]
    assert any(p.inline_data and p.inline_data.data.startswith(PNG_SIGNATURE) for p in parts)
    rec = live.settled(request_id(chunks[0]))
    assert rec.cost_micro == int(Decimal("0.134") * Decimal(USD_CNY_RATE) * 1_000_000)


def test_count_tokens_is_free_and_checks_the_model(live):
    client = gemini(live)
    short = client.models.count_tokens(model="gpt-5.1", contents="hi").total_tokens
    long = client.models.count_tokens(model="gpt-5.1", contents="hello there " * 200).total_tokens
    assert 0 < short < long
    assert live.sim.stats() == {}, "counting tokens calls no upstream"
    with pytest.raises(errors.ClientError) as caught:
        client.models.count_tokens(model="no-such-model", contents="hi")
    assert caught.value.code == 404


def test_models_list_and_get_show_what_the_key_can_call(live):
    client = gemini(live)
    names = [m.name for m in client.models.list()]
    assert {"models/gpt-5.1", "models/claude-sonnet-4-5", "models/gemini-2.5-flash-image"} <= set(names)
    assert "models/sora-2" not in names  # Sora2Official is not among the demo token's groups
    assert "models/veo-3.1" not in names  # video: not served through generateContent
    model = client.models.get(model="gemini-2.5-flash-image")
    assert model.name == "models/gemini-2.5-flash-image"
    assert "generateContent" in model.supported_actions
    with pytest.raises(errors.ClientError) as caught:
        client.models.get(model="sora-2")
    assert caught.value.code == 404 and "ClaudeCode, Default" in caught.value.message


def test_unknown_model_is_a_gemini_404_naming_the_groups(live):
    client = gemini(live)
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="no-such-model", contents="hi")
    assert caught.value.code == 404
    error = caught.value.details["error"]
    assert (error["code"], error["status"]) == (404, "NOT_FOUND")
    assert "'no-such-model'" in error["message"] and "ClaudeCode, Default" in error["message"]


def test_bad_key_is_a_gemini_401(live):
    client = gemini(live, key="sk-not-a-real-key")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gpt-5.1", contents="hi")
    assert caught.value.code == 401 and caught.value.status == "UNAUTHENTICATED"


def _url(live, model: str, action: str = "generateContent") -> str:
    return f"{live.url}/v1beta/models/{model}:{action}"


HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


def test_key_in_the_query_string_and_in_x_goog_api_key(live, reconciled):
    by_query = requests.post(_url(live, "gpt-5.1"), params={"key": live.key}, json=HELLO, timeout=30)
    assert by_query.status_code == 200
    assert by_query.json()["candidates"][0]["content"]["parts"][0]["text"]
    by_header = requests.post(
        _url(live, "gpt-5.1"), headers={"x-goog-api-key": live.key}, json=HELLO, timeout=30
    )
    assert by_header.status_code == 200
    by_bearer = requests.post(
        _url(live, "gpt-5.1"), headers={"Authorization": f"Bearer {live.key}"}, json=HELLO, timeout=30
    )
    assert by_bearer.status_code == 200
    missing = requests.post(_url(live, "gpt-5.1"), json=HELLO, timeout=30)
    assert missing.status_code == 401
    assert missing.json()["error"]["status"] == "UNAUTHENTICATED"
    assert "x-goog-api-key" in missing.json()["error"]["message"]


def test_stream_without_alt_sse_is_one_json_array(live, reconciled):
    resp = requests.post(
        _url(live, "gpt-5.1", "streamGenerateContent"), params={"key": live.key}, json=HELLO, timeout=30
    )
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    chunks = resp.json()
    assert isinstance(chunks, list) and "usageMetadata" in chunks[-1]
    sse = requests.post(
        _url(live, "gpt-5.1", "streamGenerateContent"),
        params={"key": live.key, "alt": "sse"},
        json=HELLO,
        timeout=30,
    )
    assert sse.headers["content-type"].startswith("text/event-stream")
    assert sse.text.startswith("data: {")


def test_refusals_are_gemini_shaped(live, reconciled):
    headers = {"x-goog-api-key": live.key}
    unsafe = dict(
        HELLO, safetySettings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_LOW_AND_ABOVE"}]
    )
    resp = requests.post(_url(live, "gpt-5.1"), headers=headers, json=unsafe, timeout=30)
    assert resp.status_code == 400
    assert resp.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "safetySettings[0].threshold" in resp.json()["error"]["message"]
    resp = requests.post(_url(live, "gpt-5.1"), headers=headers, data=b"{not json", timeout=30)
    assert (resp.status_code, resp.json()["error"]["code"]) == (400, 400)
    poor = live.make_key(balance_yuan=0.001)
    resp = requests.post(
        _url(live, "claude-sonnet-4-5"), headers={"x-goog-api-key": poor}, json=HELLO, timeout=30
    )
    assert resp.status_code == 402
    assert resp.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert live.sim.stats().get("claude-official") is None, "no upstream call before the hold"


def test_saturated_is_a_gemini_429_with_retry_after(live, reconciled):
    live.sim.configure(upstream="claude-official", error="429", retry_after_s=7)
    live.sim.configure(upstream="claude-aws", error="429", retry_after_s=9)
    key = live.make_key(select="ClaudeCode")
    client = gemini(live, key=key)
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="claude-sonnet-4-5", contents="hi")
    assert caught.value.code == 429
    assert caught.value.details["error"] == {
        "code": 429,
        "message": SATURATED_MESSAGE,
        "status": "RESOURCE_EXHAUSTED",
    }
    assert int(caught.value.response.headers["retry-after"]) >= 7


def test_unknown_paths_under_v1beta_answer_gemini_json(live):
    headers = {"x-goog-api-key": live.key}
    for path in (
        "/v1beta/files",
        "/v1beta/models/gpt-5.1:embedContent",
        "/v1beta",
        "/v1beta/cachedContents/x",
    ):
        resp = requests.post(f"{live.url}{path}", headers=headers, json={}, timeout=30)
        assert resp.status_code == 404, path
        assert resp.headers["content-type"] == "application/json"
        assert resp.json()["error"]["status"] == "NOT_FOUND"
    anonymous = requests.get(f"{live.url}/v1beta/nothing-here", timeout=30)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["status"] == "UNAUTHENTICATED"


def test_image_options_reach_the_upstream_or_are_refused(live, reconciled):
    client = gemini(live)
    response = client.models.generate_content(
        model="gemini-2.5-flash-image",
        contents="two foxes",
        config=types.GenerateContentConfig(
            candidate_count=2, image_config=types.ImageConfig(aspect_ratio="16:9")
        ),
    )
    parts = response.candidates[0].content.parts
    assert sum(1 for p in parts if p.inline_data) == 2
    sent = live.sim.requests("openai-official")[-1]["body"]
    assert (sent["size"], sent["n"]) == ("1792x1024", 2)
    rec = live.record(request_id(response))
    assert (rec.images, rec.cost_micro) == (2, 2 * FLASH_IMAGE_CALL_MICRO)
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(
            model="gemini-2.5-flash-image",
            contents="a fox",
            config=types.GenerateContentConfig(image_config=types.ImageConfig(image_size="4K")),
        )
    assert caught.value.code == 400 and "imageConfig.imageSize" in caught.value.message


def test_image_model_refuses_temperature_and_takes_snake_case(live, reconciled):
    headers = {"x-goog-api-key": live.key}
    body = dict(HELLO, generation_config={"temperature": 0.5})
    resp = requests.post(_url(live, "gemini-2.5-flash-image"), headers=headers, json=body, timeout=30)
    assert resp.status_code == 400 and "temperature" in resp.json()["error"]["message"]
    body = dict(HELLO, generation_config={"image_config": {"aspect_ratio": "9:16"}})
    resp = requests.post(_url(live, "gemini-2.5-flash-image"), headers=headers, json=body, timeout=30)
    assert resp.status_code == 200
    assert live.sim.requests("openai-official")[-1]["body"]["size"] == "1024x1792"


def test_stream_cut_midway_ends_with_a_gemini_error_and_is_billed_partial(live, reconciled):
    live.sim.configure(upstream="*", error="cut_stream", output_tokens=200)
    resp = requests.post(
        _url(live, "claude-sonnet-4-5", "streamGenerateContent"),
        params={"key": live.key, "alt": "sse"},
        json={
            "contents": [{"parts": [{"text": "write a long story"}]}],
            "generationConfig": {"maxOutputTokens": 400},
        },
        timeout=30,
    )
    events = [line for line in resp.text.splitlines() if line.startswith("data: ")]
    assert len(events) > 2 and '"text":"' in events[0]
    assert events[-1].startswith('data: {"error"')
    assert '"status":"UNAVAILABLE"' in events[-1]
    rec = live.settled(resp.headers["X-Request-Id"])
    assert rec.status == "partial" and rec.cost_micro > 0
