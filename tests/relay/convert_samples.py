"""Real-shaped upstream SSE streams (as the OpenAI and Anthropic APIs send them) for converter tests."""

import json

from relay.convert.sse import SSEParser

TOOL_ARGS = '{"location": "San Francisco, CA", "unit": "fahrenheit"}'


def anthropic_event(data: dict) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


def openai_chunk(choices, usage=None, *, with_usage_field=True, cid="chatcmpl-9xYz") -> bytes:
    chunk = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_f9f4fb6dbf",
        "choices": choices,
    }
    if with_usage_field:
        chunk["usage"] = usage
    return f"data: {json.dumps(chunk)}\n\n".encode()


def delta(d: dict, finish=None) -> list[dict]:
    return [{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}]


def anthropic_tool_stream(args: str = TOOL_ARGS, pieces: int = 12) -> bytes:
    """Text then a tool_use block whose JSON input arrives in `pieces` input_json_delta events."""
    size = max(1, -(-len(args) // pieces))
    parts = [args[i : i + size] for i in range(0, len(args), size)]
    events = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "stop_sequence": None,
                "content": [],
                "stop_reason": None,
                "usage": {
                    "input_tokens": 472,
                    "cache_creation_input_tokens": 30,
                    "cache_read_input_tokens": 1000,
                    "output_tokens": 2,
                    "service_tier": "standard",
                },
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Okay, let's check"},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " the weather."}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "input": {},
            },
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
        *[
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": p},
            }
            for p in parts
        ],
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 89},
        },
        {"type": "message_stop"},
    ]
    return b"".join(anthropic_event(e) for e in events)


def anthropic_thinking_stream() -> bytes:
    events = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_01Think",
                "type": "message",
                "role": "assistant",
                "model": "claude-opus-4-1",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 12, "output_tokens": 1},
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "27*453"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": " = 12231"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "12,231"}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
            "usage": {"output_tokens": 40},
        },
        {"type": "message_stop"},
    ]
    return b"".join(anthropic_event(e) for e in events)


def openai_tool_stream(args: str = TOOL_ARGS, pieces: int = 12, *, include_usage: bool = True) -> bytes:
    """Two parallel tool calls, arguments split over many chunks, then finish, usage chunk and [DONE]."""
    size = max(1, -(-len(args) // pieces))
    parts = [args[i : i + size] for i in range(0, len(args), size)]
    out = [
        openai_chunk(
            delta(
                {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ],
                }
            )
        ),
        *[openai_chunk(delta({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})) for p in parts],
        openai_chunk(
            delta(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_2nd",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": ""},
                        }
                    ]
                }
            )
        ),
        openai_chunk(delta({"tool_calls": [{"index": 1, "function": {"arguments": '{"tz": '}}]})),
        openai_chunk(delta({"tool_calls": [{"index": 1, "function": {"arguments": '"UTC"}'}}]})),
        openai_chunk(delta({}, "tool_calls")),
    ]
    if include_usage:
        out.append(
            openai_chunk(
                [],
                {
                    "prompt_tokens": 2006,
                    "completion_tokens": 300,
                    "total_tokens": 2306,
                    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                    "completion_tokens_details": {
                        "reasoning_tokens": 0,
                        "audio_tokens": 0,
                        "accepted_prediction_tokens": 0,
                        "rejected_prediction_tokens": 0,
                    },
                },
            )
        )
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def deepseek_reasoning_stream() -> bytes:
    """DeepSeek/GLM style: reasoning_content deltas, then content, usage on the final chunk, [DONE]."""
    usage = {
        "prompt_tokens": 500,
        "completion_tokens": 60,
        "total_tokens": 560,
        "prompt_tokens_details": {"cached_tokens": 384},
        "prompt_cache_hit_tokens": 384,
        "prompt_cache_miss_tokens": 116,
    }
    return b"".join(
        [
            openai_chunk(delta({"role": "assistant", "content": None, "reasoning_content": ""}), cid="ds-1"),
            openai_chunk(delta({"content": None, "reasoning_content": "Let me think"}), cid="ds-1"),
            openai_chunk(delta({"content": None, "reasoning_content": " hard."}), cid="ds-1"),
            openai_chunk(delta({"content": "Hello", "reasoning_content": None}), cid="ds-1"),
            openai_chunk(delta({"content": " there!", "reasoning_content": None}), cid="ds-1"),
            openai_chunk(delta({"content": "", "reasoning_content": None}, "stop"), usage, cid="ds-1"),
            b"data: [DONE]\n\n",
        ]
    )


def parse(raw: bytes):
    parser = SSEParser()
    return parser.feed(raw) + parser.flush()


def run(converter, raw: bytes, *, finish: bool = True) -> bytes:
    out = []
    for event in parse(raw):
        out.extend(converter.feed(event))
    if finish:
        out.extend(converter.finish())
    return b"".join(out)
