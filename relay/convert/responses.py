"""Non-streaming response bodies (OpenAI chat.completion ⇄ Anthropic message) and error bodies."""

from __future__ import annotations

import time
import uuid

import orjson

from relay.convert.errors import ConversionError
from relay.convert.requests import JSON_OBJECT_TOOL
from relay.convert.shapes import json_array, json_object
from relay.convert.usage import usage_from_anthropic, usage_from_openai, usage_to_anthropic, usage_to_openai

ANTHROPIC_TO_OPENAI_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
OPENAI_TO_ANTHROPIC_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def openai_finish_reason(stop_reason) -> str:
    return ANTHROPIC_TO_OPENAI_FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def anthropic_stop_reason(finish_reason, *, has_tool_calls: bool = False) -> str:
    if has_tool_calls and finish_reason in (None, "stop"):
        return "tool_use"  # some OpenAI-compatible servers end tool calls with "stop"
    if not isinstance(finish_reason, str):
        return "end_turn"
    return OPENAI_TO_ANTHROPIC_STOP.get(finish_reason, "end_turn")


def parse_tool_arguments(raw) -> dict:
    """Tool call arguments as the object Anthropic requires; unparsable text is kept, never lost."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": raw}
    return value if isinstance(value, dict) else {"_raw_arguments": raw}


def anthropic_message_to_openai_chat(resp: dict, *, model: str) -> dict:
    """An Anthropic message response as an OpenAI chat.completion."""
    if not isinstance(resp, dict) or not isinstance(resp.get("content"), list):
        raise ConversionError("upstream response is not an Anthropic message")
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict] = []
    for block in resp["content"]:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            reasoning.append(block["thinking"])
        elif kind == "tool_use" and block.get("name") == JSON_OBJECT_TOOL:
            answer = json_object(block.get("input"))
            texts.append(orjson.dumps(answer).decode())  # json_object mode: the input is the answer
        elif kind == "tool_use":
            args = json_object(block.get("input"))
            tool_calls.append(
                {
                    "id": str(block.get("id") or new_id("call_")),
                    "type": "function",
                    "function": {
                        "name": str(block.get("name") or ""),
                        "arguments": orjson.dumps(args).decode(),
                    },
                }
            )
    message: dict = {"role": "assistant", "content": "".join(texts) if texts or not tool_calls else None}
    json_answer = any(b.get("name") == JSON_OBJECT_TOOL for b in resp["content"] if isinstance(b, dict))
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if tool_calls:
        message["tool_calls"] = tool_calls
    usage = usage_from_anthropic(resp.get("usage"))
    out = {
        "id": _chat_id(resp.get("id")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "stop" if json_answer else openai_finish_reason(resp.get("stop_reason")),
            }
        ],
    }
    if usage is not None:
        out["usage"] = usage_to_openai(usage)
    return out


def _chat_id(upstream_id) -> str:
    return f"chatcmpl-{upstream_id}" if isinstance(upstream_id, str) and upstream_id else new_id("chatcmpl-")


def _message_id(upstream_id) -> str:
    if isinstance(upstream_id, str) and upstream_id:
        return upstream_id if upstream_id.startswith("msg_") else f"msg_{upstream_id}"
    return new_id("msg_")


def openai_chat_to_anthropic_message(resp: dict, *, model: str, thinking: bool = True) -> dict:
    """An OpenAI chat.completion response as an Anthropic message (its reasoning as a thinking
    block unless not `thinking`: the client asked for `thinking.display: "omitted"`)."""
    choices = resp.get("choices") if isinstance(resp, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ConversionError("upstream response is not an OpenAI chat completion")
    choice = choices[0]
    message = json_object(choice.get("message"))
    content: list[dict] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if thinking and isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if isinstance(text, list):  # a few servers answer with content parts
        text = "".join(p["text"] for p in text if isinstance(p, dict) and isinstance(p.get("text"), str))
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal and not text:
        content.append({"type": "text", "text": refusal})
    tool_calls = json_array(message.get("tool_calls"))
    for call in tool_calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        content.append(
            {
                "type": "tool_use",
                "id": str(call.get("id") or new_id("toolu_")),
                "name": str(function.get("name") or ""),
                "input": parse_tool_arguments(function.get("arguments")),
            }
        )
    has_tools = any(block["type"] == "tool_use" for block in content)
    usage = usage_from_openai(resp.get("usage"))
    return {
        "id": _message_id(resp.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": anthropic_stop_reason(choice.get("finish_reason"), has_tool_calls=has_tools),
        "stop_sequence": None,
        "usage": usage_to_anthropic(usage) if usage else {"input_tokens": 0, "output_tokens": 0},
    }


def openai_error_from(status: int, message: str, type_: str, code: str | None = None) -> dict:
    """OpenAI-format error body (the HTTP status travels in the response line, not the body)."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def anthropic_error_from(status: int, message: str, type_: str) -> dict:
    return {"type": "error", "error": {"type": type_, "message": message}}


def upstream_error_message(raw: bytes | str | dict | None) -> str | None:
    """The message of an upstream error body in either format, or None when there is none."""
    body = raw
    if isinstance(raw, bytes | str):
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    if isinstance(error, str):
        return error
    if isinstance(body.get("message"), str):
        return body["message"]
    return None
