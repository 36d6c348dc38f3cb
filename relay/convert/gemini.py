"""Gemini generateContent ⇄ OpenAI Chat Completions (and ⇄ OpenAI images for image models).

Gemini-native clients reach every channel through chat: the request becomes a chat request,
the chat answer (or chat stream) becomes a GenerateContentResponse. Fields chat cannot carry
are refused with a `ConversionError` naming them. Both JSON spellings Google accepts
(`inlineData` and `inline_data`) are read.
"""

from __future__ import annotations

import base64

import orjson

from core.pricing import Usage
from relay.convert.errors import ConversionError
from relay.convert.responses import new_id, parse_tool_arguments, upstream_error_message
from relay.convert.shapes import json_object
from relay.convert.sse import SSEEvent, encode_sse
from relay.convert.streams import StreamConverter
from relay.convert.usage import usage_from_openai

FINISH_REASONS: dict[str | None, str] = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "content_filter": "SAFETY",
}
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "RESOURCE_EXHAUSTED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
REQUEST_FIELDS = {
    "contents",
    "systemInstruction",
    "generationConfig",
    "tools",
    "toolConfig",
    "safetySettings",
    "model",
}
CONFIG_FIELDS = {
    "temperature",
    "topP",
    "maxOutputTokens",
    "stopSequences",
    "candidateCount",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "thinkingConfig",
    "presencePenalty",
    "frequencyPenalty",
    "seed",
    "responseModalities",
    "imageConfig",
}
# Thresholds that ask for no more filtering than the upstream's own: safe to accept unapplied.
PERMISSIVE_THRESHOLDS = {"BLOCK_NONE", "OFF", "HARM_BLOCK_THRESHOLD_UNSPECIFIED"}
_EFFORT_BY_BUDGET = ((0, "none"), (4096, "low"), (16384, "medium"))


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def camelize(node):
    """Google's REST API takes snake_case too: read every object with camelCase keys.

    Keys inside a function's `args`/`response` and inside schemas' `properties` are user data."""
    if isinstance(node, list):
        return [camelize(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        name = _camel(key)
        if name in ("args", "response", "responseJsonSchema", "parametersJsonSchema"):
            out[name] = value
        elif name == "properties" and isinstance(value, dict):
            out[name] = {k: camelize(v) for k, v in value.items()}
        else:
            out[name] = camelize(value)
    return out


def gemini_error(status: int, message: str) -> dict:
    return {"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}}


def _err(field: str, why: str) -> ConversionError:
    return ConversionError(f"'{field}' {why}")


# ------------------------------------------------------------------------------- request: Gemini → chat


def gemini_to_chat(body: dict, *, model: str, stream: bool) -> dict:
    """A generateContent request as a chat request."""
    if not isinstance(body, dict):
        raise ConversionError("request body must be a JSON object")
    body = camelize(body)
    for key in body:
        if key not in REQUEST_FIELDS:
            raise _err(key, "is not supported by this gateway's generateContent")
    _check_safety(body.get("safetySettings"))
    messages: list[dict] = []
    system = body.get("systemInstruction")
    if system is not None:
        text = _system_text(system)
        if text:
            messages.append({"role": "system", "content": text})
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    if not isinstance(contents, list) or not contents:
        raise _err("contents", "is required and must be a non-empty array")
    pending: dict[str, list[str]] = {}  # function name → call ids awaiting their response
    for i, content in enumerate(contents):
        _append_content(messages, content, f"contents[{i}]", pending)
    out: dict = {"model": model, "messages": messages}
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    out.update(_generation_config(body.get("generationConfig")))
    if body.get("tools") is not None:
        tools = _tools(body["tools"])
        if tools:
            out["tools"] = tools
    if body.get("toolConfig") is not None:
        choice = _tool_choice(body["toolConfig"])
        if choice is not None:
            out["tool_choice"] = choice
    return out


def _check_safety(settings) -> None:
    if settings is None:
        return
    if not isinstance(settings, list):
        raise _err("safetySettings", "must be an array")
    for i, setting in enumerate(settings):
        threshold = setting.get("threshold") if isinstance(setting, dict) else None
        if threshold not in PERMISSIVE_THRESHOLDS:
            raise _err(
                f"safetySettings[{i}].threshold",
                f"'{threshold}' cannot be enforced by this gateway (only BLOCK_NONE or OFF)",
            )


def _system_text(system) -> str:
    if isinstance(system, str):
        return system
    if not isinstance(system, dict) or not isinstance(system.get("parts"), list):
        raise _err("systemInstruction", "must be a Content object with parts")
    texts = []
    for j, part in enumerate(system["parts"]):
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            raise _err(f"systemInstruction.parts[{j}]", "can only hold text")
        texts.append(part["text"])
    return "\n".join(texts)


def _append_content(messages: list[dict], content, where: str, pending: dict[str, list[str]]) -> None:
    if not isinstance(content, dict):
        raise _err(where, "must be a Content object")
    role = content.get("role", "user")
    if role not in ("user", "model", "function", "tool"):
        raise _err(f"{where}.role", f"'{role}' is not user or model")
    parts = content.get("parts")
    if not isinstance(parts, list):
        raise _err(f"{where}.parts", "must be an array")
    user_parts: list[dict] = []
    texts: list[str] = []
    calls: list[dict] = []
    for j, part in enumerate(parts):
        at = f"{where}.parts[{j}]"
        if not isinstance(part, dict):
            raise _err(at, "must be an object")
        if part.get("thought") is True:
            continue  # the model's own earlier thoughts: chat upstreams take no reasoning input
        if isinstance(part.get("text"), str):
            if role == "model":
                texts.append(part["text"])
            else:
                user_parts.append({"type": "text", "text": part["text"]})
        elif isinstance(part.get("inlineData"), dict):
            if role == "model":
                raise _err(f"{at}.inlineData", "in a model turn cannot be carried by this route")
            user_parts.append(_inline_part(part["inlineData"], at))
        elif isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            name = str(call.get("name") or "")
            call_id = str(call.get("id") or new_id("call_"))
            pending.setdefault(name, []).append(call_id)
            args = json_object(call.get("args"))
            calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": orjson.dumps(args).decode()},
                }
            )
        elif isinstance(part.get("functionResponse"), dict):
            response = part["functionResponse"]
            name = str(response.get("name") or "")
            waiting = pending.get(name) or []
            call_id = str(response.get("id") or (waiting.pop(0) if waiting else new_id("call_")))
            if response.get("id") and call_id in waiting:
                waiting.remove(call_id)
            result = response.get("response")
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call_id,
                    "content": result if isinstance(result, str) else orjson.dumps(result).decode(),
                }
            )
        else:
            known = [k for k in part if k not in ("thoughtSignature", "thought", "videoMetadata")]
            raise _err(f"{at}.{known[0] if known else 'part'}", "cannot be carried by this route")
    if role == "model":
        if texts or calls:
            message: dict = {"role": "assistant", "content": "".join(texts) or None}
            if calls:
                message["tool_calls"] = calls
            messages.append(message)
    elif user_parts:
        if all(p["type"] == "text" for p in user_parts):
            messages.append({"role": "user", "content": "\n".join(p["text"] for p in user_parts)})
        else:
            messages.append({"role": "user", "content": user_parts})


def _inline_part(data: dict, where: str) -> dict:
    mime = data.get("mimeType")
    payload = data.get("data")
    if not isinstance(mime, str) or not isinstance(payload, str):
        raise _err(f"{where}.inlineData", "needs mimeType and base64 data")
    url = f"data:{mime};base64,{payload}"
    if mime.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": url}}
    if mime == "application/pdf":
        return {"type": "file", "file": {"file_data": url, "filename": "document.pdf"}}
    raise _err(f"{where}.inlineData.mimeType", f"'{mime}' cannot be carried (images and PDF only)")


def _generation_config(config) -> dict:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise _err("generationConfig", "must be an object")
    out: dict = {}
    for key in config:
        if key not in CONFIG_FIELDS:
            raise _err(f"generationConfig.{key}", "is not supported by this gateway")
    for src, dst in (
        ("temperature", "temperature"),
        ("topP", "top_p"),
        ("presencePenalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty"),
        ("seed", "seed"),
    ):
        if config.get(src) is not None:
            if isinstance(config[src], bool) or not isinstance(config[src], int | float):
                raise _err(f"generationConfig.{src}", "must be a number")
            out[dst] = config[src]
    if config.get("maxOutputTokens") is not None:
        value = config["maxOutputTokens"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _err("generationConfig.maxOutputTokens", "must be a positive integer")
        out["max_tokens"] = value
    if config.get("stopSequences") is not None:
        stops = config["stopSequences"]
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _err("generationConfig.stopSequences", "must be an array of strings")
        if stops:
            out["stop"] = stops
    if config.get("candidateCount") not in (None, 1):
        raise _err("generationConfig.candidateCount", "must be 1: this gateway returns one candidate")
    modalities = config.get("responseModalities")
    if modalities is not None and any(m != "TEXT" for m in modalities):
        raise _err("generationConfig.responseModalities", "can only be TEXT for a text model")
    if config.get("imageConfig") is not None:
        raise _err("generationConfig.imageConfig", "applies to image models only")
    out.update(_response_format(config))
    effort = _thinking_effort(config.get("thinkingConfig"))
    if effort is not None:
        out["reasoning_effort"] = effort
    return out


def _response_format(config: dict) -> dict:
    mime = config.get("responseMimeType")
    schema = config.get("responseJsonSchema")
    if schema is None and config.get("responseSchema") is not None:
        schema = openapi_to_json_schema(config["responseSchema"], "generationConfig.responseSchema")
    if mime in (None, "text/plain"):
        if schema is not None:
            raise _err("generationConfig.responseSchema", "needs responseMimeType 'application/json'")
        return {}
    if mime != "application/json":
        raise _err("generationConfig.responseMimeType", f"'{mime}' is not text/plain or application/json")
    if schema is None:
        return {"response_format": {"type": "json_object"}}
    if not isinstance(schema, dict):
        raise _err("generationConfig.responseJsonSchema", "must be a JSON Schema object")
    return {"response_format": {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}}


_TYPES = {
    "STRING": "string",
    "NUMBER": "number",
    "INTEGER": "integer",
    "BOOLEAN": "boolean",
    "ARRAY": "array",
    "OBJECT": "object",
    "NULL": "null",
}
_SCHEMA_KEYS = {
    "format",
    "description",
    "enum",
    "maxItems",
    "minItems",
    "required",
    "minimum",
    "maximum",
    "title",
    "default",
    "example",
    "minLength",
    "maxLength",
    "pattern",
    "minProperties",
    "maxProperties",
}


def openapi_to_json_schema(schema, where: str) -> dict:
    """Gemini's OpenAPI-subset Schema (`type: OBJECT`, `nullable`) as JSON Schema."""
    if not isinstance(schema, dict):
        raise _err(where, "must be a Schema object")
    out: dict = {}
    for key, value in schema.items():
        if key == "type":
            kind = _TYPES.get(str(value).upper())
            if kind is None:
                raise _err(f"{where}.type", f"'{value}' is not a Schema type")
            out["type"] = kind
        elif key == "properties":
            out["properties"] = {
                k: openapi_to_json_schema(v, f"{where}.properties.{k}") for k, v in value.items()
            }
        elif key == "items":
            out["items"] = openapi_to_json_schema(value, f"{where}.items")
        elif key == "anyOf":
            out["anyOf"] = [openapi_to_json_schema(v, f"{where}.anyOf[{i}]") for i, v in enumerate(value)]
        elif key == "example":
            out["examples"] = [value]
        elif key in _SCHEMA_KEYS:
            out[key] = value
        elif key in ("nullable", "propertyOrdering"):
            continue  # nullable is folded into type below; JSON keeps the properties' order itself
        else:
            raise _err(f"{where}.{key}", "cannot be carried as JSON Schema")
    if schema.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _thinking_effort(thinking) -> str | None:
    if thinking is None:
        return None
    if not isinstance(thinking, dict):
        raise _err("generationConfig.thinkingConfig", "must be an object")
    for key in thinking:
        if key not in ("thinkingBudget", "includeThoughts", "thinkingLevel"):
            raise _err(f"generationConfig.thinkingConfig.{key}", "is not supported by this gateway")
    level = thinking.get("thinkingLevel")
    if level is not None:
        effort = {"MINIMAL": "minimal", "LOW": "low", "MEDIUM": "medium", "HIGH": "high"}.get(
            str(level).upper()
        )
        if effort is None:
            raise _err("generationConfig.thinkingConfig.thinkingLevel", f"'{level}' is not a thinking level")
        return effort
    budget = thinking.get("thinkingBudget")
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < -1:
        raise _err("generationConfig.thinkingConfig.thinkingBudget", "must be -1, 0 or a positive integer")
    if budget == -1:
        return "medium"
    for limit, effort in _EFFORT_BY_BUDGET:
        if budget <= limit:
            return effort
    return "high"


def _tools(tools) -> list[dict]:
    if not isinstance(tools, list):
        raise _err("tools", "must be an array")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _err(f"tools[{i}]", "must be an object")
        for key in tool:
            if key != "functionDeclarations":
                raise _err(f"tools[{i}].{key}", "cannot be carried: only functionDeclarations can")
        for j, decl in enumerate(tool.get("functionDeclarations") or []):
            at = f"tools[{i}].functionDeclarations[{j}]"
            if not isinstance(decl, dict) or not isinstance(decl.get("name"), str):
                raise _err(f"{at}.name", "is required")
            function: dict = {"name": decl["name"]}
            if decl.get("description"):
                function["description"] = decl["description"]
            if decl.get("parametersJsonSchema") is not None:
                function["parameters"] = decl["parametersJsonSchema"]
            elif decl.get("parameters") is not None:
                function["parameters"] = openapi_to_json_schema(decl["parameters"], f"{at}.parameters")
            else:
                function["parameters"] = {"type": "object", "properties": {}}
            out.append({"type": "function", "function": function})
    return out


def _tool_choice(config) -> str | dict | None:
    if not isinstance(config, dict):
        raise _err("toolConfig", "must be an object")
    calling = config.get("functionCallingConfig")
    if calling is None:
        return None
    mode = str(calling.get("mode") or "AUTO").upper()
    names = calling.get("allowedFunctionNames") or []
    if mode in ("AUTO", "MODE_UNSPECIFIED"):
        return "auto"
    if mode == "NONE":
        return "none"
    if mode in ("ANY", "VALIDATED"):
        if len(names) == 1:
            return {"type": "function", "function": {"name": names[0]}}
        if len(names) > 1:
            raise _err(
                "toolConfig.functionCallingConfig.allowedFunctionNames",
                "can name one function at most on this route",
            )
        return "required"
    raise _err("toolConfig.functionCallingConfig.mode", f"'{mode}' is not AUTO, ANY or NONE")


def include_thoughts(body: dict) -> bool:
    """`thinkingConfig.includeThoughts`: thoughts come back as `thought` parts only when true
    (Google's default is false)."""
    config = json_object(camelize(body).get("generationConfig")) if isinstance(body, dict) else {}
    return json_object(config.get("thinkingConfig")).get("includeThoughts") is True


def gemini_prompt(body: dict) -> str:
    """The text of the last user turn: the prompt an image model is asked for."""
    body = camelize(body)
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    if not isinstance(contents, list) or not contents:
        raise _err("contents", "is required and must be a non-empty array")
    last = contents[-1] if isinstance(contents[-1], dict) else {}
    texts = []
    for j, part in enumerate(last.get("parts") or []):
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            raise _err(
                f"contents[{len(contents) - 1}].parts[{j}]",
                "cannot be carried to an image model (text prompts only; use /v1/images/edits)",
            )
    prompt = "\n".join(texts).strip()
    if not prompt:
        raise _err("contents", "must end with a user turn holding a text prompt")
    config = body.get("generationConfig") or {}
    for key in config:
        if key not in ("responseModalities", "imageConfig", "candidateCount", "temperature"):
            raise _err(f"generationConfig.{key}", "cannot be carried to an image model")
    return prompt


# ------------------------------------------------------------------------------- answer: chat → Gemini


def usage_metadata(usage: Usage | None) -> dict:
    if usage is None:
        return {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0}
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    out = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": usage.output_tokens,
        "totalTokenCount": prompt + usage.output_tokens,
    }
    if usage.cache_read_tokens:
        out["cachedContentTokenCount"] = usage.cache_read_tokens
    return out


def _call_part(call_id: str, name: str, arguments) -> dict:
    args = parse_tool_arguments(arguments)
    return {"functionCall": {"id": call_id, "name": name, "args": args}}


def chat_to_gemini(chat: dict, *, model: str, thoughts: bool = False) -> dict:
    """A chat.completion as a GenerateContentResponse (its reasoning as `thought` parts if `thoughts`)."""
    choices = chat.get("choices") if isinstance(chat, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ConversionError("upstream response is not an OpenAI chat completion")
    choice = choices[0]
    message = json_object(choice.get("message"))
    parts: list[dict] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if thoughts and isinstance(reasoning, str) and reasoning:
        parts.append({"text": reasoning, "thought": True})
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(p["text"] for p in text if isinstance(p, dict) and isinstance(p.get("text"), str))
    if isinstance(text, str) and text:
        parts.append({"text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            parts.append(
                _call_part(
                    str(call.get("id") or new_id("call_")),
                    str(function.get("name") or ""),
                    function.get("arguments"),
                )
            )
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts or [{"text": ""}]},
                "finishReason": FINISH_REASONS.get(choice.get("finish_reason"), "STOP"),
                "index": 0,
            }
        ],
        "usageMetadata": usage_metadata(usage_from_openai(chat.get("usage"))),
        "modelVersion": model,
        "responseId": new_id(""),
    }


def images_to_gemini(images: dict, *, model: str) -> dict:
    """An OpenAI images response (b64_json) as a GenerateContentResponse with inline images."""
    data = images.get("data") if isinstance(images, dict) else None
    if not isinstance(data, list):
        raise ConversionError("upstream response is not an images response")
    parts = []
    for item in data:
        if isinstance(item, dict) and isinstance(item.get("b64_json"), str):
            parts.append(
                {"inlineData": {"mimeType": _image_mime(item["b64_json"]), "data": item["b64_json"]}}
            )
        if isinstance(item, dict) and isinstance(item.get("revised_prompt"), str):
            parts.insert(0, {"text": item["revised_prompt"]})
    if not any("inlineData" in p for p in parts):
        raise ConversionError("upstream returned no image data")
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0},
        "modelVersion": model,
        "responseId": new_id(""),
    }


def _image_mime(b64: str) -> str:
    head = base64.b64decode(b64[:16] + "=" * (-len(b64[:16]) % 4), validate=False)
    if head.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if head.startswith(b"RIFF"):
        return "image/webp"
    return "image/png"


# ------------------------------------------------------------------------------ stream: chat → Gemini


class ChatToGeminiStream(StreamConverter):
    """OpenAI chat chunks as streamGenerateContent chunks: SSE (`alt=sse`) or one JSON array.

    Function calls are sent whole (as Gemini does) once their arguments are complete; the
    reasoning goes out as `thought` parts only if `thoughts` (`includeThoughts: true`)."""

    def __init__(self, model: str, *, sse: bool = True, thoughts: bool = False):
        super().__init__()
        self.model = model
        self.sse = sse
        self.thoughts = thoughts
        self._id = new_id("")
        self._sent = 0
        self._calls: dict[int, dict] = {}
        self._finish_reason: str | None = None

    def _chunk(self, parts: list[dict], *, final: bool = False) -> bytes:
        candidate: dict = {"content": {"role": "model", "parts": parts}, "index": 0}
        data: dict = {"candidates": [candidate], "modelVersion": self.model, "responseId": self._id}
        if final:
            candidate["finishReason"] = FINISH_REASONS.get(self._finish_reason, "STOP")
            data["usageMetadata"] = usage_metadata(self.usage)
        return self._frame(data)

    def _frame(self, data: dict) -> bytes:
        self._sent += 1
        if self.sse:
            return encode_sse(data)
        return (b"[" if self._sent == 1 else b",\r\n") + orjson.dumps(data)

    def _feed(self, event: SSEEvent) -> list[bytes]:
        if event.data.strip() == "[DONE]":
            return self._end()
        data = self._json(event)
        if data is None:
            return []
        if "error" in data and "choices" not in data:
            return self._upstream_failed(
                {"error": {"message": upstream_error_message(data) or "upstream error"}}
            )
        if isinstance(data.get("usage"), dict):
            self.usage = usage_from_openai(data["usage"]) or self.usage
        out = []
        for choice in data.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            delta = json_object(choice.get("delta"))
            parts = []
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                if self.thoughts:
                    parts.append({"text": reasoning, "thought": True})
                self.output_chars += len(reasoning)
            if isinstance(delta.get("content"), str) and delta["content"]:
                parts.append({"text": delta["content"]})
                self.output_chars += len(delta["content"])
            for call in delta.get("tool_calls") or []:
                if not isinstance(call, dict):
                    continue
                function = json_object(call.get("function"))
                state = self._calls.setdefault(call.get("index", 0), {"id": "", "name": "", "args": []})
                state["id"] = state["id"] or str(call.get("id") or "")
                state["name"] = state["name"] or str(function.get("name") or "")
                if isinstance(function.get("arguments"), str):
                    state["args"].append(function["arguments"])
                    self.output_chars += len(function["arguments"])
            if parts:
                out.append(self._chunk(parts))
            if isinstance(choice.get("finish_reason"), str):
                self._finish_reason = choice["finish_reason"]
                self.completed = True
        return out

    def _end(self) -> list[bytes]:
        self.completed = True
        self._terminated = True
        parts = [
            _call_part(s["id"] or new_id("call_"), s["name"], "".join(s["args"]))
            for s in self._calls.values()
        ]
        out = [self._chunk(parts or [{"text": ""}], final=True)]
        if not self.sse:
            out.append(b"]")
        return out

    def _finish(self) -> list[bytes]:
        return self._end() if self.completed else []

    def _error_event(self, message: str) -> bytes:
        body = gemini_error(502, message)
        if self.sse:
            return encode_sse(body)
        return (b"[" if self._sent == 0 else b",\r\n") + orjson.dumps(body) + b"]"


def models_list(names: list[str]) -> dict:
    """GET /v1beta/models for the models a key can call."""
    return {"models": [model_entry(name) for name in names]}


def model_entry(name: str) -> dict:
    return {
        "name": f"models/{name}",
        "baseModelId": name,
        "version": "001",
        "displayName": name,
        "description": f"{name} via this gateway",
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    }
