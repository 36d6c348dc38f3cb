"""Responses API and Gemini generateContent ⇄ OpenAI chat: requests, answers, streams, refusals.

Streams are checked by parsing what a client would read (the Responses SDK event types, Gemini
chunks) after the upstream stream went through the chat converters, for both upstream kinds."""

import json

import openai.types.responses
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.convert import ConversionError
from relay.convert.chain import ChainedStream
from relay.convert.gemini import (
    ChatToGeminiStream,
    chat_to_gemini,
    gemini_error,
    gemini_to_chat,
    openapi_to_json_schema,
)
from relay.convert.openai_responses import ChatToResponsesStream, chat_to_responses, responses_to_chat
from relay.convert.sse import SSEParser
from relay.convert.streams import AnthropicToOpenAIStream, OpenAIPassthroughStream
from tests.relay.convert_samples import TOOL_ARGS, anthropic_tool_stream, openai_tool_stream
from tests.relay.test_convert_properties import FAST

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather now",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
}


def run(converter, raw: bytes, chunk: int = 7) -> list[bytes]:
    parser, out = SSEParser(), []
    for i in range(0, len(raw), chunk):
        for event in parser.feed(raw[i : i + chunk]):
            out += converter.feed(event)
    for event in parser.flush():
        out += converter.feed(event)
    return out + (converter.finish() if converter.completed else converter.error("cut"))


def events(chunks: list[bytes]) -> list[dict]:
    parser = SSEParser()
    return [json.loads(e.data) for c in chunks for e in parser.feed(c)]


# ------------------------------------------------------------------------------------------ Responses


def test_responses_request_with_items_tools_and_outputs():
    body = {
        "model": "gpt-5.1",
        "instructions": "Be brief.",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Weather?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                ],
            },
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": TOOL_ARGS},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        ],
        "tools": [TOOL],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "max_output_tokens": 300,
        "reasoning": {"effort": "high", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "weather", "schema": SCHEMA, "strict": True}},
        "stream": True,
    }
    chat = responses_to_chat(body)
    assert chat["messages"][0] == {"role": "system", "content": "Be brief."}
    assert chat["messages"][1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AAAA"},
    }
    assert chat["messages"][2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": TOOL_ARGS}
    assert chat["messages"][3] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    assert chat["tools"][0]["function"]["name"] == "get_weather"
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["max_completion_tokens"] == 300
    assert chat["reasoning_effort"] == "high"
    assert chat["response_format"]["json_schema"]["schema"] == SCHEMA
    assert chat["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": "hi", "background": True}, "background"),
        ({"input": "hi", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].image_url",
        ),
        ({"input": "hi", "text": {"format": {"type": "grammar"}}}, "text.format.type"),
        ({"input": "hi", "include": ["file_search_call.results"]}, "include"),
        ({"input": "hi", "reasoning": {"effort": "turbo"}}, "reasoning.effort"),
    ],
)
def test_responses_request_refuses_what_chat_cannot_carry(body, field):
    with pytest.raises(ConversionError) as caught:
        responses_to_chat({"model": "m", **body})
    assert f"'{field}'" in str(caught.value)


def test_previous_response_history_comes_first():
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi Ada"}]},
    ]
    chat = responses_to_chat({"model": "m", "input": "Name?"}, history)
    assert [m["role"] for m in chat["messages"]] == ["user", "assistant", "user"]
    assert chat["messages"][1]["content"] == "Hi Ada"


def test_chat_answer_as_response_object_the_sdk_reads():
    chat = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "Checking.",
                    "reasoning_content": "think",
                    "tool_calls": [
                        {
                            "id": "call_9",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": TOOL_ARGS},
                        }
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 20,
            "completion_tokens": 7,
            "total_tokens": 27,
            "prompt_tokens_details": {"cached_tokens": 4},
        },
    }
    out = chat_to_responses(
        chat, {"model": "m", "input": "x", "tools": [TOOL]}, response_id="resp_1", model="m"
    )
    parsed = openai.types.responses.Response.model_validate(out)
    assert parsed.output_text == "Checking."
    assert [item.type for item in parsed.output] == ["reasoning", "message", "function_call"]
    assert parsed.output[2].call_id == "call_9" and parsed.output[2].arguments == TOOL_ARGS
    assert parsed.usage.input_tokens == 20 and parsed.usage.output_tokens == 7
    assert parsed.usage.input_tokens_details.cached_tokens == 4


def test_length_finish_is_an_incomplete_response():
    chat = {"choices": [{"finish_reason": "length", "message": {"content": "abc"}}]}
    out = chat_to_responses(chat, {"input": "x"}, response_id="resp_1", model="m")
    assert out["status"] == "incomplete" and out["incomplete_details"] == {"reason": "max_output_tokens"}


@pytest.mark.parametrize("upstream", ["openai", "anthropic"])
def test_responses_stream_from_either_upstream(upstream):
    inner = OpenAIPassthroughStream(True) if upstream == "openai" else AnthropicToOpenAIStream("m", True)
    raw = openai_tool_stream() if upstream == "openai" else anthropic_tool_stream()
    converter = ChainedStream(inner, ChatToResponsesStream({"input": "x"}, response_id="resp_s", model="m"))
    got = events(run(converter, raw))
    kinds = [e["type"] for e in got]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in got] == list(range(len(got)))
    final = openai.types.responses.Response.model_validate(got[-1]["response"])
    calls = [item for item in final.output if item.type == "function_call"]
    assert json.loads(calls[0].arguments) == json.loads(TOOL_ARGS)
    deltas = "".join(
        e["delta"]
        for e in got
        if e["type"] == "response.function_call_arguments.delta" and e["item_id"] == calls[0].id
    )
    assert json.loads(deltas) == json.loads(TOOL_ARGS)
    assert final.usage is not None and final.usage.output_tokens > 0
    assert converter.usage is not None and converter.completed


def test_responses_stream_cut_ends_with_response_failed():
    converter = ChainedStream(
        OpenAIPassthroughStream(True), ChatToResponsesStream({"input": "x"}, response_id="r", model="m")
    )
    raw = openai_tool_stream()
    got = events(run(converter, raw[: len(raw) // 2]))
    assert got[-1]["type"] == "response.failed"
    assert got[-1]["response"]["error"]["message"] == "cut"


# ---------------------------------------------------------------------------------------------- Gemini


GEMINI_BODY = {
    "contents": [
        {
            "role": "user",
            "parts": [
                {"text": "Weather in Paris?"},
                {"inline_data": {"mime_type": "image/png", "data": "AAAA"}},
            ],
        },
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}],
        },
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}]},
    ],
    "systemInstruction": {"parts": [{"text": "Be brief."}]},
    "generationConfig": {
        "maxOutputTokens": 200,
        "temperature": 0.2,
        "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "properties": {"temp": {"type": "INTEGER", "nullable": True}}},
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
    },
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"location": {"type": "STRING"}},
                        "required": ["location"],
                    },
                }
            ]
        }
    ],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
}


def test_gemini_request_as_chat():
    chat = gemini_to_chat(GEMINI_BODY, model="gpt-5.1", stream=False)
    messages = chat["messages"]
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert messages[1]["content"][1]["image_url"]["url"] == "data:image/png;base64,AAAA"
    call_id = messages[2]["tool_calls"][0]["id"]
    assert json.loads(messages[2]["tool_calls"][0]["function"]["arguments"]) == {"location": "Paris"}
    assert messages[3] == {"role": "tool", "tool_call_id": call_id, "content": '{"temp":21}'}
    assert chat["max_tokens"] == 200 and chat["temperature"] == 0.2
    assert chat["response_format"]["json_schema"]["schema"] == {
        "type": "object",
        "properties": {"temp": {"type": ["integer", "null"]}},
    }
    assert chat["reasoning_effort"] == "low"
    assert chat["tools"][0]["function"]["parameters"]["properties"]["location"] == {"type": "string"}
    assert chat["tool_choice"] == "required"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tools": [{"googleSearch": {}}]}, "tools[0].googleSearch"),
        ({"generationConfig": {"topK": 3}}, "generationConfig.topK"),
        ({"generationConfig": {"responseMimeType": "text/x.enum"}}, "generationConfig.responseMimeType"),
        ({"cachedContent": "c/1"}, "cachedContent"),
        (
            {"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": "gs://x"}}]}]},
            "contents[0].parts[0].fileData",
        ),
        (
            {
                "safetySettings": [
                    {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_LOW_AND_ABOVE"}
                ]
            },
            "safetySettings[0].threshold",
        ),
    ],
)
def test_gemini_request_refuses_what_chat_cannot_carry(change, field):
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], **change}
    with pytest.raises(ConversionError) as caught:
        gemini_to_chat(body, model="m", stream=False)
    assert f"'{field}'" in str(caught.value)


def test_chat_answer_as_gemini_response_the_sdk_reads():
    from google.genai import types

    chat = {
        "choices": [
            {
                "finish_reason": "length",
                "message": {
                    "content": "Sunny",
                    "reasoning_content": "hmm",
                    "tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": '{"a": 1}'}}],
                },
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
    }
    parsed = types.GenerateContentResponse.model_validate(chat_to_gemini(chat, model="m"))
    assert parsed.text == "Sunny"
    assert parsed.function_calls[0].args == {"a": 1}
    assert parsed.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert parsed.usage_metadata.prompt_token_count == 11
    assert parsed.usage_metadata.candidates_token_count == 5


@pytest.mark.parametrize("upstream", ["openai", "anthropic"])
@pytest.mark.parametrize("sse", [True, False])
def test_gemini_stream_from_either_upstream(upstream, sse):
    inner = OpenAIPassthroughStream(True) if upstream == "openai" else AnthropicToOpenAIStream("m", True)
    raw = openai_tool_stream() if upstream == "openai" else anthropic_tool_stream()
    converter = ChainedStream(inner, ChatToGeminiStream("m", sse=sse))
    out = b"".join(run(converter, raw))
    chunks = events([out]) if sse else json.loads(out)
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert upstream == "openai" or "weather" in text.lower()
    calls = [
        p["functionCall"]
        for c in chunks
        for p in c["candidates"][0]["content"]["parts"]
        if "functionCall" in p
    ]
    assert calls and calls[0]["args"] == json.loads(TOOL_ARGS)
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] > 0


def test_gemini_error_body():
    assert gemini_error(429, "slow down") == {
        "error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}
    }


# ------------------------------------------------------------------------------------ property tests

NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
JSON_TYPES = st.sampled_from(["string", "integer", "number", "boolean"])
SCHEMAS = st.recursive(
    JSON_TYPES.map(lambda t: {"type": t}),
    lambda inner: st.one_of(
        st.builds(lambda items: {"type": "array", "items": items}, inner),
        st.dictionaries(NAMES, inner, min_size=1, max_size=4).map(
            lambda props: {"type": "object", "properties": props, "required": sorted(props)}
        ),
    ),
    max_leaves=8,
)


def to_openapi(schema: dict) -> dict:
    out = {"type": schema["type"].upper()}
    if "items" in schema:
        out["items"] = to_openapi(schema["items"])
    if "properties" in schema:
        out["properties"] = {k: to_openapi(v) for k, v in schema["properties"].items()}
        out["required"] = schema["required"]
    return out


@FAST
@given(schema=SCHEMAS, effort=st.sampled_from(["minimal", "low", "medium", "high"]))
def test_responses_structured_output_and_effort_survive(schema, effort):
    chat = responses_to_chat(
        {
            "model": "m",
            "input": "x",
            "reasoning": {"effort": effort},
            "text": {"format": {"type": "json_schema", "name": "out", "schema": schema}},
        }
    )
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": schema},
    }
    assert chat["reasoning_effort"] == effort


@FAST
@given(schema=SCHEMAS, level=st.sampled_from(["LOW", "MEDIUM", "HIGH"]), as_json=st.booleans())
def test_gemini_structured_output_and_thinking_survive(schema, level, as_json):
    config = {"responseMimeType": "application/json", "thinkingConfig": {"thinkingLevel": level}}
    config["responseJsonSchema" if as_json else "responseSchema"] = schema if as_json else to_openapi(schema)
    chat = gemini_to_chat(
        {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": config}, model="m", stream=False
    )
    assert chat["response_format"]["json_schema"]["schema"] == schema
    assert chat["reasoning_effort"] == level.lower()
    assert openapi_to_json_schema(to_openapi(schema), "s") == schema


@FAST
@given(budget=st.integers(min_value=1, max_value=40000))
def test_gemini_thinking_budget_keeps_its_order(budget):
    order = ["none", "low", "medium", "high"]

    def effort(b):
        cfg = {"thinkingConfig": {"thinkingBudget": b}}
        return gemini_to_chat(
            {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": cfg}, model="m", stream=False
        )["reasoning_effort"]

    assert order.index(effort(budget)) <= order.index(effort(budget + 5000))


def test_namespaced_function_call_item_goes_back_under_its_chat_name():
    """Codex sends back the calls it got (name + namespace): the upstream sees the name it chose."""
    tools = [{"type": "namespace", "name": "mcp", "tools": [{"type": "function", "name": "search"}]}]
    chat = responses_to_chat(
        {
            "model": "m",
            "tools": tools,
            "input": [
                {"role": "user", "content": "find it"},
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "search",
                    "namespace": "mcp",
                    "arguments": "{}",
                },
                {"type": "function_call_output", "call_id": "c1", "output": "found"},
            ],
        }
    )
    assert chat["tools"][0]["function"]["name"] == "mcp__search"
    assert chat["messages"][1]["tool_calls"][0]["function"]["name"] == "mcp__search"
