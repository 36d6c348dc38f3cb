"""Converted streams and bodies as the official SDK clients receive them over HTTP
(httpx mock transport: no network), including how they surface our mid-stream error events."""

import anthropic
import httpx2 as httpx
import openai
import orjson
import pytest

from relay.convert.responses import anthropic_message_to_openai_chat, openai_chat_to_anthropic_message
from relay.convert.streams import AnthropicToOpenAIStream, OpenAIToAnthropicStream
from tests.relay.convert_samples import TOOL_ARGS, anthropic_tool_stream, openai_tool_stream, run
from tests.relay.test_convert_responses import ANTHROPIC_TOOL_MESSAGE, OPENAI_TOOL_COMPLETION


def transport(body: bytes, content_type: str) -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda request: httpx.Response(200, content=body, headers={"content-type": content_type})
    )


def openai_client(body: bytes, content_type="text/event-stream") -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://relay.test/v1",
        max_retries=0,
        http_client=httpx.Client(transport=transport(body, content_type)),
    )


def anthropic_client(body: bytes, content_type="text/event-stream") -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="sk-test",
        base_url="http://relay.test",
        max_retries=0,
        http_client=httpx.Client(transport=transport(body, content_type)),
    )


MESSAGES = [{"role": "user", "content": "weather?"}]


def test_openai_sdk_streams_a_converted_anthropic_stream():
    body = run(
        AnthropicToOpenAIStream("claude-sonnet-4-5", include_usage=True), anthropic_tool_stream(pieces=20)
    )
    client = openai_client(body)
    with client.chat.completions.stream(
        model="claude-sonnet-4-5", messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Okay, let's check the weather."
    assert final.choices[0].message.tool_calls[0].function.arguments == TOOL_ARGS
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage.prompt_tokens == 1502 and final.usage.completion_tokens == 89


def test_openai_sdk_raises_on_our_mid_stream_error_event():
    raw = anthropic_tool_stream()
    conv = AnthropicToOpenAIStream("m", include_usage=False)
    body = run(conv, raw[: raw.index(b"event: content_block_stop")], finish=False)
    body += b"".join(conv.error("The upstream stream failed; the answer is incomplete."))
    chunks = []
    with pytest.raises(openai.APIError, match="answer is incomplete"):
        for chunk in openai_client(body).chat.completions.create(model="m", messages=MESSAGES, stream=True):
            chunks.append(chunk)
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Okay, let's check the weather."
    )


def test_anthropic_sdk_streams_a_converted_openai_stream():
    body = run(OpenAIToAnthropicStream("deepseek-v4"), openai_tool_stream(pieces=30))
    client = anthropic_client(body)
    with client.messages.stream(model="deepseek-v4", max_tokens=100, messages=MESSAGES) as stream:
        message = stream.get_final_message()
    assert [(b.name, b.input) for b in message.content] == [
        ("get_weather", orjson.loads(TOOL_ARGS)),
        ("get_time", {"tz": "UTC"}),
    ]
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 86 and message.usage.cache_read_input_tokens == 1920


def test_anthropic_sdk_raises_on_our_mid_stream_error_event():
    raw = openai_tool_stream()
    conv = OpenAIToAnthropicStream("m")
    body = run(conv, raw[:900], finish=False) + b"".join(conv.error("upstream reset"))
    client = anthropic_client(body)
    with (
        pytest.raises(anthropic.APIStatusError, match="upstream reset"),
        client.messages.stream(model="m", max_tokens=5, messages=MESSAGES) as stream,
    ):
        stream.get_final_message()


def test_sdks_parse_converted_non_stream_bodies():
    body = orjson.dumps(anthropic_message_to_openai_chat(ANTHROPIC_TOOL_MESSAGE, model="claude"))
    completion = openai_client(body, "application/json").chat.completions.create(
        model="claude", messages=MESSAGES
    )
    assert completion.choices[0].message.tool_calls[0].function.name == "get_weather"
    body = orjson.dumps(openai_chat_to_anthropic_message(OPENAI_TOOL_COMPLETION, model="deepseek-v4"))
    message = anthropic_client(body, "application/json").messages.create(
        model="deepseek-v4", max_tokens=5, messages=MESSAGES
    )
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
