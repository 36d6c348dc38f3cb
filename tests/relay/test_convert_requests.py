"""Request conversion both ways, with real-shaped bodies (Claude Code, OpenAI SDK)."""

import pytest

from relay.convert import ConversionError
from relay.convert.requests import (
    DEFAULT_MAX_TOKENS,
    anthropic_messages_to_openai_chat,
    openai_chat_to_anthropic,
    openai_wants_usage,
    openai_with_stream_usage,
)

WEATHER_TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["location"],
        },
        "strict": True,
    },
}
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": WEATHER_TOOL_OPENAI["function"]["parameters"],
}

OPENAI_TOOL_CONVERSATION = {
    "model": "claude-sonnet-4-5",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
        {"role": "user", "content": "Weather in Paris and Tokyo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Tokyo", "unit": "c"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "18C sunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "22C rain"}]},
        {"role": "user", "content": "Thanks. Which is warmer?"},
    ],
    "tools": [WEATHER_TOOL_OPENAI],
    "tool_choice": "auto",
    "max_completion_tokens": 1024,
    "temperature": 1.5,
    "top_p": 0.9,
    "stop": ["\n\nHuman:"],
    "stream": True,
    "stream_options": {"include_usage": True},
    "user": "user-42",
}

CLAUDE_CODE_SYSTEM = "You are Claude Code, Anthropic's official CLI for Claude.\n\nWorking directory: /repo"
CLAUDE_CODE_BODY = {
    "model": "deepseek-v4",
    "max_tokens": 32000,
    "system": [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": "Working directory: /repo", "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [
        {
            "role": "user",
            "content": [{"type": "text", "text": "list files", "cache_control": {"type": "ephemeral"}}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should run ls.", "signature": "EqQBCkYIBxgCKkA..."},
                {"type": "text", "text": "Running ls."},
                {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "Bash",
                    "input": {"command": "ls", "timeout": 5},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "a.py\nb.py"},
                {"type": "text", "text": "now count them"},
            ],
        },
    ],
    "tools": [
        {
            "name": "Bash",
            "description": "Run a shell command",
            "input_schema": {
                "type": "object",
                "properties": {"command": {"type": "string"}},
                "required": ["command"],
                "additionalProperties": False,
                "$schema": "http://json-schema.org/draft-07/schema#",
            },
        }
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "temperature": 1,
    "stop_sequences": ["</done>"],
    "metadata": {"user_id": "user_abc_account_123_session_x"},
    "thinking": {"type": "enabled", "budget_tokens": 31999},
    "stream": True,
}


def test_openai_tool_conversation_to_anthropic():
    out = openai_chat_to_anthropic(OPENAI_TOOL_CONVERSATION)
    assert out["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Use metric units."},
    ]
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Tokyo?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"location": "Paris"}},
                {
                    "type": "tool_use",
                    "id": "call_b",
                    "name": "get_weather",
                    "input": {"location": "Tokyo", "unit": "c"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_a", "content": "18C sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_b",
                    "content": [{"type": "text", "text": "22C rain"}],
                },
                {"type": "text", "text": "Thanks. Which is warmer?"},
            ],
        },
    ]
    assert out["tools"] == [WEATHER_TOOL_ANTHROPIC]
    assert out["tool_choice"] == {"type": "auto"}
    assert out["max_tokens"] == 1024
    assert out["temperature"] == 1  # clamped to Anthropic's range
    assert out["top_p"] == 0.9
    assert out["stop_sequences"] == ["\n\nHuman:"]
    assert out["stream"] is True
    assert "stream_options" not in out
    assert out["metadata"] == {"user_id": "user-42"}
    assert out["model"] == "claude-sonnet-4-5"


def test_openai_defaults_max_tokens_and_maps_legacy_max_tokens():
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert openai_chat_to_anthropic(body)["max_tokens"] == DEFAULT_MAX_TOKENS
    assert openai_chat_to_anthropic({**body, "max_tokens": 77})["max_tokens"] == 77
    assert openai_chat_to_anthropic({**body, "max_tokens": 77, "max_completion_tokens": 9})["max_tokens"] == 9
    assert "system" not in openai_chat_to_anthropic(body)
    assert openai_chat_to_anthropic({**body, "stop": "END"})["stop_sequences"] == ["END"]
    assert openai_chat_to_anthropic({**body, "stop": ["", "X"]})["stop_sequences"] == ["X"]
    assert "stop_sequences" not in openai_chat_to_anthropic({**body, "stop": ""})


def test_openai_images_become_anthropic_image_blocks():
    body = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "compare"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ],
    }
    blocks = openai_chat_to_anthropic(body)["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}


def test_openai_tool_choice_variants_and_parallel_flag():
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [WEATHER_TOOL_OPENAI]}
    assert openai_chat_to_anthropic({**base, "tool_choice": "required"})["tool_choice"] == {"type": "any"}
    assert openai_chat_to_anthropic({**base, "tool_choice": "none"})["tool_choice"] == {"type": "none"}
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert openai_chat_to_anthropic({**base, "tool_choice": named})["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
    }
    assert openai_chat_to_anthropic({**base, "parallel_tool_calls": False})["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }
    assert "tool_choice" not in openai_chat_to_anthropic(base)


def test_consecutive_same_role_messages_are_merged():
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
            {"role": "assistant", "content": [{"type": "text", "text": "d"}]},
        ],
    }
    out = openai_chat_to_anthropic(body)["messages"]
    assert [m["role"] for m in out] == ["user", "assistant"]
    assert [b["text"] for b in out[0]["content"]] == ["a", "b"]
    assert [b["text"] for b in out[1]["content"]] == ["c", "d"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": "m"}, "'messages' is required"),
        ({"model": "m", "messages": "hi"}, "'messages' is required"),
        ({"model": "m", "messages": []}, "at least one"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "unknown role 'robot'"),
        ({"model": "m", "messages": ["hi"]}, "messages[0] must be a JSON object"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input_audio"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}, "'n'"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}, "max_tokens"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": {}}, "'tools'"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "sometimes"},
            "tool_choice",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{not json"},
                            }
                        ],
                    }
                ],
            },
            "valid JSON",
        ),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
        ("not a dict", "JSON object"),
    ],
)
def test_openai_bodies_that_cannot_convert(body, fragment):
    with pytest.raises(ConversionError) as exc:
        openai_chat_to_anthropic(body)
    assert fragment in str(exc.value)


def test_claude_code_body_to_openai():
    out = anthropic_messages_to_openai_chat(CLAUDE_CODE_BODY)
    assert out["model"] == "deepseek-v4"
    assert out["messages"] == [
        {
            "role": "system",
            "content": CLAUDE_CODE_SYSTEM,
        },
        {"role": "user", "content": "list files"},
        {
            "role": "assistant",
            "content": "Running ls.",
            "reasoning_content": "I should run ls.",
            "tool_calls": [
                {
                    "id": "toolu_01A",
                    "type": "function",
                    "function": {"name": "Bash", "arguments": '{"command":"ls","timeout":5}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "a.py\nb.py"},
        {"role": "user", "content": "now count them"},
    ]
    assert out["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "Bash",
                "description": "Run a shell command",
                "parameters": CLAUDE_CODE_BODY["tools"][0]["input_schema"],
            },
        }
    ]
    assert out["tool_choice"] == "auto"
    assert out["parallel_tool_calls"] is False
    assert out["max_tokens"] == 32000
    assert out["stop"] == ["</done>"]
    assert out["stream"] is True
    assert out["stream_options"] == {"include_usage": True}
    assert out["reasoning_effort"] == "high"
    assert "metadata" not in out and "thinking" not in out and "system" not in out


def test_anthropic_string_content_images_and_tool_result_blocks():
    body = {
        "model": "m",
        "max_tokens": 10,
        "system": "be nice",
        "messages": [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "boom"},
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/png", "data": "AAA"},
                            },
                        ],
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                ],
            },
        ],
    }
    out = anthropic_messages_to_openai_chat(body)["messages"]
    assert out[0] == {"role": "system", "content": "be nice"}
    assert out[1] == {"role": "user", "content": "hello"}
    assert out[2]["content"] is None and out[2]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert out[3] == {"role": "tool", "tool_call_id": "t1", "content": "Error: boom"}
    assert out[4] == {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
            {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
        ],
    }


def test_anthropic_non_stream_has_no_stream_options_and_thinking_mapping():
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    out = anthropic_messages_to_openai_chat(body)
    assert "stream" not in out and "stream_options" not in out and "reasoning_effort" not in out
    for budget, effort in [(1024, "low"), (8000, "medium"), (20000, "high")]:
        thinking = {"type": "enabled", "budget_tokens": budget}
        assert anthropic_messages_to_openai_chat({**body, "thinking": thinking})["reasoning_effort"] == effort
    disabled = anthropic_messages_to_openai_chat({**body, "thinking": {"type": "disabled"}})
    assert "reasoning_effort" not in disabled


def test_anthropic_tool_choice_variants():
    base = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
        "tools": [WEATHER_TOOL_ANTHROPIC],
    }
    assert (
        anthropic_messages_to_openai_chat({**base, "tool_choice": {"type": "any"}})["tool_choice"]
        == "required"
    )
    assert (
        anthropic_messages_to_openai_chat({**base, "tool_choice": {"type": "none"}})["tool_choice"] == "none"
    )
    named = anthropic_messages_to_openai_chat(
        {**base, "tool_choice": {"type": "tool", "name": "get_weather"}}
    )
    assert named["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": "m", "max_tokens": 5}, "'messages' is required"),
        ({"model": "m", "messages": {"role": "user"}}, "'messages' is required"),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "unknown role 'tool'"),
        ({"model": "m", "messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "video"}]}]}, "'video'"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "system": 5}, "'system'"),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            "server tool",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [WEATHER_TOOL_ANTHROPIC],
                "tool_choice": {"type": "tool"},
            },
            "tool_choice",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "a", "name": "f", "input": "ls"}],
                    }
                ],
            },
            "input must be an object",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "stop_sequences": "x"},
            "stop_sequences",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_k": 5}, "'top_k'"),
    ],
)
def test_anthropic_bodies_that_cannot_convert(body, fragment):
    with pytest.raises(ConversionError) as exc:
        anthropic_messages_to_openai_chat(body)
    assert fragment in str(exc.value)


def test_round_trip_anthropic_openai_anthropic_keeps_the_conversation():
    body = {k: v for k, v in CLAUDE_CODE_BODY.items() if k not in ("thinking", "metadata")}
    back = openai_chat_to_anthropic(anthropic_messages_to_openai_chat(body))
    assert back["system"] == [
        {
            "type": "text",
            "text": "You are Claude Code, Anthropic's official CLI for Claude.\n\nWorking directory: /repo",
        }
    ]
    assert back["messages"][1]["content"] == [
        {"type": "text", "text": "Running ls."},
        {"type": "tool_use", "id": "toolu_01A", "name": "Bash", "input": {"command": "ls", "timeout": 5}},
    ]
    assert back["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "a.py\nb.py"},
        {"type": "text", "text": "now count them"},
    ]
    assert back["tools"][0]["input_schema"] == body["tools"][0]["input_schema"]
    assert back["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert (back["max_tokens"], back["stop_sequences"], back["stream"]) == (32000, ["</done>"], True)


def test_round_trip_openai_anthropic_openai_keeps_the_conversation():
    back = anthropic_messages_to_openai_chat(openai_chat_to_anthropic(OPENAI_TOOL_CONVERSATION))
    assert back["messages"][0] == {"role": "system", "content": "You are terse.\n\nUse metric units."}
    assert back["messages"][2]["tool_calls"][1]["function"]["arguments"] == '{"location":"Tokyo","unit":"c"}'
    assert back["messages"][3:] == [
        {"role": "tool", "tool_call_id": "call_a", "content": "18C sunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": "22C rain"},
        {"role": "user", "content": "Thanks. Which is warmer?"},
    ]
    assert back["tools"] == [
        {
            "type": "function",
            "function": {k: v for k, v in WEATHER_TOOL_OPENAI["function"].items() if k != "strict"},
        }
    ]
    assert back["stream_options"] == {"include_usage": True}


def test_stream_usage_helpers():
    body = {"model": "m", "messages": [], "stream": True}
    assert not openai_wants_usage(body)
    assert openai_wants_usage({**body, "stream_options": {"include_usage": True}})
    forced = openai_with_stream_usage({**body, "stream_options": {"include_obfuscation": False}})
    assert forced["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert "stream_options" not in body  # the client's body is not mutated
    assert openai_with_stream_usage({"stream": False}) == {"stream": False}
