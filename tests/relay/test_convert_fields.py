"""The field tables (`relay.convert.fields`): every top-level field a client format can send gets
a decision for the other format — carried, honoured, or a 400 naming it — and the README lists
each one. Also the decisions whose behaviour lives in the converters: end-user ids, service tiers,
context edits, Gemini's includeThoughts, and transcripts rendered as text/srt/vtt."""

import re
from pathlib import Path

import pytest

from relay.convert import ConversionError
from relay.convert.chain import ChainedStream
from relay.convert.fields import (
    ANTHROPIC_TO_OPENAI_CHAT,
    CARRIED,
    HONOURED,
    OPENAI_CHAT_TO_ANTHROPIC,
    REFUSED,
    RESPONSES_TO_CHAT,
)
from relay.convert.gemini import (
    CONFIG_FIELDS,
    REQUEST_FIELDS,
    ChatToGeminiStream,
    chat_to_gemini,
    include_thoughts,
)
from relay.convert.openai_responses import responses_to_chat
from relay.convert.requests import anthropic_messages_to_openai_chat, openai_chat_to_anthropic
from relay.convert.streams import OpenAIPassthroughStream
from relay.convert.transcripts import render_transcript
from tests.relay.convert_samples import deepseek_reasoning_stream
from tests.relay.test_convert_client_formats import events, run

USER = [{"role": "user", "content": "hi"}]
TABLES = {
    "OpenAI chat → Anthropic": (
        OPENAI_CHAT_TO_ANTHROPIC,
        lambda extra: openai_chat_to_anthropic({"model": "claude", "messages": USER, **extra}),
    ),
    "Anthropic → OpenAI chat": (
        ANTHROPIC_TO_OPENAI_CHAT,
        lambda extra: anthropic_messages_to_openai_chat(
            {"model": "m", "max_tokens": 9, "messages": USER, **extra}
        ),
    ),
    "Responses → chat": (
        RESPONSES_TO_CHAT,
        lambda extra: responses_to_chat({"model": "m", "input": "hi", **extra}),
    ),
}
# A value each refused field cannot take without changing the answer.
REFUSED_VALUES = {
    "store": True,
    "verbosity": "low",
    "n": 2,
    "frequency_penalty": 0.5,
    "presence_penalty": -1,
    "modalities": ["text", "audio"],
    "seed": 0,
    "logprobs": True,
    "top_logprobs": 2,
    "logit_bias": {"1": 5},
    "audio": {"voice": "alloy", "format": "mp3"},
    "prediction": {"type": "content", "content": "x"},
    "web_search_options": {},
    "functions": [{"name": "f"}],
    "function_call": "auto",
    "top_k": 5,
    "container": "c1",
    "mcp_servers": [],
    "background": True,
    "conversation": "conv_1",
    "prompt": {"id": "pmpt_1"},
}


def test_every_decision_is_one_of_the_three_and_says_why():
    for table, _ in TABLES.values():
        for name, rule in table.items():
            assert rule.decision in (CARRIED, HONOURED, REFUSED), name
            assert rule.why, name


@pytest.mark.parametrize(
    ("direction", "field"),
    [(d, f) for d, (table, _) in TABLES.items() for f, rule in table.items() if rule.decision == REFUSED],
)
def test_refused_fields_are_a_400_naming_them(direction, field):
    _, convert = TABLES[direction]
    with pytest.raises(ConversionError) as caught:
        convert({field: REFUSED_VALUES[field]})
    assert f"'{field}'" in str(caught.value)


@pytest.mark.parametrize("direction", list(TABLES))
def test_a_field_no_table_knows_is_a_400_naming_it(direction):
    _, convert = TABLES[direction]
    with pytest.raises(ConversionError, match="'frobnicate' is not supported"):
        convert({"frobnicate": 1})


@pytest.mark.parametrize(
    ("field", "inert"),
    [
        ("store", False),
        ("verbosity", "medium"),
        ("n", 1),
        ("frequency_penalty", 0),
        ("presence_penalty", 0.0),
        ("modalities", ["text"]),
        ("logprobs", False),
        ("metadata", {"run": "1"}),
        ("prompt_cache_key", "k"),
        ("prompt_cache_retention", "24h"),
        ("stream_options", {"include_usage": True}),
    ],
)
def test_openai_no_op_values_and_honoured_fields_pass_without_reaching_anthropic(field, inert):
    out = openai_chat_to_anthropic({"model": "claude", "messages": USER, field: inert})
    assert field not in out


def test_a_boolean_is_not_the_no_op_number():
    with pytest.raises(ConversionError, match="'n'"):
        openai_chat_to_anthropic({"model": "claude", "messages": USER, "n": True})


README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_lists_every_field_decision():
    limits = README.split("### Conversion limits", 1)[1].split("\n## ", 1)[0]
    fields = {direction: list(table) for direction, (table, _) in TABLES.items()}
    fields["Gemini → chat"] = sorted(REQUEST_FIELDS | CONFIG_FIELDS)
    for direction, names in fields.items():
        for field in names:
            assert f"`{field}`" in limits, f"README's Conversion limits misses {direction} `{field}`"


def test_readme_relay_section_lists_every_endpoint():
    from relay import gemini_urls, urls

    section = README.split("## Relay API (/v1)", 1)[1].split("### Conversion limits", 1)[0]
    for pattern in urls.urlpatterns:
        route = str(pattern.pattern)
        if route.startswith("^"):
            continue  # the catch-all JSON 404
        path = re.escape("/v1/" + re.sub(r"<\w+:\w+>", "ID", route)).replace("ID", r"\{[a-z_]+\}")
        assert re.search(path + r"(?![\w/])", section), route
    for action in ("generateContent", "streamGenerateContent", "countTokens"):
        assert f":{action}" in section
    assert "GET /v1beta/models" in section and "/v1beta/models/{model}" in section
    assert len(gemini_urls.urlpatterns) == 4  # models, an action, one model, the catch-all


# ---------------------------------------------------------------- end-user ids and service tiers


def test_end_user_ids_both_ways():
    there = openai_chat_to_anthropic({"model": "c", "messages": USER, "safety_identifier": "u1"})
    assert there["metadata"] == {"user_id": "u1"}
    assert openai_chat_to_anthropic({"model": "c", "messages": USER, "user": "u2"})["metadata"] == {
        "user_id": "u2"
    }
    same = openai_chat_to_anthropic({"model": "c", "messages": USER, "user": "u", "safety_identifier": "u"})
    assert same["metadata"] == {"user_id": "u"}
    with pytest.raises(ConversionError, match="'safety_identifier' and 'user' differ"):
        openai_chat_to_anthropic({"model": "c", "messages": USER, "user": "a", "safety_identifier": "b"})
    assert anthropic_messages_to_openai_chat(there)["user"] == "u1"
    with pytest.raises(ConversionError, match="'metadata.user_id' must be a string"):
        anthropic_messages_to_openai_chat({"messages": USER, "metadata": {"user_id": 5}})


@pytest.mark.parametrize(("openai_tier", "anthropic_tier"), [("auto", "auto"), ("default", "standard_only")])
def test_service_tiers_both_ways(openai_tier, anthropic_tier):
    there = openai_chat_to_anthropic({"model": "c", "messages": USER, "service_tier": openai_tier})
    assert there["service_tier"] == anthropic_tier
    assert anthropic_messages_to_openai_chat(there)["service_tier"] == openai_tier
    with pytest.raises(ConversionError, match="'service_tier'"):
        openai_chat_to_anthropic({"model": "c", "messages": USER, "service_tier": "priority"})


# ---------------------------------------------------------------- context_management


def thinking_history(turns: int) -> list[dict]:
    messages = []
    for n in range(turns):
        messages += [
            {"role": "user", "content": f"q{n}"},
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": f"t{n}"}, {"type": "text", "text": "a"}],
            },
        ]
    return [*messages, {"role": "user", "content": "next"}]


@pytest.mark.parametrize(
    ("edit", "kept"),
    [
        ({"type": "clear_thinking_20251015", "keep": "all"}, ["t0", "t1", "t2"]),
        ({"type": "clear_thinking_20251015"}, [None, None, "t2"]),  # Anthropic's default: the last turn
        (
            {"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 2}},
            [None, "t1", "t2"],
        ),
        (
            {"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 0}},
            [None, None, None],
        ),
    ],
)
def test_clear_thinking_edits_apply_to_the_reasoning_history(edit, kept):
    out = anthropic_messages_to_openai_chat(
        {"messages": thinking_history(3), "context_management": {"edits": [edit]}}
    )
    assert [m.get("reasoning_content") for m in out["messages"] if m["role"] == "assistant"] == kept


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"edits": [{"type": "clear_tool_uses_20250919"}]}, "context_management.edits[0].type"),
        ({"edits": [{"type": "clear_thinking_20251015", "keep": 3}]}, "context_management.edits[0].keep"),
        (
            {"edits": [{"type": "clear_thinking_20251015", "trigger": {}}]},
            "context_management.edits[0].trigger",
        ),
        ({"mode": "auto"}, "context_management.mode"),
    ],
)
def test_context_edits_that_cannot_be_applied_are_refused_by_name(config, field):
    with pytest.raises(ConversionError) as caught:
        anthropic_messages_to_openai_chat({"messages": USER, "context_management": config})
    assert f"'{field}" in str(caught.value)


# ---------------------------------------------------------------- Gemini includeThoughts

REASONING_CHAT = {
    "choices": [{"finish_reason": "stop", "message": {"content": "Paris", "reasoning_content": "hmm"}}],
}


@pytest.mark.parametrize(
    ("config", "shown"),
    [
        ({}, False),
        ({"thinkingConfig": {"thinkingBudget": 1024}}, False),
        ({"thinkingConfig": {"includeThoughts": False}}, False),
        ({"thinking_config": {"include_thoughts": True}}, True),
    ],
)
def test_thoughts_come_back_only_when_included(config, shown):
    body = {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": config}
    assert include_thoughts(body) is shown
    parts = chat_to_gemini(REASONING_CHAT, model="m", thoughts=include_thoughts(body))["candidates"][0]
    assert [p.get("thought", False) for p in parts["content"]["parts"]] == (
        [True, False] if shown else [False]
    )
    stream = ChainedStream(OpenAIPassthroughStream(True), ChatToGeminiStream("m", thoughts=shown))
    chunks = events(run(stream, deepseek_reasoning_stream()))
    thoughts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"] if p.get("thought")]
    assert bool(thoughts) is shown
    assert any(
        p.get("text") and not p.get("thought") for c in chunks for p in c["candidates"][0]["content"]["parts"]
    )


# ---------------------------------------------------------------- transcripts

VERBOSE = {
    "text": "Hello there. General Kenobi.",
    "duration": 3725.5,
    "segments": [
        {"start": 0, "end": 1.2345, "text": " Hello there."},
        {"start": 3661.0, "end": 3725.5, "text": " General Kenobi."},
    ],
}


def test_transcripts_as_text_srt_and_vtt():
    assert render_transcript(VERBOSE, "text") == "Hello there. General Kenobi.\n"
    assert render_transcript(VERBOSE, "srt") == (
        "1\n00:00:00,000 --> 00:00:01,234\nHello there.\n\n"
        "2\n01:01:01,000 --> 01:02:05,500\nGeneral Kenobi.\n"
    )
    assert render_transcript(VERBOSE, "vtt") == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.234\nHello there.\n\n"
        "01:01:01.000 --> 01:02:05.500\nGeneral Kenobi.\n"
    )
    short = {"text": "Hi.", "duration": 0.8}
    assert render_transcript(short, "srt") == "1\n00:00:00,000 --> 00:00:00,800\nHi.\n"
    with pytest.raises(ConversionError):
        render_transcript({"segments": [{"text": "x"}], "text": "x"}, "vtt")


# ---------------------------------------------------------------- thinking.display


def test_thinking_display_omitted_keeps_the_reasoning_out_of_the_answer():
    from relay.convert.requests import shows_thinking
    from relay.convert.responses import openai_chat_to_anthropic_message
    from relay.convert.streams import OpenAIToAnthropicStream

    omitted = {"messages": USER, "thinking": {"type": "adaptive", "display": "omitted"}}
    assert anthropic_messages_to_openai_chat(omitted)["reasoning_effort"] == "medium"  # still asked
    assert shows_thinking(omitted) is False
    assert shows_thinking({"thinking": {"type": "adaptive", "display": "summarized"}}) is True
    blocks = openai_chat_to_anthropic_message(REASONING_CHAT, model="m", thinking=False)["content"]
    assert [b["type"] for b in blocks] == ["text"]
    stream = OpenAIToAnthropicStream("m", thinking=False)
    kinds = {e.get("content_block", {}).get("type") for e in events(run(stream, deepseek_reasoning_stream()))}
    assert "thinking" not in kinds and "text" in kinds
    visible = sum(
        len(e["delta"].get("text", ""))
        for e in events(run(OpenAIToAnthropicStream("m", thinking=False), deepseek_reasoning_stream()))
        if e.get("type") == "content_block_delta"
    )
    assert stream.output_chars > visible  # the hidden reasoning still counts as output
    with pytest.raises(ConversionError, match="'thinking.display'"):
        anthropic_messages_to_openai_chat(
            {"messages": USER, "thinking": {"type": "adaptive", "display": "full"}}
        )
    carried = openai_chat_to_anthropic(
        {"model": "c", "messages": USER, "thinking": {"type": "adaptive", "display": "omitted"}}
    )
    assert carried["thinking"] == {"type": "adaptive", "display": "omitted"}
