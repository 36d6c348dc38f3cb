"""Cross-format conversion through the live relay with the official SDKs (issue 12).

OpenAI clients on Claude models (Anthropic channels) and Anthropic clients on OpenAI-format
models (deepseek-v4): structured output, reasoning/thinking and refused fields, checked both
in what the client gets and in what the simulated upstream received."""

import anthropic
import openai
import orjson
import pytest
from pydantic import BaseModel

pytestmark = [pytest.mark.live]

CLAUDE = "claude-sonnet-4-5"
DOMESTIC = "deepseek-v4"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
ASK = [{"role": "user", "content": "Name a big city and its population."}]


def claude_bodies(live) -> list[dict]:
    """Bodies the Anthropic channels received (the planner may pick either)."""
    return [r["body"] for u in ("claude-official", "claude-aws") for r in live.sim.requests(u)]


def domestic_bodies(live) -> list[dict]:
    return [r["body"] for r in live.sim.requests("domestic") if r["path"].endswith("/chat/completions")]


class City(BaseModel):
    city: str
    population: int


def test_openai_json_schema_on_a_claude_model_gives_matching_json(live):
    completion = live.openai().chat.completions.create(
        model=CLAUDE,
        messages=ASK,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}},
    )
    answer = orjson.loads(completion.choices[0].message.content)
    assert set(SCHEMA["required"]) <= answer.keys()
    assert isinstance(answer["population"], int)
    (sent,) = claude_bodies(live)
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}


def test_openai_json_object_on_a_claude_model_gives_a_json_object(live):
    completion = live.openai().chat.completions.create(
        model=CLAUDE, messages=ASK, response_format={"type": "json_object"}
    )
    assert isinstance(orjson.loads(completion.choices[0].message.content), dict)
    assert completion.choices[0].finish_reason == "stop"
    assert not completion.choices[0].message.tool_calls, "the carrier tool must not leak to the client"


def test_openai_parse_with_a_pydantic_model_on_a_claude_model(live):
    completion = live.openai().chat.completions.parse(model=CLAUDE, messages=ASK, response_format=City)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, City)
    assert parsed.city


@pytest.mark.parametrize("stream", [False, True])
def test_openai_reasoning_effort_becomes_anthropic_thinking_and_comes_back(live, stream):
    client = live.openai()
    kwargs = {"model": CLAUDE, "messages": ASK, "reasoning_effort": "high"}
    if stream:
        chunks = list(client.chat.completions.create(**kwargs, stream=True))
        deltas = [c.choices[0].delta for c in chunks if c.choices]
        reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
        text = "".join(d.content or "" for d in deltas)
    else:
        message = client.chat.completions.create(**kwargs).choices[0].message
        reasoning, text = getattr(message, "reasoning_content", None), message.content
    assert reasoning, "Claude's thinking must come back as reasoning_content"
    assert text and reasoning not in text
    (sent,) = claude_bodies(live)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 32768}
    assert sent["max_tokens"] > sent["thinking"]["budget_tokens"]


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_thinking_on_an_openai_format_model_gives_a_thinking_block(live, stream):
    client = live.anthropic()
    kwargs = {
        "model": DOMESTIC,
        "max_tokens": 20000,
        "messages": ASK,
        "thinking": {"type": "enabled", "budget_tokens": 16000},
    }
    if stream:
        with client.messages.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    kinds = [b.type for b in message.content]
    assert kinds[0] == "thinking" and "text" in kinds
    assert message.content[0].thinking
    (sent,) = domestic_bodies(live)
    assert sent["reasoning_effort"] == "medium"


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_thinking_display_omitted_keeps_the_reasoning_out(live, stream):
    """Claude Code sends `thinking: {"type": "adaptive", "display": "omitted"}`."""
    client = live.anthropic()
    kwargs = {
        "model": DOMESTIC,
        "max_tokens": 2048,
        "messages": ASK,
        "thinking": {"type": "adaptive", "display": "omitted"},
    }
    if stream:
        with client.messages.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert [b.type for b in message.content] == ["text"] and message.content[0].text
    (sent,) = domestic_bodies(live)
    assert sent["reasoning_effort"] == "medium"  # the upstream still reasons


def test_anthropic_output_config_schema_on_an_openai_format_model_gives_json(live):
    message = live.anthropic().messages.create(
        model=DOMESTIC,
        max_tokens=512,
        messages=ASK,
        output_config={"format": {"type": "json_schema", "schema": SCHEMA}},
    )
    text = "".join(b.text for b in message.content if b.type == "text")
    assert set(SCHEMA["required"]) <= orjson.loads(text).keys()
    (sent,) = domestic_bodies(live)
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == SCHEMA


def test_anthropic_beta_output_format_on_an_openai_format_model_gives_json(live):
    message = live.anthropic().messages.create(
        model=DOMESTIC,
        max_tokens=512,
        messages=ASK,
        extra_body={"output_format": {"type": "json_schema", "schema": SCHEMA}},
    )
    text = "".join(b.text for b in message.content if b.type == "text")
    assert set(SCHEMA["required"]) <= orjson.loads(text).keys()


def test_openai_field_anthropic_cannot_carry_is_a_400_naming_it(live):
    with pytest.raises(openai.BadRequestError) as caught:
        live.openai().chat.completions.create(model=CLAUDE, messages=ASK, logprobs=True)
    assert "'logprobs'" in caught.value.message
    assert claude_bodies(live) == [], "a refused call reaches no upstream"


def test_anthropic_field_openai_cannot_carry_is_a_400_naming_it(live):
    with pytest.raises(anthropic.BadRequestError) as caught:
        live.anthropic().messages.create(
            model=DOMESTIC,
            max_tokens=64,
            messages=ASK,
            extra_body={"output_config": {"task_budget": 100}},
        )
    assert "output_config.task_budget" in str(caught.value)
    with pytest.raises(anthropic.BadRequestError, match="'top_k'"):  # sampling no OpenAI server shares
        live.anthropic().messages.create(model=DOMESTIC, max_tokens=64, messages=ASK, extra_body={"top_k": 5})
    assert domestic_bodies(live) == []


def gemini(live):
    from google import genai
    from google.genai import types

    return genai.Client(
        api_key=live.key,
        http_options=types.HttpOptions(base_url=live.url, api_version="v1beta", timeout=30_000),
    )


def test_gemini_response_schema_on_a_claude_model_gives_matching_json(live):
    from google.genai import types

    client = gemini(live)  # held: a client collected mid-call closes its connection pool
    response = client.models.generate_content(
        model=CLAUDE,
        contents="Name a big city and its population.",
        config=types.GenerateContentConfig(response_mime_type="application/json", response_schema=City),
    )
    answer = orjson.loads(response.text)
    assert set(SCHEMA["required"]) <= answer.keys()
    assert isinstance(response.parsed, City)
    (sent,) = claude_bodies(live)
    assert sent["output_config"]["format"]["schema"]["required"] == ["city", "population"]


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_thinking_budget_on_a_claude_model_comes_back_as_thoughts(live, stream):
    from google.genai import types

    client = gemini(live)
    kwargs = {
        "model": CLAUDE,
        "contents": "Name a big city.",
        "config": types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_budget=8000, include_thoughts=True)
        ),
    }
    if stream:
        parts = [
            p for c in client.models.generate_content_stream(**kwargs) for p in c.candidates[0].content.parts
        ]
    else:
        parts = client.models.generate_content(**kwargs).candidates[0].content.parts
    thoughts = "".join(p.text for p in parts if p.thought)
    answer = "".join(p.text or "" for p in parts if not p.thought)
    assert thoughts and answer
    (sent,) = claude_bodies(live)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 16384}  # 8000 → medium


def test_gemini_field_that_cannot_be_carried_is_a_400_naming_it(live):
    from google.genai import errors, types

    client = gemini(live)
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(
            model=CLAUDE, contents="hi", config=types.GenerateContentConfig(response_logprobs=True)
        )
    assert caught.value.code == 400
    assert "generationConfig.responseLogprobs" in caught.value.message
    assert claude_bodies(live) == []


@pytest.mark.parametrize(
    "response_format",
    [{"type": "json_object"}, {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA}}],
)
def test_openai_structured_stream_on_a_claude_model_streams_json(live, response_format):
    chunks = list(
        live.openai().chat.completions.create(
            model=CLAUDE,
            messages=ASK,
            response_format=response_format,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    answer = orjson.loads("".join(d.content or "" for d in deltas))
    assert isinstance(answer, dict)
    assert not any(d.tool_calls for d in deltas)
    assert chunks[-1].usage.completion_tokens > 0


def test_anthropic_output_config_stream_on_an_openai_format_model_streams_json(live):
    with live.anthropic().messages.stream(
        model=DOMESTIC,
        max_tokens=512,
        messages=ASK,
        output_config={"format": {"type": "json_schema", "schema": SCHEMA}},
    ) as events:
        message = events.get_final_message()
    text = "".join(b.text for b in message.content if b.type == "text")
    assert set(SCHEMA["required"]) <= orjson.loads(text).keys()
    assert message.usage.output_tokens > 0


# ---------------------------------------------------------------- every field: carried, honoured or a 400


def test_openai_fields_with_an_anthropic_equivalent_are_carried(live):
    completion = live.openai().chat.completions.create(
        model=CLAUDE,
        messages=ASK,
        safety_identifier="end-user-7",
        service_tier="default",
        metadata={"run": "nightly"},  # tags stored completions only, and none are stored: honoured
        prompt_cache_key="session-1",  # a cache-routing hint: honoured
        store=False,
        verbosity="medium",
    )
    assert completion.choices[0].message.content
    (sent,) = claude_bodies(live)
    assert sent["metadata"] == {"user_id": "end-user-7"}
    assert sent["service_tier"] == "standard_only"
    assert not {"seed", "store", "verbosity", "prompt_cache_key", "safety_identifier"} & sent.keys()


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"seed": 7}, "'seed'"),
        ({"store": True}, "'store'"),
        ({"verbosity": "low"}, "'verbosity'"),
        ({"service_tier": "flex"}, "'service_tier'"),
        ({"extra_body": {"repetition_penalty": 1.1}}, "'repetition_penalty'"),
    ],
)
def test_openai_fields_anthropic_cannot_honour_are_a_400_naming_them(live, extra, field):
    with pytest.raises(openai.BadRequestError) as caught:
        live.openai().chat.completions.create(model=CLAUDE, messages=ASK, **extra)
    assert field in caught.value.message
    assert claude_bodies(live) == []


def test_anthropic_fields_with_an_openai_equivalent_are_carried(live):
    """What Claude Code sends a non-Claude model besides messages (captured from the CLI 2.1.x)."""
    message = live.anthropic().messages.create(
        model=DOMESTIC,
        max_tokens=256,
        messages=ASK,
        metadata={"user_id": '{"device_id":"d1","session_id":"s1"}'},
        service_tier="standard_only",
        extra_body={"context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}},
    )
    assert message.content[0].text
    (sent,) = domestic_bodies(live)
    assert sent["user"] == '{"device_id":"d1","session_id":"s1"}'
    assert sent["service_tier"] == "default"
    assert "context_management" not in sent and "metadata" not in sent


def test_anthropic_context_edits_keep_only_the_last_thinking_turns(live):
    history = []
    for n in range(3):
        history += [
            {"role": "user", "content": f"question {n}"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": f"thought {n}", "signature": "sig"},
                    {"type": "text", "text": f"answer {n}"},
                ],
            },
        ]
    live.anthropic().messages.create(
        model=DOMESTIC,
        max_tokens=256,
        messages=[*history, {"role": "user", "content": "and now?"}],
        extra_body={
            "context_management": {
                "edits": [{"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 1}}]
            }
        },
    )
    (sent,) = domestic_bodies(live)
    kept = [m.get("reasoning_content") for m in sent["messages"] if m["role"] == "assistant"]
    assert kept == [None, None, "thought 2"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (
            {"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}},
            "context_management.edits[0].type",
        ),
        ({"metadata": {"user_id": "u", "team": "x"}}, "metadata.team"),
        ({"service_tier": "priority"}, "'service_tier'"),
        ({"container": "container_1"}, "'container'"),
        ({"inference_speed": "fast"}, "'inference_speed'"),
    ],
)
def test_anthropic_fields_openai_cannot_honour_are_a_400_naming_them(live, extra, field):
    with pytest.raises(anthropic.BadRequestError) as caught:
        live.anthropic().messages.create(model=DOMESTIC, max_tokens=64, messages=ASK, extra_body=extra)
    assert field in str(caught.value)
    assert domestic_bodies(live) == []


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_thoughts_come_back_only_with_include_thoughts(live, stream):
    from google.genai import types

    client = gemini(live)

    def parts(include: bool | None) -> list:
        config = types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_budget=8000, include_thoughts=include)
        )
        kwargs = {"model": CLAUDE, "contents": "Name a big city.", "config": config}
        if stream:
            chunks = client.models.generate_content_stream(**kwargs)
            return [p for c in chunks for p in c.candidates[0].content.parts]
        return client.models.generate_content(**kwargs).candidates[0].content.parts

    for include in (False, None):  # Google's default is false
        hidden = parts(include)
        assert not any(p.thought for p in hidden)
        assert "".join(p.text or "" for p in hidden)
    shown = parts(True)
    assert any(p.thought and p.text for p in shown)
    assert all(b["thinking"]["type"] == "enabled" for b in claude_bodies(live))  # still asked to think


# ---------------------------------------------------------------- Responses: input_items, cancel, background


def test_responses_input_items_are_listed_and_paged_like_openai(live):
    client = live.openai()
    first = client.responses.create(model=CLAUDE, input="my name is Ada")
    second = client.responses.create(
        model=CLAUDE,
        previous_response_id=first.id,
        input=[
            {"role": "user", "content": "what is my name?"},
            {"role": "user", "content": [{"type": "input_text", "text": "answer in one word"}]},
        ],
    )
    items = list(client.responses.input_items.list(second.id, order="asc", limit=2))  # pages of 2
    texts = [item.content[0].text for item in items]
    assert texts == ["my name is Ada", first.output_text, "what is my name?", "answer in one word"]
    assert [item.role for item in items] == ["user", "assistant", "user", "user"]
    assert len({item.id for item in items}) == 4
    page = client.responses.input_items.list(second.id)  # newest first, 20 a page, by default
    assert [item.id for item in page.data] == [item.id for item in reversed(items)]
    assert page.has_more is False and page.first_id == items[-1].id and page.last_id == items[0].id
    assert [i.content[0].text for i in client.responses.input_items.list(first.id)] == ["my name is Ada"]
    with pytest.raises(openai.NotFoundError):
        live.openai(key=live.make_key()).responses.input_items.list(second.id)  # another user's


def test_responses_cancel_and_background_answer_like_openai_for_foreground_responses(live):
    client = live.openai()
    response = client.responses.create(model=CLAUDE, input="hi")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.cancel(response.id)
    assert caught.value.body["message"] == "Cannot cancel a synchronous response."
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_unknown")
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=CLAUDE, input="hi", background=True)
    assert "'background'" in refused.value.message
    assert client.responses.create(model=CLAUDE, input="hi", background=False).output_text


# ---------------------------------------------------------------- transcriptions as text, srt, vtt

AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64)


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt"])
def test_transcription_text_formats_are_built_from_segments(live, fmt):
    client = live.openai(key=live.make_key(select="Default"))
    raw = client.audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=("clip.wav", AUDIO, "audio/wav"), response_format=fmt
    )
    answer = raw.parse()
    assert isinstance(answer, str)
    assert raw.headers["content-type"].startswith("text/plain")
    text = f"Transcript of clip.wav ({len(AUDIO)} bytes) from openai-official."
    expected = {
        "text": f"{text}\n",
        "srt": (
            "1\n00:00:00,000 --> 00:00:01,500\nTranscript of clip.wav\n\n"
            f"2\n00:00:01,500 --> 00:00:03,250\n({len(AUDIO)} bytes) from openai-official.\n"
        ),
        "vtt": (
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nTranscript of clip.wav\n\n"
            f"00:00:01.500 --> 00:00:03.250\n({len(AUDIO)} bytes) from openai-official.\n"
        ),
    }[fmt]
    assert answer == expected
    assert live.sim.requests("openai-official")[-1]["body"]["response_format"] == "verbose_json"
    assert live.settled(raw.headers["x-request-id"]).status == "success"
