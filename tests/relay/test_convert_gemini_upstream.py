"""OpenAI chat ⇄ a Gemini API upstream (relay/convert/gemini_upstream.py), without a network."""

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion

from core.pricing import Usage
from relay.convert.errors import ConversionError
from relay.convert.gemini import gemini_to_chat
from relay.convert.gemini_upstream import (
    SKIP_SIGNATURE,
    GeminiPassthroughStream,
    GeminiToChatStream,
    chat_to_gemini_request,
    gemini_response_to_chat,
    usage_from_gemini,
)
from relay.convert.requests import anthropic_messages_to_openai_chat
from tests.relay.convert_samples import run
from tests.relay.test_convert_streams import openai_final

PNG = "iVBORw0KGgo="
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def sse(*events: dict) -> bytes:
    return b"".join(b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events)


def test_a_conversation_with_tools_becomes_contents():
    body = {
        "model": "gemini-2.5-flash",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "weather here?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a"},
                    },
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
            {"role": "user", "content": "and tomorrow?"},
        ],
        "tools": [TOOL],
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "u-1",
    }
    out = chat_to_gemini_request(body)
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief.\n\nUse metric units."}]}
    assert out["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "weather here?"},
                {"inlineData": {"mimeType": "image/png", "data": PNG}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
                {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
            ],
        },
        {
            "role": "model",
            "parts": [
                {"text": "Let me look."},
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Rome"}},
                    "thoughtSignature": SKIP_SIGNATURE,
                },
            ],
        },
        {  # the tool result and the next user message are one user turn
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
                {"text": "and tomorrow?"},
            ],
        },
    ]
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather of a city",
                    "parametersJsonSchema": TOOL["function"]["parameters"],
                }
            ]
        }
    ]
    assert "toolConfig" not in out and "model" not in out and "generationConfig" not in out


def test_a_text_tool_result_is_wrapped_as_an_object():
    out = chat_to_gemini_request(
        {
            "messages": [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": ""}}],
                },
                {"role": "tool", "tool_call_id": "c", "content": "sunny"},
            ]
        }
    )
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"result": "sunny"}}}
    ]
    assert out["contents"][1]["parts"][0]["functionCall"] == {"name": "f", "args": {}}


def test_generation_settings():
    out = chat_to_gemini_request(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.2,
            "top_p": 0.9,
            "max_completion_tokens": 100,
            "max_tokens": 5,
            "stop": "END",
            "seed": 7,
            "presence_penalty": 0.5,
            "frequency_penalty": 0.1,
        }
    )
    assert out["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.1,
        "seed": 7,
        "maxOutputTokens": 100,
        "stopSequences": ["END"],
    }


@pytest.mark.parametrize(
    ("fields", "config"),
    [
        ({"response_format": {"type": "json_object"}}, {"responseMimeType": "application/json"}),
        ({"response_format": {"type": "text"}}, None),
        ({"reasoning_effort": "none"}, {"thinkingConfig": {"thinkingBudget": 0}}),
        (
            {"reasoning_effort": "high"},
            {"thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": True}},
        ),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2048}},
            {"thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True}},
        ),
        (
            {"thinking": {"type": "adaptive"}},
            {"thinkingConfig": {"thinkingBudget": -1, "includeThoughts": True}},
        ),
        ({"thinking": {"type": "disabled"}}, {"thinkingConfig": {"thinkingBudget": 0}}),
    ],
)
def test_structured_output_and_reasoning(fields, config):
    out = chat_to_gemini_request({"messages": [{"role": "user", "content": "hi"}], **fields})
    assert out.get("generationConfig") == config


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice(choice, config):
    out = chat_to_gemini_request(
        {"messages": [{"role": "user", "content": "hi"}], "tools": [TOOL], "tool_choice": choice}
    )
    assert out["toolConfig"] == {"functionCallingConfig": config}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"n": 2}, "'n'"),
        ({"logprobs": True}, "'logprobs'"),
        ({"logit_bias": {"1": 1}}, "'logit_bias'"),
        ({"audio": {"voice": "x"}}, "'audio'"),
        ({"modalities": ["text", "audio"]}, "'modalities'"),
        ({"frobnicate": 1}, "'frobnicate'"),
        ({"stop": ["a", "b", "c", "d", "e", "f"]}, "'stop'"),
        ({"reasoning_effort": "huge"}, "'reasoning_effort'"),
        ({"response_format": {"type": "xml"}}, "'response_format.type'"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "json_schema.schema"),
        ({"tools": [{"type": "web_search"}]}, "'tools[0].type'"),
        ({"tools": [TOOL], "parallel_tool_calls": False}, "'parallel_tool_calls'"),
        (
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "'tool_choice'",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
                    }
                ]
            },
            "'messages[0].content[0].image_url.url'",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]},
            "'messages[0].content[0].file.file_id'",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "flac"}}],
                    }
                ]
            },
            "'messages[0].content[0].input_audio'",
        ),
        ({"messages": [{"role": "tool", "tool_call_id": "x", "content": "r"}]}, "'messages[0].tool_call_id'"),
        ({"messages": [{"role": "function", "name": "f", "content": "r"}]}, "'messages[0].role'"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "'messages'"),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}],
                    },
                ]
            },
            "arguments",
        ),
    ],
)
def test_what_gemini_cannot_carry_is_refused_by_name(fields, named):
    body = {"messages": [{"role": "user", "content": "hi"}], **fields}
    with pytest.raises(ConversionError) as err:
        chat_to_gemini_request(body)
    assert named in str(err.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"user": "u-1", "safety_identifier": "s-1", "metadata": {"k": "v"}},
        {"prompt_cache_key": "conv-7", "prompt_cache_retention": "24h"},
        {"store": False, "verbosity": "medium", "service_tier": "auto"},
        {"service_tier": "default"},
    ],
)
def test_fields_gemini_honours_are_accepted_and_not_sent(fields):
    plain = chat_to_gemini_request({"messages": [{"role": "user", "content": "hi"}]})
    assert chat_to_gemini_request({"messages": [{"role": "user", "content": "hi"}], **fields}) == plain


@pytest.mark.parametrize(
    "fields, named",
    [
        ({"store": True}, "'store'"),
        ({"verbosity": "low"}, "'verbosity'"),
        ({"service_tier": "flex"}, "'service_tier'"),
        ({"store": 0}, "'store'"),
    ],
)
def test_fields_gemini_cannot_honour_are_refused_by_name(fields, named):
    with pytest.raises(ConversionError) as err:
        chat_to_gemini_request({"messages": [{"role": "user", "content": "hi"}], **fields})
    assert named in str(err.value)


def test_anthropic_clients_compose_through_chat():
    chat = anthropic_messages_to_openai_chat(
        {
            "model": "gemini-2.5-flash",
            "max_tokens": 64,
            "system": "Be brief.",
            "thinking": {"type": "enabled", "budget_tokens": 4096},
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
        }
    )
    out = chat_to_gemini_request(chat)
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert out["contents"] == [{"role": "user", "parts": [{"text": "hello"}]}]
    assert out["generationConfig"]["maxOutputTokens"] == 64
    assert out["generationConfig"]["thinkingConfig"]["includeThoughts"] is True


# ------------------------------------------------------------------ properties: nothing lost on the way


SCHEMAS = st.recursive(
    st.sampled_from([{"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "number"}]),
    lambda inner: st.one_of(
        st.builds(lambda items: {"type": "array", "items": items}, inner),
        st.dictionaries(st.text("abcdefgh", min_size=1, max_size=6), inner, min_size=1, max_size=4).map(
            lambda props: {"type": "object", "properties": props, "required": sorted(props)}
        ),
    ),
    max_leaves=8,
)


@given(SCHEMAS)
def test_a_json_schema_reaches_gemini_intact(schema):
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
    }
    config = chat_to_gemini_request(body)["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}
    back = gemini_to_chat(
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": config}, model="m", stream=False
    )
    assert back["response_format"]["json_schema"]["schema"] == schema


@pytest.mark.parametrize("effort", ["none", "low", "medium", "high"])
def test_reasoning_effort_survives_the_round_trip(effort):
    config = chat_to_gemini_request(
        {"messages": [{"role": "user", "content": "x"}], "reasoning_effort": effort}
    )["generationConfig"]
    back = gemini_to_chat(
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": config}, model="m", stream=False
    )
    assert back["reasoning_effort"] == effort


# ------------------------------------------------------------------ answers


def test_an_answer_with_thoughts_tools_and_usage():
    data = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Thinking about it.", "thought": True},
                        {"text": "Calling."},
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Rome"}},
                            "thoughtSignature": "c2ln",
                        },
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 100,
            "candidatesTokenCount": 20,
            "thoughtsTokenCount": 30,
            "cachedContentTokenCount": 40,
            "totalTokenCount": 150,
        },
        "responseId": "abc",
        "modelVersion": "gemini-2.5-flash-001",
    }
    out = gemini_response_to_chat(data, model="gemini-2.5-flash")
    completion = ChatCompletion.model_validate(out)  # what the openai SDK accepts
    message = completion.choices[0].message
    assert out["id"] == "chatcmpl-abc" and completion.model == "gemini-2.5-flash"
    assert (
        message.content == "Calling."
        and out["choices"][0]["message"]["reasoning_content"] == "Thinking about it."
    )
    assert message.tool_calls[0].function.name == "get_weather"
    assert orjson.loads(message.tool_calls[0].function.arguments) == {"city": "Rome"}
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage.prompt_tokens == 100 and completion.usage.completion_tokens == 50
    assert completion.usage.prompt_tokens_details.cached_tokens == 40
    assert completion.usage.completion_tokens_details.reasoning_tokens == 30


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
    ],
)
def test_finish_reasons(reason, finish):
    data = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert gemini_response_to_chat(data, model="m")["choices"][0]["finish_reason"] == finish


def test_a_blocked_prompt_and_an_image_answer():
    blocked = gemini_response_to_chat({"promptFeedback": {"blockReason": "SAFETY"}}, model="m")
    assert blocked["choices"][0]["finish_reason"] == "content_filter"
    assert blocked["choices"][0]["message"]["content"] == ""
    image = {
        "candidates": [
            {
                "content": {"parts": [{"inline_data": {"mime_type": "image/png", "data": PNG}}]},
                "finishReason": "STOP",
            }
        ]
    }
    assert gemini_response_to_chat(image, model="m")["choices"][0]["message"]["content"] == (
        f"![image](data:image/png;base64,{PNG})"
    )
    with pytest.raises(ConversionError):
        gemini_response_to_chat({"choices": []}, model="m")


def test_usage_bills_thoughts_as_output_and_cached_content_as_cache_reads():
    meta = {
        "promptTokenCount": 1000,
        "candidatesTokenCount": 50,
        "thoughtsTokenCount": 25,
        "cachedContentTokenCount": 600,
    }
    assert usage_from_gemini(meta) == Usage(input_tokens=400, output_tokens=75, cache_read_tokens=600)
    tools = {"promptTokenCount": 10, "toolUsePromptTokenCount": 5, "candidatesTokenCount": 1}
    assert usage_from_gemini(tools) == Usage(input_tokens=15, output_tokens=1)
    assert usage_from_gemini({"totalTokenCount": 3}) is None and usage_from_gemini(None) is None


# ------------------------------------------------------------------ streams


STREAM = sse(
    {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hmm.", "thought": True}]}}],
        "responseId": "r1",
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
    },
    {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hello "}]}}],
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
    },
    {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "there."}]}, "finishReason": "STOP"}],
        "usageMetadata": {
            "promptTokenCount": 12,
            "candidatesTokenCount": 3,
            "thoughtsTokenCount": 2,
            "totalTokenCount": 17,
        },
    },
)


def test_a_stream_becomes_chat_chunks_with_usage_last():
    converter = GeminiToChatStream("gemini-2.5-flash", include_usage=True)
    final, chunks = openai_final(run(converter, STREAM))
    assert final.choices[0].message.content == "Hello there."
    assert final.choices[0].finish_reason == "stop" and final.id == "chatcmpl-r1"
    assert "Hmm." in [getattr(c.choices[0].delta, "reasoning_content", None) for c in chunks if c.choices]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 2
    assert converter.completed and converter.usage == Usage(input_tokens=12, output_tokens=5)


def test_a_stream_without_include_usage_has_no_usage_chunk_but_is_billed():
    converter = GeminiToChatStream("m", include_usage=False)
    _, chunks = openai_final(run(converter, STREAM))
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)
    assert converter.usage == Usage(input_tokens=12, output_tokens=5)


def test_stream_function_calls_arrive_whole():
    raw = sse(
        {
            "candidates": [
                {
                    "content": {
                        "parts": [
                            {"functionCall": {"name": "a", "args": {"x": 1}}},
                            {"functionCall": {"name": "b", "args": {}}},
                        ]
                    },
                    "finishReason": "STOP",
                }
            ]
        }
    )
    final, _ = openai_final(run(GeminiToChatStream("m", include_usage=False), raw))
    calls = final.choices[0].message.tool_calls
    assert [(c.function.name, c.function.arguments) for c in calls] == [("a", '{"x":1}'), ("b", "{}")]
    assert final.choices[0].finish_reason == "tool_calls"


def test_a_stream_cut_before_its_finish_reason_is_not_complete():
    converter = GeminiToChatStream("m", include_usage=True)
    head = STREAM.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    out = run(converter, head)
    assert not converter.completed and b"[DONE]" not in out
    error = b"".join(converter.error("cut"))
    assert b'"error"' in error and b"cut" in error


def test_an_error_event_mid_stream_is_relayed_once():
    converter = GeminiToChatStream("m", include_usage=True)
    raw = (
        STREAM.split(b"\r\n\r\n")[0]
        + b"\r\n\r\n"
        + sse({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
    )
    out = run(converter, raw)
    assert converter.upstream_error == "overloaded" and out.count(b'"error"') == 1
    assert converter.error("again") == []


def test_passthrough_reframes_sse_as_one_json_array_and_tracks_usage():
    converter = GeminiPassthroughStream("gemini-2.5-flash", sse=False)
    raw = sse({**orjson.loads(STREAM.split(b"\r\n\r\n")[2][6:]), "modelVersion": "gemini-2.5-flash-001"})
    out = orjson.loads(run(converter, raw))
    assert isinstance(out, list) and out[0]["modelVersion"] == "gemini-2.5-flash"
    assert converter.completed and converter.usage == Usage(input_tokens=12, output_tokens=5)
    sse_converter = GeminiPassthroughStream("m", sse=True)
    assert run(sse_converter, STREAM).count(b"data: ") == 3 and sse_converter.completed
