"""Anthropic-format endpoints: messages (with the real SSE event sequence), count_tokens, models."""

from __future__ import annotations

import orjson
from aiohttp import web

from .call import BadRequest, Call, Stream
from .textgen import (
    IMAGE_TOKENS,
    count_tokens,
    cut,
    digest,
    json_pieces,
    new_id,
    pieces,
    reply_text,
    structured_text,
    thinking_text,
    tool_arguments,
)

CACHE_MIN_TOKENS = 1024
MODELS = [
    ("claude-opus-4-6", "Claude Opus 4.6", "2026-02-05T00:00:00Z"),
    ("claude-sonnet-4-5", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
]
ERRORS = {
    "500": (500, "api_error", "Internal server error"),
    "503": (503, "overloaded_error", "Overloaded"),
    "529": (529, "overloaded_error", "Overloaded"),
}


def error(call: Call, status: int, type_: str, message: str, headers: dict | None = None) -> web.Response:
    request_id = new_id("req_")
    body = {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id}
    return call.json(body, status=status, headers={"request-id": request_id, **(headers or {})})


def auth_error(call: Call, key: str | None) -> web.Response:
    return error(
        call, 401, "authentication_error", "invalid x-api-key" if key else "x-api-key header is required"
    )


def rate_limit_error(call: Call, headers: dict, *, concurrency: bool) -> web.Response:
    what = "Number of concurrent connections" if concurrency else "This request would exceed the rate limit"
    message = f"{what} for your organization has exceeded your rate limit. Please try again later."
    return error(call, 429, "rate_limit_error", message, headers=headers)


def server_error(call: Call, kind: str) -> web.Response:
    status, type_, message = ERRORS[kind]
    return error(call, status, type_, message)


def bad_request(call: Call, exc: BadRequest) -> web.Response:
    type_ = {404: "not_found_error", 413: "request_too_large"}.get(exc.status, "invalid_request_error")
    return error(call, exc.status, type_, exc.message)


def not_found(call: Call) -> web.Response:
    return error(call, 404, "not_found_error", "Not Found")


def _block_text(block: dict) -> tuple[str, int]:
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", "")), 0
    if kind == "thinking":
        return str(block.get("thinking", "")), 0
    if kind == "tool_use":
        return f"{block.get('name', '')} {orjson.dumps(block.get('input', {})).decode()}", 0
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict)), 0
        return str(content or ""), 0
    return "", IMAGE_TOKENS


def _segments(body: dict) -> list[tuple[str, int, bool]]:
    """(text, extra tokens, has cache_control) in prompt order: tools, system, messages."""
    segs: list[tuple[str, int, bool]] = []
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise BadRequest("tools: Input should be a valid list of objects")
    for tool in tools:
        segs.append((orjson.dumps(tool).decode(), 0, "cache_control" in tool))
    system = body.get("system")
    if isinstance(system, str):
        segs.append((system, 0, False))
    elif isinstance(system, list):
        for block in system:
            if not isinstance(block, dict) or block.get("type") != "text":
                raise BadRequest("system: blocks must be text blocks")
            segs.append((str(block.get("text", "")), 0, "cache_control" in block))
    elif system is not None:
        raise BadRequest("system: Input should be a valid string or list of text blocks")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            segs.append((content, 0, False))
        elif isinstance(content, list):
            for block in content:
                if not isinstance(block, dict):
                    raise BadRequest(f"messages.{i}.content: blocks must be objects")
                text, extra = _block_text(block)
                segs.append((text, extra, "cache_control" in block))
        else:
            raise BadRequest(f"messages.{i}.content: Input should be a valid string or list")
    return segs


def input_tokens(body: dict) -> int:
    return max(sum(count_tokens(t) + e for t, e, _ in _segments(body)), 1)


def analyse(call: Call) -> tuple[int, int, int]:
    """(input_tokens, cache_creation_input_tokens, cache_read_input_tokens) for a messages request."""
    segs = _segments(call.body)
    total = max(sum(count_tokens(t) + e for t, e, _ in segs), 1)
    last = max((i for i, s in enumerate(segs) if s[2]), default=-1)
    if last < 0:
        return total, 0, 0
    prefix = segs[: last + 1]
    prefix_tokens = sum(count_tokens(t) + e for t, e, _ in prefix)
    if prefix_tokens < CACHE_MIN_TOKENS:
        return total, 0, 0
    if call.sim.cache.hit(call.upstream, call.model, digest([t for t, _, _ in prefix])):
        return total - prefix_tokens, 0, prefix_tokens
    return total - prefix_tokens, prefix_tokens, 0


def _last_text(messages: list) -> tuple[str, bool]:
    """Text of the last user turn and whether it carries tool results."""
    message = messages[-1]
    content = message.get("content")
    if isinstance(content, str):
        return content, _ran_a_tool(messages)
    return "\n".join(_block_text(b)[0] for b in content), _ran_a_tool(messages)


def _ran_a_tool(messages: list) -> bool:
    """A conversation that already ran a tool gets text: one tool round each, as agents' loops end."""
    return any(
        isinstance(m.get("content"), list) and any(b.get("type") == "tool_result" for b in m["content"])
        for m in messages
    )


def _chosen_tool(body: dict, has_result: bool) -> tuple[dict | None, bool]:
    """The tool to call (or None) and whether a short text block comes before it."""
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {"type": "auto"}
    kind = choice.get("type") if isinstance(choice, dict) else None
    if not tools or kind == "none" or has_result:
        return None, False
    if kind == "tool":
        for tool in tools:
            if tool.get("name") == choice.get("name"):
                return tool, False
        raise BadRequest(f"tool_choice: no tool named '{choice.get('name')}' in tools")
    return tools[0], kind == "auto"


def _positive_int(body: dict, name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest(f"{name}: Field required" if value is None else f"{name}: Input should be >= 1")
    return value


def _output_schema(body: dict) -> dict | None:
    """The JSON schema of structured outputs (`output_config.format`, beta `output_format`), if asked."""
    config = body.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise BadRequest("output_config: Input should be a valid dictionary")
    effort = (config or {}).get("effort")
    if effort is not None and effort not in ("low", "medium", "high", "xhigh", "max"):
        raise BadRequest("output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
    fmt = (config or {}).get("format") or body.get("output_format")
    if fmt is None:
        return None
    schema = fmt.get("schema") if isinstance(fmt, dict) else None
    if not isinstance(schema, dict) or fmt.get("type") != "json_schema":
        raise BadRequest("output_config.format: Input should be {'type': 'json_schema', 'schema': {...}}")
    return schema


def build(call: Call) -> tuple[list[dict], str, str | None, dict]:
    """Content blocks, stop_reason, stop_sequence and usage for a messages request."""
    body = call.body
    if not call.model:
        raise BadRequest("model: Field required")
    max_tokens = _positive_int(body, "max_tokens")
    fresh, creation, read = analyse(call)
    last, has_result = _last_text(body["messages"])
    tool, preface = _chosen_tool(body, has_result)
    blocks: list[dict] = []
    output = 0
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        text = thinking_text(last)
        blocks.append({"type": "thinking", "thinking": text, "signature": new_id("sig", 64)})
        output += count_tokens(text)
    stop_reason, stop_sequence = "end_turn", None
    if tool is not None:
        if preface:
            text = f"I'll use the {tool.get('name', 'tool')} tool."
            blocks.append({"type": "text", "text": text})
            output += count_tokens(text)
        args = tool_arguments(tool.get("input_schema"), last)
        blocks.append(
            {"type": "tool_use", "id": new_id("toolu_"), "name": tool.get("name", ""), "input": args}
        )
        output += count_tokens(tool.get("name", "") + orjson.dumps(args).decode())
        stop_reason = "tool_use"
    elif (schema := _output_schema(body)) is not None:
        text = structured_text(schema, last)
        blocks.append({"type": "text", "text": text})
        output += count_tokens(text)
    else:
        stops = body.get("stop_sequences")
        text = reply_text(call.upstream, call.model, last, call.rule.output_tokens)
        text, why = cut(text, max(max_tokens - output, 0), stops if isinstance(stops, list) else None)
        if why == "max_tokens":
            stop_reason = "max_tokens"
        elif why:
            stop_reason, stop_sequence = "stop_sequence", why.split(":", 1)[1]
        blocks.append({"type": "text", "text": text})
        output += count_tokens(text)
    usage = {
        "input_tokens": fresh,
        "cache_creation_input_tokens": creation,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": creation, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output,
        "service_tier": "standard",
    }
    return blocks, stop_reason, stop_sequence, usage


async def messages(call: Call) -> web.StreamResponse:
    blocks, stop_reason, stop_sequence, usage = build(call)
    message = {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage,
    }
    request_id = new_id("req_")
    if call.body.get("stream"):
        return await _stream(call, message, request_id)
    if call.rule.error == "garbage":
        call.status = "200"
        return web.Response(
            body=b'{"type": "message", "content": [{"type": "te',
            content_type="application/json",
            headers={"request-id": request_id},
        )
    return call.json(message, headers={"request-id": request_id})


def _event(name: str, data: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


STREAM_ERROR = _event(
    "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
)


def _deltas(block: dict) -> tuple[dict, list[dict]]:
    """The content_block_start payload and the deltas that rebuild the block."""
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": ""}, [
            {"type": "text_delta", "text": p} for p in pieces(block["text"])
        ]
    if kind == "thinking":
        deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces(block["thinking"])]
        return {"type": "thinking", "thinking": "", "signature": ""}, [
            *deltas,
            {"type": "signature_delta", "signature": block["signature"]},
        ]
    partial = orjson.dumps(block["input"]).decode()
    return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}, [
        {"type": "input_json_delta", "partial_json": p} for p in json_pieces(partial)
    ]


async def _stream(call: Call, message: dict, request_id: str) -> web.StreamResponse:
    usage = message["usage"]
    plan = [_deltas(block) for block in message["content"]]
    stream = Stream(call, sum(len(d) + 2 for _, d in plan) + 4, STREAM_ERROR)
    await stream.start({"request-id": request_id})
    start_usage = dict(usage, output_tokens=1)
    await stream.send(
        _event(
            "message_start",
            {
                "type": "message_start",
                "message": dict(message, content=[], stop_reason=None, stop_sequence=None, usage=start_usage),
            },
        )
    )
    for index, (start, deltas) in enumerate(plan):
        await stream.send(
            _event(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
            )
        )
        if index == 0:
            await stream.send(_event("ping", {"type": "ping"}))
        if call.rule.error == "garbage":
            await stream.send(b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n')
            await stream.send(_event("message_stop", {"type": "message_stop"}))
            await stream.resp.write_eof()
            return stream.resp
        for delta in deltas:
            await stream.send(
                _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        await stream.send(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    final_usage = {
        k: usage[k]
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    }
    await stream.send(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]},
                "usage": final_usage,
            },
        )
    )
    await stream.send(_event("message_stop", {"type": "message_stop"}))
    await stream.resp.write_eof()
    return stream.resp


async def count_tokens_endpoint(call: Call) -> web.Response:
    if not call.model:
        raise BadRequest("model: Field required")
    return call.json({"input_tokens": input_tokens(call.body)}, headers={"request-id": new_id("req_")})


async def models(call: Call) -> web.Response:
    data = [
        {"type": "model", "id": m, "display_name": name, "created_at": created} for m, name, created in MODELS
    ]
    return call.json(
        {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]},
        headers={"request-id": new_id("req_")},
    )
