"""The simulator's Gemini API face as the google-genai SDK (and raw HTTP) sees it, with the fault rules."""

import json

import pytest
import requests
from google import genai
from google.genai import errors, types

UPSTREAM = "gem"
KEY = f"sim-{UPSTREAM}-key"


def client(sim, key=KEY) -> genai.Client:
    return genai.Client(
        api_key=key,
        http_options=types.HttpOptions(
            base_url=f"{sim.url}/u/{UPSTREAM}", api_version="v1beta", timeout=10_000
        ),
    )


def post(sim, action: str, body: dict, *, model="gemini-2.5-flash", query="", key=KEY):
    return requests.post(
        f"{sim.url}/u/{UPSTREAM}/v1beta/models/{model}:{action}{query}",
        json=body,
        headers={"x-goog-api-key": key} if key else {},
        timeout=10,
    )


HI = {"contents": [{"role": "user", "parts": [{"text": "hello gemini simulator"}]}]}


def test_generate_content_with_default_thinking_billed_but_hidden(simulator):
    c = client(simulator)
    response = c.models.generate_content(model="gemini-2.5-flash", contents="hello gemini simulator")
    assert "Hello from gem (gemini-2.5-flash)" in response.text
    assert [p.thought for p in response.candidates[0].content.parts] == [None]
    usage = response.usage_metadata
    assert usage.thoughts_token_count > 0 and usage.candidates_token_count == (len(response.text) + 3) // 4
    assert (
        usage.total_token_count
        == usage.prompt_token_count + usage.candidates_token_count + usage.thoughts_token_count
    )
    shown = c.models.generate_content(
        model="gemini-2.5-flash",
        contents="hi",
        config=types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True)),
    )
    assert [bool(p.thought) for p in shown.candidates[0].content.parts] == [True, False]
    off = c.models.generate_content(
        model="gemini-2.5-flash",
        contents="hi",
        config=types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=0)),
    )
    assert not off.usage_metadata.thoughts_token_count
    sent = simulator.requests(UPSTREAM)[-1]
    assert sent["path"] == "/u/gem/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent["headers"]["x-goog-api-key"] == "<redacted>"


def test_streaming_sse_and_json_array(simulator):
    c = client(simulator)
    chunks = list(c.models.generate_content_stream(model="gemini-2.5-flash", contents="one two three four"))
    assert len(chunks) > 2 and "one two three four" in "".join(c.text or "" for c in chunks)
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].usage_metadata.candidates_token_count > 0
    raw = post(simulator, "streamGenerateContent", HI, query="?alt=sse")
    assert raw.headers["Content-Type"].startswith("text/event-stream") and "\r\n\r\n" in raw.text
    array = post(simulator, "streamGenerateContent", HI).json()
    assert isinstance(array, list) and array[-1]["candidates"][0]["finishReason"] == "STOP"


def test_function_calls_then_a_text_answer(simulator):
    c = client(simulator)
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="get_weather",
                parameters=types.Schema(
                    type="OBJECT",
                    properties={
                        "city": types.Schema(type="STRING"),
                        "unit": types.Schema(type="STRING", enum=["c", "f"]),
                    },
                    required=["city", "unit"],
                ),
            )
        ]
    )
    config = types.GenerateContentConfig(
        tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    first = c.models.generate_content(model="gemini-2.5-flash", contents="weather in Paris", config=config)
    call = first.function_calls[0]
    assert (call.name, call.args) == ("get_weather", {"city": "weather in Paris", "unit": "c"})
    history = [
        types.Content(role="user", parts=[types.Part(text="weather in Paris")]),
        first.candidates[0].content,
        types.Content(
            role="user", parts=[types.Part.from_function_response(name="get_weather", response={"t": 20})]
        ),
    ]
    second = c.models.generate_content(model="gemini-2.5-flash", contents=history, config=config)
    assert second.text and not second.function_calls
    none = c.models.generate_content(
        model="gemini-2.5-flash",
        contents="weather in Paris",
        config=types.GenerateContentConfig(
            tools=[tool],
            tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="NONE")),
        ),
    )
    assert not none.function_calls


def test_gemini_3_refuses_a_function_call_without_a_thought_signature(simulator):
    history = {
        "contents": [
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]},
        ]
    }
    refused = post(simulator, "generateContent", history, model="gemini-3-pro-preview")
    assert refused.status_code == 400 and "thought_signature" in refused.json()["error"]["message"]
    history["contents"][1]["parts"][0]["thoughtSignature"] = "skip_thought_signature_validator"
    assert post(simulator, "generateContent", history, model="gemini-3-pro-preview").status_code == 200


@pytest.mark.parametrize("field", ["responseSchema", "responseJsonSchema"])
def test_structured_output_matches_the_schema(simulator, field):
    schema = {
        "type": "OBJECT",
        "properties": {"n": {"type": "INTEGER"}, "ok": {"type": "BOOLEAN"}},
        "required": ["n", "ok"],
    }
    if field == "responseJsonSchema":
        schema = json.loads(json.dumps(schema).lower())
    body = dict(HI, generationConfig={"responseMimeType": "application/json", field: schema})
    text = post(simulator, "generateContent", body).json()["candidates"][0]["content"]["parts"][0]["text"]
    assert json.loads(text) == {"n": 1, "ok": True}
    bad = post(simulator, "generateContent", dict(HI, generationConfig={field: schema}))
    assert bad.status_code == 400 and bad.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_google_shaped_refusals(simulator):
    wrong = post(simulator, "generateContent", HI, key="nope").json()["error"]
    assert (wrong["code"], wrong["details"][0]["reason"]) == (400, "API_KEY_INVALID")
    assert post(simulator, "generateContent", HI, key=None).status_code == 403
    assert requests.post(
        f"{simulator.url}/u/{UPSTREAM}/v1beta/models/gemini-2.5-flash:generateContent?key={KEY}",
        json=HI,
        timeout=10,
    ).ok
    unknown = post(simulator, "generateContent", dict(HI, frobnicate=1)).json()["error"]
    assert unknown["status"] == "INVALID_ARGUMENT" and "frobnicate" in unknown["message"]
    assert post(simulator, "embedContent", HI).status_code == 404
    bad_key = client(simulator, key="nope")
    with pytest.raises(errors.ClientError) as err:
        bad_key.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert err.value.code == 400


def test_rate_limit_and_server_errors(simulator):
    simulator.configure(upstream=UPSTREAM, error="429", retry_after_s=9)
    limited = post(simulator, "generateContent", HI)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "9"
    error = limited.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED" and error["details"][0]["retryDelay"] == "9s"
    simulator.configure(upstream=UPSTREAM, error="503")
    assert post(simulator, "generateContent", HI).json()["error"]["status"] == "UNAVAILABLE"
    simulator.configure(upstream=UPSTREAM, max_concurrency=1, latency_ms=0)
    assert post(simulator, "generateContent", HI).ok


def test_broken_streams(simulator):
    simulator.configure(upstream=UPSTREAM, error="stream_error")
    events = post(simulator, "streamGenerateContent", HI, query="?alt=sse").text.split("\r\n\r\n")
    assert '"UNAVAILABLE"' in [e for e in events if e][-1]
    simulator.configure(upstream=UPSTREAM, error="garbage")
    assert (
        '{"candidates": [{"conte\r\n' in post(simulator, "streamGenerateContent", HI, query="?alt=sse").text
    )
    with pytest.raises(requests.exceptions.JSONDecodeError):
        post(simulator, "generateContent", HI).json()
    simulator.configure(upstream=UPSTREAM, error="cut_stream")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        post(simulator, "streamGenerateContent", HI, query="?alt=sse").text  # noqa: B018
    assert simulator.stats()[UPSTREAM]["status"]["cut"] >= 1


def test_implicit_caching_and_image_models(simulator):
    long = "lorem ipsum " * 400
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": long}]},
            {"role": "model", "parts": [{"text": "ok"}]},
            {"role": "user", "parts": [{"text": "again"}]},
        ]
    }
    first = post(simulator, "generateContent", body).json()["usageMetadata"]
    second = post(simulator, "generateContent", body).json()["usageMetadata"]
    assert "cachedContentTokenCount" not in first and second["cachedContentTokenCount"] >= 1024
    c = client(simulator)
    image = c.models.generate_content(model="gemini-2.5-flash-image", contents="a red fox")
    parts = image.candidates[0].content.parts
    assert parts[1].inline_data.mime_type == "image/png" and parts[1].inline_data.data.startswith(b"\x89PNG")
    assert (
        client(simulator).models.count_tokens(model="gemini-2.5-flash", contents="abcdefgh").total_tokens == 2
    )
