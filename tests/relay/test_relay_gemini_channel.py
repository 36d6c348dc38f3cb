"""A Gemini API channel (kind `gemini`) behind the live relay: every client format reaches it.

The demo's `gemini-official` channel serves gemini-2.5-flash and gemini-3-pro-preview in the
Default group from the simulator's Gemini face; the demo key reaches Default as its fallback.
OpenAI and Anthropic clients are converted to generateContent, Gemini-native ones pass through.
"""

from decimal import ROUND_HALF_UP, Decimal

import anthropic
import openai
import orjson
import pytest
from google.genai import errors as genai_errors
from google.genai import types

from apiyi_admin.demo import USD_CNY_RATE
from tests.relay.test_relay_gemini_sdk import gemini, request_id

pytestmark = [pytest.mark.live]

FLASH = "gemini-2.5-flash"
PRO = "gemini-3-pro-preview"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def flash_cost_micro(prompt: int, cached: int, output: int) -> int:
    """gemini-2.5-flash in Default (×1.0): $0.30 / $0.03 cached / $2.50 per million tokens, ¥7 a dollar."""
    usd = (
        Decimal(prompt - cached) * Decimal("0.3") + cached * Decimal("0.03") + output * Decimal("2.5")
    ) / 10**6
    return int((usd * USD_CNY_RATE * 10**6).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def upstream_requests(live) -> list[dict]:
    return live.sim.requests("gemini-official")


def test_openai_chat_non_stream_is_generate_content_billed_from_usage_metadata(live, reconciled):
    client = live.openai()
    raw = client.chat.completions.with_raw_response.create(
        model=FLASH,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello gemini"}],
        max_tokens=200,
        temperature=0.5,
    )
    answer = raw.parse()
    assert "gemini-official" in answer.choices[0].message.content
    assert answer.model == FLASH and answer.choices[0].finish_reason == "stop"
    sent = upstream_requests(live)[-1]
    assert sent["path"] == f"/u/gemini-official/v1beta/models/{FLASH}:generateContent"
    assert sent["headers"]["x-goog-api-key"] == "<redacted>" and "authorization" not in sent["headers"]
    assert "model" not in sent["body"]
    assert sent["body"]["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["body"]["contents"] == [{"role": "user", "parts": [{"text": "hello gemini"}]}]
    assert sent["body"]["generationConfig"] == {"temperature": 0.5, "maxOutputTokens": 200}
    usage = answer.usage
    reasoning = usage.completion_tokens_details.reasoning_tokens
    assert reasoning > 0  # gemini-2.5-flash thinks by default: thoughts are billed as output
    rec = live.record(raw.headers["x-request-id"])
    assert (rec.status, rec.group_name, rec.channel_name, rec.usage_estimated) == (
        "success",
        "Default",
        "gemini-official",
        False,
    )
    assert (rec.input_tokens, rec.output_tokens) == (usage.prompt_tokens, usage.completion_tokens)
    assert rec.cost_micro == flash_cost_micro(usage.prompt_tokens, 0, usage.completion_tokens) > 0


def test_openai_chat_stream_with_usage_and_reasoning(live, reconciled):
    client = live.openai()
    stream = client.chat.completions.create(
        model=FLASH,
        messages=[{"role": "user", "content": "count to three, slowly please"}],
        stream=True,
        stream_options={"include_usage": True},
        reasoning_effort="low",
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    assert "gemini-official" in text and "characters" in reasoning
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage.completion_tokens_details.reasoning_tokens > 0
    sent = upstream_requests(live)[-1]
    assert sent["path"].endswith(f"/models/{FLASH}:streamGenerateContent") and sent["query"] == {"alt": "sse"}
    assert sent["body"]["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 4096,
        "includeThoughts": True,
    }
    rec = live.settled(chunks[0].id and stream.response.headers["x-request-id"])
    assert (rec.status, rec.stream, rec.usage_estimated) == ("success", True, False)
    assert rec.output_tokens == usage.completion_tokens
    assert rec.cost_micro == flash_cost_micro(usage.prompt_tokens, 0, usage.completion_tokens)


def test_openai_tools_round_trip_on_gemini_3_with_thought_signatures(live, reconciled):
    """Gemini 3 refuses a function call in history without a thought signature: the relay adds Google's
    documented placeholder, and the tool result becomes a functionResponse naming the function."""
    client = live.openai()
    messages = [{"role": "user", "content": "weather in Paris"}]
    first = client.chat.completions.create(
        model=PRO, messages=messages, tools=[WEATHER], tool_choice="required"
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and orjson.loads(call.function.arguments) == {
        "city": "weather in Paris"
    }
    sent = upstream_requests(live)[-1]["body"]
    assert sent["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather of a city",
                    "parametersJsonSchema": WEATHER["function"]["parameters"],
                }
            ]
        }
    ]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
    ]
    second = client.chat.completions.create(model=PRO, messages=messages, tools=[WEATHER])
    assert "gemini-official" in second.choices[0].message.content
    contents = upstream_requests(live)[-1]["body"]["contents"]
    assert contents[1]["role"] == "model" and contents[1]["parts"][0]["thoughtSignature"]
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}],
    }


def test_openai_stream_tool_call(live, reconciled):
    chunks = list(
        live.openai().chat.completions.create(
            model=FLASH,
            messages=[{"role": "user", "content": "weather in Oslo"}],
            tools=[WEATHER],
            stream=True,
        )
    )
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert len(calls) == 1 and calls[0].function.name == "get_weather" and calls[0].id
    assert orjson.loads(calls[0].function.arguments) == {"city": "weather in Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_structured_output_becomes_response_json_schema(live, reconciled):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    }
    answer = live.openai().chat.completions.create(
        model=FLASH,
        messages=[{"role": "user", "content": "plan a trip to Rome"}],
        response_format={"type": "json_schema", "json_schema": {"name": "trip", "schema": schema}},
    )
    data = orjson.loads(answer.choices[0].message.content)
    assert set(data) == {"city", "days"} and isinstance(data["days"], int)
    config = upstream_requests(live)[-1]["body"]["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}


def test_what_gemini_cannot_carry_is_a_400_naming_the_field(live):
    client = live.openai()
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=FLASH,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    ],
                }
            ],
        )
    assert "messages[0].content[1].image_url.url" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model=FLASH, messages=[{"role": "user", "content": "hi"}], logit_bias={"1": 5}
        )
    assert "logit_bias" in err.value.message


def test_inline_image_reaches_gemini_as_inline_data(live, reconciled):
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    live.openai().chat.completions.create(
        model=FLASH,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            }
        ],
    )
    parts = upstream_requests(live)[-1]["body"]["contents"][0]["parts"]
    assert parts == [{"text": "describe"}, {"inlineData": {"mimeType": "image/png", "data": png}}]


def test_upstream_rate_limit_is_a_429_with_retry_after(live):
    live.sim.configure(upstream="gemini-official", error="429", retry_after_s=7)
    with pytest.raises(openai.RateLimitError) as err:
        live.openai().chat.completions.create(model=FLASH, messages=[{"role": "user", "content": "hi"}])
    assert int(err.value.response.headers["retry-after"]) >= 1
    assert upstream_requests(live)[-1]["status"] == "429"


def test_anthropic_messages_non_stream_and_stream(live, reconciled):
    client = live.anthropic()
    message = client.messages.create(
        model=FLASH,
        max_tokens=256,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello from claude sdk"}],
        thinking={"type": "enabled", "budget_tokens": 2048},
    )
    kinds = [b.type for b in message.content]
    assert kinds == ["thinking", "text"] and "gemini-official" in message.content[1].text
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    sent = upstream_requests(live)[-1]["body"]
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["generationConfig"]["thinkingConfig"]["includeThoughts"] is True
    rec = live.record(message._request_id)
    assert (rec.api_format, rec.channel_name, rec.output_tokens) == (
        "anthropic",
        "gemini-official",
        message.usage.output_tokens,
    )
    with client.messages.stream(
        model=FLASH, max_tokens=256, messages=[{"role": "user", "content": "stream it"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "gemini-official" in text and final.usage.output_tokens > 0
    assert final.usage.input_tokens > 0


def test_anthropic_tool_use_on_gemini(live, reconciled):
    message = live.anthropic().messages.create(
        model=FLASH,
        max_tokens=256,
        tools=[{"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "weather in Lima"}],
    )
    tool = [b for b in message.content if b.type == "tool_use"][0]
    assert (
        message.stop_reason == "tool_use"
        and tool.name == "get_weather"
        and tool.input == {"city": "weather in Lima"}
    )


def test_anthropic_refusal_names_the_field(live):
    with pytest.raises(anthropic.BadRequestError) as err:
        live.anthropic().messages.create(
            model=FLASH,
            max_tokens=64,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
                    ],
                }
            ],
        )
    assert "image_url.url" in str(err.value)


def test_google_genai_passes_through_with_thoughts_and_usage(live, reconciled):
    client = gemini(live)
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024),
        max_output_tokens=300,
    )
    response = client.models.generate_content(model=FLASH, contents="native hello", config=config)
    parts = response.candidates[0].content.parts
    assert [bool(p.thought) for p in parts] == [True, False] and "gemini-official" in parts[1].text
    assert response.model_version == FLASH
    usage = response.usage_metadata
    sent = upstream_requests(live)[-1]
    assert sent["path"].endswith(f"/models/{FLASH}:generateContent")
    assert sent["body"]["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True,
        "thinkingBudget": 1024,
    }
    rec = live.record(request_id(response))
    assert (rec.api_format, rec.channel_name) == ("gemini", "gemini-official")
    output = usage.candidates_token_count + usage.thoughts_token_count
    assert (rec.input_tokens, rec.output_tokens) == (usage.prompt_token_count, output)
    assert rec.cost_micro == flash_cost_micro(usage.prompt_token_count, 0, output)


def test_google_genai_stream_and_function_call_pass_through(live, reconciled):
    client = gemini(live)
    chunks = list(client.models.generate_content_stream(model=FLASH, contents="stream natively please"))
    assert len(chunks) > 1 and "gemini-official" in "".join(c.text or "" for c in chunks)
    usage = chunks[-1].usage_metadata
    rec = live.settled(request_id(chunks[0]))
    assert (rec.status, rec.stream, rec.usage_estimated) == ("success", True, False)
    assert rec.output_tokens == usage.candidates_token_count + usage.thoughts_token_count
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="get_weather",
                parameters=types.Schema(
                    type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]
                ),
            )
        ]
    )
    response = client.models.generate_content(
        model=FLASH, contents="weather in Kyoto", config=types.GenerateContentConfig(tools=[tool])
    )
    assert response.function_calls[0].name == "get_weather"
    assert response.function_calls[0].args == {"city": "weather in Kyoto"}
    assert response.candidates[0].content.parts[0].thought_signature  # Gemini's own, kept for the next turn


def test_google_genai_sees_gemini_errors(live):
    live.sim.configure(upstream="gemini-official", error="500")
    client = gemini(live)
    with pytest.raises(genai_errors.ServerError) as err:
        client.models.generate_content(model=FLASH, contents="hi")
    assert err.value.code == 502 and err.value.status == "UNAVAILABLE"
