"""Request bodies: OpenAI Chat Completions ⇄ Anthropic Messages.

Only what both APIs can express is converted: every top-level field gets the decision its
table in `relay.convert.fields` gives it (carried, honoured or refused), and bodies that
cannot be converted raise `ConversionError` with a message naming the field.
"""

from __future__ import annotations

import re

import orjson

from relay.convert.errors import ConversionError
from relay.convert.fields import ANTHROPIC_TO_OPENAI_CHAT, OPENAI_CHAT_TO_ANTHROPIC, check_fields
from relay.convert.shapes import json_object

DEFAULT_MAX_TOKENS = 4096
"""max_tokens sent to Anthropic when an OpenAI client gave none (Anthropic requires it)."""

_DATA_URL = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+)(?:;[^,]*)?;base64,(?P<data>.*)$", re.DOTALL)
_REASONING_BUDGETS = ((4096, "low"), (16384, "medium"))
REASONING_BUDGETS = {"minimal": 1024, "low": 4096, "medium": 16384, "high": 32768, "xhigh": 65536}
"""Anthropic thinking budget_tokens for each OpenAI reasoning_effort (read back by _REASONING_BUDGETS)."""
ANTHROPIC_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
"""Anthropic output_config.effort → OpenAI reasoning_effort (OpenAI-compatible servers stop at 'high')."""
MIN_THINKING_BUDGET = 1024
JSON_OBJECT_TOOL = "json_object_response"
"""The forced tool that carries OpenAI's json_object mode to Anthropic (its input is the JSON answer)."""
SERVICE_TIERS = {"auto": "auto", "default": "standard_only"}
"""OpenAI service_tier → Anthropic service_tier (read back the other way)."""
CLEAR_THINKING = "clear_thinking_20251015"


def _require_dict(body, what: str = "request body") -> dict:
    if not isinstance(body, dict):
        raise ConversionError(f"{what} must be a JSON object")
    return body


def _messages(body: dict) -> list:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise ConversionError("'messages' is required and must be an array")
    return messages


def _max_tokens(body: dict, *keys: str) -> int | None:
    for key in keys:
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConversionError(f"'{key}' must be a positive integer")
        return value
    return None


def _number(body: dict, key: str) -> float | int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConversionError(f"'{key}' must be a number")
    return value


def _stop_list(value, key: str, *, allow_string: bool = True) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) and allow_string:
        return [value] if value else None
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return [s for s in value if s]  # an empty stop sequence is rejected upstream and means nothing
    raise ConversionError(f"'{key}' must be {'a string or ' if allow_string else ''}an array of strings")


def openai_wants_usage(body: dict) -> bool:
    """Whether an OpenAI client asked for the usage chunk of a stream."""
    options = body.get("stream_options") if isinstance(body, dict) else None
    return isinstance(options, dict) and bool(options.get("include_usage"))


def openai_with_stream_usage(body: dict) -> dict:
    """A copy of an OpenAI request that always gets usage from a streaming upstream."""
    if not isinstance(body, dict) or not body.get("stream"):
        return body
    options = json_object(body.get("stream_options"))
    return {**body, "stream_options": {**options, "include_usage": True}}


# ---------------------------------------------------------------- OpenAI → Anthropic


def openai_chat_to_anthropic(body: dict) -> dict:
    """An OpenAI chat.completions request as an Anthropic /v1/messages request."""
    body = _require_dict(body)
    messages = _messages(body)
    check_fields(body, OPENAI_CHAT_TO_ANTHROPIC, "Anthropic models")
    system: list[dict] = []
    turns: list[dict] = []
    for i, message in enumerate(messages):
        message = _require_dict(message, f"messages[{i}]")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_openai_system_blocks(message.get("content"), i))
        elif role == "user":
            _append_turn(turns, "user", _openai_user_blocks(message.get("content"), i))
        elif role == "assistant":
            _append_turn(turns, "assistant", _openai_assistant_blocks(message, i))
        elif role == "tool":
            _append_turn(turns, "user", [_openai_tool_result(message, i)])
        elif role == "function":
            raise ConversionError(f"messages[{i}]: the deprecated 'function' role is unsupported, use tools")
        else:
            raise ConversionError(f"messages[{i}]: unknown role {role!r}")
    if not turns:
        raise ConversionError("'messages' must contain at least one user or assistant message")

    out: dict = {"model": body.get("model"), "messages": turns}
    max_tokens = _max_tokens(body, "max_completion_tokens", "max_tokens")
    out["max_tokens"] = max_tokens or DEFAULT_MAX_TOKENS
    if system:
        out["system"] = system
    thinking = _openai_thinking(body, max_tokens)
    if thinking is not None:
        out["thinking"] = thinking
        if thinking["type"] == "enabled" and max_tokens is None:
            out["max_tokens"] = thinking["budget_tokens"] + DEFAULT_MAX_TOKENS  # room left for the answer
    thinks = thinking is not None and thinking["type"] != "disabled"
    temperature = _number(body, "temperature")
    if temperature is not None:
        if thinks and temperature != 1:
            raise ConversionError("'temperature' must be 1 (or unset) with reasoning on Anthropic models")
        out["temperature"] = min(max(temperature, 0), 1)  # Anthropic's range is 0–1, OpenAI's 0–2
    top_p = _number(body, "top_p")
    if top_p is not None:
        if thinks and top_p < 0.95:
            raise ConversionError("'top_p' must be at least 0.95 with reasoning on Anthropic models")
        out["top_p"] = top_p
    stop = _stop_list(body.get("stop"), "stop")
    if stop:
        out["stop_sequences"] = stop
    if body.get("stream"):
        out["stream"] = True
    tools = _openai_tools(body.get("tools"))
    if tools:
        out["tools"] = tools
    choice = _openai_tool_choice(body.get("tool_choice"))
    if body.get("parallel_tool_calls") is False and tools and (choice or {}).get("type") != "none":
        choice = dict(choice or {"type": "auto"})
        choice["disable_parallel_tool_use"] = True
    if choice and tools:
        out["tool_choice"] = choice
    _apply_response_format(out, body.get("response_format"), thinks=thinks)
    user = _openai_end_user(body)
    if user:
        out["metadata"] = {"user_id": user}
    tier = body.get("service_tier")
    if tier is not None:
        if not isinstance(tier, str) or tier not in SERVICE_TIERS:
            raise ConversionError(
                f"'service_tier' {tier!r} has no Anthropic equivalent (use {' or '.join(SERVICE_TIERS)})"
            )
        out["service_tier"] = SERVICE_TIERS[tier]
    return out


def _openai_end_user(body: dict) -> str | None:
    """`safety_identifier` (or the older `user` it replaces): Anthropic's `metadata.user_id`."""
    ids = {}
    for key in ("safety_identifier", "user"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ConversionError(f"'{key}' must be a string")
        if value:
            ids[key] = value
    if len(set(ids.values())) > 1:
        raise ConversionError(
            "'safety_identifier' and 'user' differ: Anthropic models take one end-user id (metadata.user_id)"
        )
    return next(iter(ids.values()), None)


def _openai_thinking(body: dict, max_tokens: int | None) -> dict | None:
    """Anthropic `thinking` from `extra_body.thinking` (taken as is) or from `reasoning_effort`."""
    thinking = body.get("thinking")
    if thinking is not None:
        _check_thinking(thinking)
        kind = thinking.get("type")
        budget = thinking.get("budget_tokens")
        display = {"display": thinking["display"]} if thinking.get("display") else {}
        if kind == "enabled":
            if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
                raise ConversionError(f"'thinking.budget_tokens' must be an integer >= {MIN_THINKING_BUDGET}")
            if max_tokens is not None and budget >= max_tokens:
                raise ConversionError("'thinking.budget_tokens' must be less than 'max_tokens'")
            return {"type": "enabled", "budget_tokens": budget, **display}
        if kind in ("adaptive", "disabled"):
            return {"type": kind, **display}
        raise ConversionError("'thinking.type' must be 'enabled', 'adaptive' or 'disabled'")
    effort = body.get("reasoning_effort")
    if effort is None or effort == "none":
        return None
    if not isinstance(effort, str) or effort not in REASONING_BUDGETS:
        names = ", ".join(["none", *REASONING_BUDGETS])
        raise ConversionError(f"'reasoning_effort' must be one of {names}")
    budget = REASONING_BUDGETS[effort]
    if max_tokens is not None:
        if max_tokens <= MIN_THINKING_BUDGET:
            raise ConversionError(
                f"'max_completion_tokens' must exceed {MIN_THINKING_BUDGET} for 'reasoning_effort' "
                "on Anthropic models (reasoning counts against it)"
            )
        budget = min(budget, max_tokens - 1)
    return {"type": "enabled", "budget_tokens": budget}


def _apply_response_format(out: dict, response_format, *, thinks: bool) -> None:
    """json_schema → Anthropic structured output; json_object → one forced tool whose input is the JSON."""
    if response_format is None:
        return
    response_format = _require_dict(response_format, "response_format")
    kind = response_format.get("type")
    if kind == "text":
        return
    if kind == "json_schema":
        spec = _require_dict(response_format.get("json_schema"), "response_format.json_schema")
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise ConversionError("'response_format.json_schema.schema' must be a JSON schema object")
        out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        return
    if kind != "json_object":
        raise ConversionError("'response_format.type' must be 'text', 'json_schema' or 'json_object'")
    clash = "'tools'" if out.get("tools") else "reasoning" if thinks else None
    if clash:
        raise ConversionError(
            f"'response_format' json_object cannot be combined with {clash} on Anthropic models: "
            "use json_schema"
        )
    out["tools"] = [
        {
            "name": JSON_OBJECT_TOOL,
            "description": "Give the answer as one JSON object.",
            "input_schema": {"type": "object"},
        }
    ]
    out["tool_choice"] = {"type": "tool", "name": JSON_OBJECT_TOOL}


def _append_turn(turns: list[dict], role: str, blocks: list[dict]) -> None:
    """Anthropic alternates user/assistant: consecutive same-role messages are merged."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        previous = turns[-1]["content"]
        if role == "user" and blocks[0]["type"] == "tool_result":
            # tool results must lead their user turn
            results = [b for b in previous if b["type"] == "tool_result"]
            others = [b for b in previous if b["type"] != "tool_result"]
            turns[-1]["content"] = results + blocks + others
        else:
            previous.extend(blocks)
        return
    turns.append({"role": role, "content": blocks})


def _openai_text(content, where: str) -> str:
    """Text of a content that may only hold text (system, tool)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for j, part in enumerate(content):
            part = _require_dict(part, f"{where}.content[{j}]")
            if part.get("type") not in ("text", "input_text") or not isinstance(part.get("text"), str):
                raise ConversionError(f"{where}.content[{j}] must be a text part")
            parts.append(part["text"])
        return "\n".join(parts)
    raise ConversionError(f"{where}.content must be a string or an array of content parts")


def _openai_system_blocks(content, i: int) -> list[dict]:
    if isinstance(content, list):
        text_parts = [_openai_text([p], f"messages[{i}]") for p in content]
        return [{"type": "text", "text": t} for t in text_parts if t]
    text = _openai_text(content, f"messages[{i}]")
    return [{"type": "text", "text": text}] if text else []


def _openai_user_blocks(content, i: int) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise ConversionError(f"messages[{i}].content must be a string or an array of content parts")
    blocks = []
    for j, part in enumerate(content):
        where = f"messages[{i}].content[{j}]"
        part = _require_dict(part, where)
        kind = part.get("type")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise ConversionError(f"{where}.text must be a string")
            if part["text"]:
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url"), where))
        elif kind == "file":
            blocks.append(_document_block(part.get("file"), where))
        else:
            raise ConversionError(f"{where}: content part type {kind!r} is not supported by Anthropic models")
    return blocks


def _image_block(image, where: str) -> dict:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise ConversionError(f"{where}.image_url.url must be a string")
    match = _DATA_URL.match(url)
    if match:
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": match["media"], "data": match["data"]},
        }
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise ConversionError(f"{where}: image url must be an http(s) URL or a base64 data URL")


def _document_block(file, where: str) -> dict:
    data = file.get("file_data") if isinstance(file, dict) else None
    match = _DATA_URL.match(data) if isinstance(data, str) else None
    if not match:
        raise ConversionError(f"{where}: only inline files (file_data as a base64 data URL) are supported")
    source = {"type": "base64", "media_type": match["media"], "data": match["data"]}
    return {"type": "document", "source": source}


def _openai_assistant_blocks(message: dict, i: int) -> list[dict]:
    blocks: list[dict] = []
    content = message.get("content")
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        for j, part in enumerate(content):
            part = _require_dict(part, f"messages[{i}].content[{j}]")
            text = part.get("text") if part.get("type") == "text" else part.get("refusal")
            if part.get("type") not in ("text", "refusal") or not isinstance(text, str):
                raise ConversionError(f"messages[{i}].content[{j}] must be a text or refusal part")
            if text:
                blocks.append({"type": "text", "text": text})
    elif content is not None:
        raise ConversionError(f"messages[{i}].content must be a string, an array or null")
    tool_calls = message.get("tool_calls")
    if tool_calls is not None and not isinstance(tool_calls, list):
        raise ConversionError(f"messages[{i}].tool_calls must be an array")
    for j, call in enumerate(tool_calls or []):
        where = f"messages[{i}].tool_calls[{j}]"
        call = _require_dict(call, where)
        function = _require_dict(call.get("function"), f"{where}.function")
        name, call_id = function.get("name"), call.get("id")
        if not isinstance(name, str) or not name or not isinstance(call_id, str) or not call_id:
            raise ConversionError(f"{where} needs a string 'id' and 'function.name'")
        blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": _arguments(function, where)})
    return blocks


def _arguments(function: dict, where: str) -> dict:
    raw = function.get("arguments")
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        raise ConversionError(f"{where}.function.arguments must be a JSON string")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ConversionError(f"{where}.function.arguments is not valid JSON") from None
    if not isinstance(value, dict):
        raise ConversionError(f"{where}.function.arguments must encode a JSON object")
    return value


def _openai_tool_result(message: dict, i: int) -> dict:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise ConversionError(f"messages[{i}].tool_call_id must be a non-empty string")
    content = message.get("content")
    block: dict = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, list):
        texts = [_openai_text([p], f"messages[{i}]") for p in content]
        block["content"] = [{"type": "text", "text": t} for t in texts if t]
    else:
        block["content"] = _openai_text(content, f"messages[{i}]")
    return block


def _openai_tools(tools) -> list[dict]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise ConversionError("'tools' must be an array")
    out = []
    for j, tool in enumerate(tools):
        tool = _require_dict(tool, f"tools[{j}]")
        if tool.get("type", "function") != "function":
            kind = tool.get("type")
            raise ConversionError(f"tools[{j}]: tool type {kind!r} is not supported by Anthropic models")
        function = _require_dict(tool.get("function"), f"tools[{j}].function")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise ConversionError(f"tools[{j}].function.name must be a non-empty string")
        schema = function.get("parameters")
        if schema is None:
            schema = {"type": "object", "properties": {}}
        converted = {"name": name, "input_schema": _require_dict(schema, f"tools[{j}].function.parameters")}
        description = function.get("description")
        if isinstance(description, str) and description:
            converted["description"] = description
        out.append(converted)
    return out


def _openai_tool_choice(choice) -> dict | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            return {"type": "tool", "name": name}
    raise ConversionError("'tool_choice' must be 'auto', 'required', 'none' or a named function")


# ---------------------------------------------------------------- Anthropic → OpenAI


def anthropic_messages_to_openai_chat(body: dict) -> dict:
    """An Anthropic /v1/messages request as an OpenAI chat.completions request."""
    body = _require_dict(body)
    messages = _messages(body)
    out_messages: list[dict] = []
    system = _anthropic_system_text(body.get("system"))
    if system:
        out_messages.append({"role": "system", "content": system})
    for i, message in enumerate(messages):
        message = _require_dict(message, f"messages[{i}]")
        role = message.get("role")
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        elif not isinstance(content, list):
            raise ConversionError(f"messages[{i}].content must be a string or an array of content blocks")
        if role == "system":
            # Claude Code sends its reminders this way to non-Claude models: OpenAI takes them in place
            text = _anthropic_system_text(content, f"messages[{i}].content")
            if text:
                out_messages.append({"role": "system", "content": text})
        elif role == "user":
            out_messages.extend(_anthropic_user_messages(content, i))
        elif role == "assistant":
            converted = _anthropic_assistant_message(content, i)
            if converted:
                out_messages.append(converted)
        else:
            raise ConversionError(
                f"messages[{i}]: unknown role {role!r} (expected 'user', 'assistant' or 'system')"
            )
    if not out_messages:
        raise ConversionError("'messages' must contain at least one message")

    check_fields(body, ANTHROPIC_TO_OPENAI_CHAT, "OpenAI-compatible models")
    _clear_thinking(out_messages, body.get("context_management"))
    out: dict = {"model": body.get("model"), "messages": out_messages}
    max_tokens = _max_tokens(body, "max_tokens")
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    for key in ("temperature", "top_p"):
        value = _number(body, key)
        if value is not None:
            out[key] = value
    stop = _stop_list(body.get("stop_sequences"), "stop_sequences", allow_string=False)
    if stop:
        out["stop"] = stop
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    tools = _anthropic_tools(body.get("tools"))
    if tools:
        out["tools"] = tools
        choice = body.get("tool_choice")
        if choice is not None:
            out["tool_choice"] = _anthropic_tool_choice(choice)
            if isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True:
                out["parallel_tool_calls"] = False
    output_config = _anthropic_output_config(body)
    _check_thinking(body.get("thinking"))
    effort = output_config.get("effort") or _reasoning_effort(body.get("thinking"))
    if effort:
        out["reasoning_effort"] = effort
    if "format" in output_config:
        out["response_format"] = output_config["format"]
    user = _anthropic_end_user(body.get("metadata"))
    if user:
        out["user"] = user
    tier = body.get("service_tier")
    if tier is not None:
        tiers = {v: k for k, v in SERVICE_TIERS.items()}
        if not isinstance(tier, str) or tier not in tiers:
            raise ConversionError(f"'service_tier' must be one of {', '.join(tiers)}")
        out["service_tier"] = tiers[tier]
    return out


def _anthropic_end_user(metadata) -> str | None:
    """`metadata.user_id`, the end-user id OpenAI takes as `user`."""
    if metadata is None:
        return None
    metadata = _require_dict(metadata, "metadata")
    for key in metadata:
        if key != "user_id":
            raise ConversionError(f"'metadata.{key}' is not supported (only 'metadata.user_id')")
    user = metadata.get("user_id")
    if user is not None and not isinstance(user, str):
        raise ConversionError("'metadata.user_id' must be a string")
    return user or None


def _clear_thinking(messages: list[dict], context_management) -> None:
    """Apply `context_management`'s clear_thinking edit to the reasoning history sent upstream.

    Claude Code sends `keep: "all"` (nothing to clear); `{"type": "thinking_turns", "value": N}`
    keeps the reasoning of the last N assistant turns that have some (Anthropic's default is 1).
    Other edits (clearing tool results past a token threshold) cannot be applied faithfully here."""
    if context_management is None:
        return
    config = _require_dict(context_management, "context_management")
    for key in config:
        if key != "edits":
            raise ConversionError(f"'context_management.{key}' is not supported by OpenAI-compatible models")
    edits = config.get("edits") or []
    if not isinstance(edits, list):
        raise ConversionError("'context_management.edits' must be an array")
    for j, edit in enumerate(edits):
        where = f"context_management.edits[{j}]"
        edit = _require_dict(edit, where)
        if edit.get("type") != CLEAR_THINKING:
            raise ConversionError(
                f"'{where}.type' {edit.get('type')!r} cannot be applied for OpenAI-compatible models "
                f"(only {CLEAR_THINKING})"
            )
        for key in edit:
            if key not in ("type", "keep"):
                raise ConversionError(f"'{where}.{key}' is not supported by OpenAI-compatible models")
        keep = edit.get("keep", {"type": "thinking_turns", "value": 1})
        if keep == "all":
            continue
        value = keep.get("value") if isinstance(keep, dict) and keep.get("type") == "thinking_turns" else None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConversionError(f"'{where}.keep' must be 'all' or {{'type': 'thinking_turns', 'value': N}}")
        thinking_turns = [m for m in messages if m["role"] == "assistant" and "reasoning_content" in m]
        for message in thinking_turns[: max(len(thinking_turns) - value, 0)]:
            del message["reasoning_content"]


def _anthropic_output_config(body: dict) -> dict:
    """`output_config` (effort, format) and the beta `output_format`, in OpenAI terms."""
    config = body.get("output_config")
    if config is None:
        config = {}
    config = _require_dict(config, "output_config")
    for key in config:
        if key not in ("effort", "format"):
            raise ConversionError(f"'output_config.{key}' is not supported by OpenAI-compatible models")
    out: dict = {}
    effort = config.get("effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in ANTHROPIC_EFFORTS:
            raise ConversionError(f"'output_config.effort' must be one of {', '.join(ANTHROPIC_EFFORTS)}")
        out["effort"] = ANTHROPIC_EFFORTS[effort]
    formats = [(k, v) for k, v in (("output_config.format", config.get("format")),) if v is not None]
    if body.get("output_format") is not None:
        formats.append(("output_format", body["output_format"]))
    if len(formats) > 1:
        raise ConversionError("give either 'output_config.format' or 'output_format', not both")
    if formats:
        out["format"] = _response_format_from_anthropic(*formats[0])
    return out


def _response_format_from_anthropic(where: str, fmt) -> dict:
    fmt = _require_dict(fmt, where)
    schema = fmt.get("schema")
    if fmt.get("type") != "json_schema" or not isinstance(schema, dict):
        raise ConversionError(f"'{where}' must be {{'type': 'json_schema', 'schema': {{...}}}}")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}


def _anthropic_system_text(system, where: str = "system") -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        texts = []
        for j, block in enumerate(system):
            block = _require_dict(block, f"{where}[{j}]")
            if block.get("type") != "text" or not isinstance(block.get("text"), str):
                raise ConversionError(f"{where}[{j}] must be a text block")
            if block["text"]:
                texts.append(block["text"])
        return "\n\n".join(texts)
    raise ConversionError(f"'{where}' must be a string or an array of text blocks")


def _text_of(block: dict, where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise ConversionError(f"{where}.text must be a string")
    return text


def _anthropic_image_part(block: dict, where: str) -> dict:
    source = _require_dict(block.get("source"), f"{where}.source")
    kind = source.get("type")
    if kind == "base64":
        media, data = source.get("media_type"), source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise ConversionError(f"{where}.source needs string 'media_type' and 'data'")
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if kind == "url" and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise ConversionError(f"{where}: image source type {kind!r} is not supported by OpenAI-compatible models")


def _anthropic_document_part(block: dict, where: str) -> dict:
    source = _require_dict(block.get("source"), f"{where}.source")
    kind = source.get("type")
    if kind == "text" and isinstance(source.get("data"), str):
        return {"type": "text", "text": source["data"]}
    if kind == "base64" and isinstance(source.get("data"), str) and isinstance(source.get("media_type"), str):
        title = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
        url = f"data:{source['media_type']};base64,{source['data']}"
        return {"type": "file", "file": {"filename": title, "file_data": url}}
    raise ConversionError(f"{where}: document source type {kind!r} is unsupported by OpenAI-style models")


def _anthropic_user_messages(content: list, i: int) -> list[dict]:
    """Tool results become `tool` messages (first, as OpenAI requires), the rest one user message."""
    tool_messages: list[dict] = []
    parts: list[dict] = []
    for j, block in enumerate(content):
        where = f"messages[{i}].content[{j}]"
        block = _require_dict(block, where)
        kind = block.get("type")
        if kind == "text":
            text = _text_of(block, where)
            if text:
                parts.append({"type": "text", "text": text})
        elif kind == "image":
            parts.append(_anthropic_image_part(block, where))
        elif kind == "document":
            parts.append(_anthropic_document_part(block, where))
        elif kind == "tool_result":
            message, images = _anthropic_tool_result(block, where)
            tool_messages.append(message)
            parts.extend(images)
        else:
            raise ConversionError(f"{where}: block type {kind!r} is not supported in a user message")
    out = list(tool_messages)
    if parts:
        if all(p["type"] == "text" for p in parts):
            out.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _anthropic_tool_result(block: dict, where: str) -> tuple[dict, list[dict]]:
    """OpenAI tool messages hold text only: images of a result follow in the next user message."""
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise ConversionError(f"{where}.tool_use_id must be a non-empty string")
    content = block.get("content")
    texts: list[str] = []
    images: list[dict] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for k, item in enumerate(content):
            item_where = f"{where}.content[{k}]"
            item = _require_dict(item, item_where)
            if item.get("type") == "text":
                texts.append(_text_of(item, item_where))
            elif item.get("type") == "image":
                images.append(_anthropic_image_part(item, item_where))
            elif item.get("type") == "document":
                part = _anthropic_document_part(item, item_where)
                (texts.append(part["text"]) if part["type"] == "text" else images.append(part))
            else:
                raise ConversionError(f"{item_where}: block type {item.get('type')!r} is not supported")
    elif content is not None:
        raise ConversionError(f"{where}.content must be a string or an array of blocks")
    text = "\n".join(texts)
    if block.get("is_error") is True:
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": call_id, "content": text}, images


def _anthropic_assistant_message(content: list, i: int) -> dict | None:
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[dict] = []
    for j, block in enumerate(content):
        where = f"messages[{i}].content[{j}]"
        block = _require_dict(block, where)
        kind = block.get("type")
        if kind == "text":
            texts.append(_text_of(block, where))
        elif kind == "thinking":
            if isinstance(block.get("thinking"), str) and block["thinking"]:
                reasoning.append(block["thinking"])
        elif kind == "redacted_thinking":
            continue  # encrypted for Anthropic only: meaningless to another provider
        elif kind == "tool_use":
            name, call_id, args = block.get("name"), block.get("id"), block.get("input", {})
            if not isinstance(name, str) or not name or not isinstance(call_id, str) or not call_id:
                raise ConversionError(f"{where} needs a string 'id' and 'name'")
            if not isinstance(args, dict):
                raise ConversionError(f"{where}.input must be an object")
            tool_calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": orjson.dumps(args).decode()},
                }
            )
        else:
            raise ConversionError(f"{where}: block type {kind!r} is not supported in an assistant message")
    if not texts and not tool_calls and not reasoning:
        return None
    message: dict = {"role": "assistant", "content": "".join(texts) if texts else None}
    if reasoning:
        message["reasoning_content"] = "\n".join(reasoning)
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _anthropic_tools(tools) -> list[dict]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise ConversionError("'tools' must be an array")
    out = []
    for j, tool in enumerate(tools):
        tool = _require_dict(tool, f"tools[{j}]")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise ConversionError(f"tools[{j}].name must be a non-empty string")
        if tool.get("type") not in (None, "custom") or "input_schema" not in tool:
            raise ConversionError(
                f"tools[{j}] ({name}): Anthropic server tool type {tool.get('type')!r} "
                "is not supported by OpenAI-compatible models"
            )
        schema = _require_dict(tool["input_schema"], f"tools[{j}].input_schema")
        function = {"name": name, "parameters": schema}
        if isinstance(tool.get("description"), str) and tool["description"]:
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out


def _anthropic_tool_choice(choice) -> str | dict:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool" and isinstance(choice.get("name"), str) and choice["name"]:
        return {"type": "function", "function": {"name": choice["name"]}}
    raise ConversionError("'tool_choice' must be an object of type 'auto', 'any', 'none' or named 'tool'")


def _check_thinking(thinking) -> None:
    """`thinking` keys; `display` is honoured on an OpenAI channel's answer (see `shows_thinking`)."""
    if thinking is None:
        return
    thinking = _require_dict(thinking, "thinking")
    for key in thinking:
        if key not in ("type", "budget_tokens", "display"):
            raise ConversionError(f"'thinking.{key}' is not a thinking setting this route can carry")
    if thinking.get("type") not in ("enabled", "adaptive", "disabled"):
        raise ConversionError("'thinking.type' must be 'enabled', 'adaptive' or 'disabled'")
    if thinking.get("display") not in (None, "summarized", "omitted"):
        raise ConversionError("'thinking.display' must be 'summarized' or 'omitted'")


def shows_thinking(body: dict) -> bool:
    """Whether an Anthropic client wants the reasoning back: not with `thinking.display: "omitted"`."""
    thinking = body.get("thinking") if isinstance(body, dict) else None
    return not (isinstance(thinking, dict) and thinking.get("display") == "omitted")


def _reasoning_effort(thinking) -> str | None:
    """Anthropic extended thinking as an OpenAI reasoning effort: by budget, or dropped."""
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
        return None
    budget = thinking.get("budget_tokens")
    if thinking["type"] == "adaptive" or isinstance(budget, bool) or not isinstance(budget, int):
        return "medium"
    for limit, effort in _REASONING_BUDGETS:
        if budget <= limit:
            return effort
    return "high"
