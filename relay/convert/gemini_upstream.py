"""OpenAI Chat Completions ⇄ a Gemini API upstream (a channel of kind `gemini`).

The other direction of `relay.convert.gemini` (which serves Gemini-native clients from chat
channels): a chat request becomes a GenerateContentRequest, a GenerateContentResponse (or its
SSE stream) a chat.completion (or chat chunks). Anthropic clients reach a Gemini channel through
chat, composed with the Anthropic ⇄ chat converters; Gemini-native clients pass through. What
Gemini cannot carry is refused with a `ConversionError` naming the field.
"""

from __future__ import annotations

import re
import time

import orjson

from core.pricing import Usage
from relay.convert.errors import ConversionError
from relay.convert.gemini import camelize, gemini_error
from relay.convert.responses import new_id, openai_error_from, upstream_error_message
from relay.convert.shapes import json_object
from relay.convert.sse import OPENAI_DONE, SSEEvent, encode_sse
from relay.convert.streams import StreamConverter
from relay.convert.usage import _get, usage_to_openai

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[^,]*)?;base64,(?P<data>.*)$", re.DOTALL)
THINKING_BUDGETS = {"none": 0, "minimal": 1024, "low": 4096, "medium": 16384, "high": 24576, "xhigh": 32768}
"""Gemini thinkingBudget for each OpenAI reasoning_effort (`relay.convert.gemini` reads them back)."""
SKIP_SIGNATURE = "skip_thought_signature_validator"
"""Google's documented placeholder for function calls in history that did not come from Gemini
(chat clients do not keep thought signatures; Gemini 3 refuses a call part without one)."""
_UNCARRIED = ("logprobs", "top_logprobs", "logit_bias", "audio", "prediction", "web_search_options")
# Fields the conversion honours without sending them (their meaning holds on a Gemini channel),
# as the OpenAI → Anthropic table does (relay/convert/fields.py): the model and stream go in the
# URL, usage always comes back, and the rest are hints or tags with no effect on the answer.
_HONOURED = {
    "model",
    "stream",
    "stream_options",
    "user",  # an end-user tag for the provider's abuse monitoring; the gateway records the key
    "safety_identifier",
    "metadata",  # OpenAI attaches it only to stored completions, and `store: true` is refused
    "prompt_cache_key",  # cache-routing hints: Gemini's implicit cache is keyed by the prompt
    "prompt_cache_retention",
}
# Fields accepted only at the value that asks for nothing; any other value is a 400 naming it.
_INERT = {
    "store": (False,),  # nothing stores chat completions on this route
    "verbosity": ("medium",),  # the default; Gemini has no verbosity control
    "service_tier": ("auto", "default"),  # Gemini's API has one tier
}
_KNOWN = {
    *_HONOURED,
    *_INERT,
    *_UNCARRIED,
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "n",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "reasoning_effort",
    "thinking",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "modalities",
}
AUDIO_FORMATS = {"wav": "audio/wav", "mp3": "audio/mp3"}
FINISH_REASONS = {"MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter"}
FILTERED = {"BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"}


def _err(field: str, why: str) -> ConversionError:
    return ConversionError(f"'{field}' {why}")


# ------------------------------------------------------------------------------- request: chat → Gemini


def chat_to_gemini_request(body: dict) -> dict:
    """A chat.completions request as a GenerateContentRequest (model and stream go in the URL)."""
    if not isinstance(body, dict):
        raise ConversionError("request body must be a JSON object")
    for key in body:
        if key not in _KNOWN:
            raise _err(key, "cannot be carried to a Gemini model")
    for key in _UNCARRIED:
        if body.get(key) not in (None, False):
            raise _err(key, "cannot be carried to a Gemini model")
    for key, inert in _INERT.items():
        value = body.get(key)
        if value is not None and not any(value == v and type(value) is type(v) for v in inert):
            raise _err(
                key, f"{value!r} cannot be honoured on a Gemini model (only {', '.join(map(repr, inert))})"
            )
    if body.get("n") not in (None, 1):
        raise _err("n", "must be 1 on a Gemini model (one candidate is returned)")
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise _err("modalities", "other than ['text'] cannot be carried to a Gemini model")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _err("messages", "is required and must be an array")
    system, contents = _contents(messages)
    if not contents:
        raise _err("messages", "must contain at least one user or assistant message")
    out: dict = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    config = _generation_config(body)
    if config:
        out["generationConfig"] = config
    tools = _tools(body.get("tools"))
    if tools:
        out["tools"] = [{"functionDeclarations": tools}]
        if body.get("parallel_tool_calls") is False:
            raise _err("parallel_tool_calls", "false cannot be enforced on a Gemini model")
        mode = _tool_config(body.get("tool_choice"), {t["name"] for t in tools})
        if mode is not None:
            out["toolConfig"] = {"functionCallingConfig": mode}
    elif body.get("tool_choice") not in (None, "none", "auto"):
        raise _err("tool_choice", "names a tool but no tools were given")
    return out


def _text(content, where: str) -> str:
    """Text of a content that may only hold text (system, tool)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("text"), str):
                raise _err(f"{where}[{j}]", "can only be text here")
            texts.append(part["text"])
        return "\n".join(texts)
    if content is None:
        return ""
    raise _err(where, "must be a string or an array of text parts")


def _contents(messages: list) -> tuple[list[str], list[dict]]:
    """System texts (Gemini has one systemInstruction: all of them, in order) and the turns."""
    system: list[str] = []
    contents: list[dict] = []
    names: dict[str, str] = {}  # tool call id → function name (a functionResponse names its function)
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _err(f"messages[{i}]", "must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            text = _text(message.get("content"), f"messages[{i}].content")
            if text:
                system.append(text)
        elif role == "user":
            _append(contents, "user", _user_parts(message.get("content"), f"messages[{i}].content"))
        elif role == "assistant":
            _append(contents, "model", _model_parts(message, i, names))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            name = names.get(call_id) if isinstance(call_id, str) else None
            if name is None:
                raise _err(f"messages[{i}].tool_call_id", "does not answer a tool call of an earlier message")
            text = _text(message.get("content"), f"messages[{i}].content")
            _append(contents, "user", [{"functionResponse": {"name": name, "response": _tool_result(text)}}])
        elif role == "function":
            raise _err(f"messages[{i}].role", "'function' is deprecated and unsupported, use tools")
        else:
            raise _err(f"messages[{i}].role", f"{role!r} is not a chat role")
    return system, contents


def _append(contents: list[dict], role: str, parts: list[dict]) -> None:
    """Consecutive turns of one role (a user message after tool results) become one Content."""
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _tool_result(text: str) -> dict:
    """A functionResponse's `response` must be an object: a JSON object result as is, else wrapped."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"result": text}


def _user_parts(content, where: str) -> list[dict]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise _err(where, "must be a string or an array of content parts")
    parts = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            parts.append(_inline(url, f"{at}.image_url.url"))
        elif kind == "file":
            file = json_object(part.get("file"))
            if file.get("file_id"):
                raise _err(f"{at}.file.file_id", "cannot be carried to a Gemini model (send file_data)")
            parts.append(_inline(file.get("file_data"), f"{at}.file.file_data"))
        elif kind == "input_audio":
            audio = json_object(part.get("input_audio"))
            mime = AUDIO_FORMATS.get(str(audio.get("format")))
            if mime is None or not isinstance(audio.get("data"), str):
                raise _err(f"{at}.input_audio", "needs base64 data and format wav or mp3")
            parts.append({"inlineData": {"mimeType": mime, "data": audio["data"]}})
        else:
            raise _err(f"{at}.type", f"{kind!r} cannot be carried to a Gemini model")
    return parts


def _inline(url, where: str) -> dict:
    """Gemini takes media inline as base64: data URLs only (the gateway does not fetch URLs)."""
    match = _DATA_URL.match(url) if isinstance(url, str) else None
    if match is None:
        raise _err(where, "must be a base64 data: URL for a Gemini model (http(s) URLs cannot be carried)")
    return {"inlineData": {"mimeType": match["mime"], "data": match["data"]}}


def _model_parts(message: dict, i: int, names: dict[str, str]) -> list[dict]:
    """An assistant message as model parts (its earlier reasoning is not sent back, as Gemini's own)."""
    parts: list[dict] = []
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") in ("text", "refusal")
        )
    if isinstance(content, str) and content:
        parts.append({"text": content})
    elif content not in (None, ""):
        raise _err(f"messages[{i}].content", "must be a string or text parts")
    for k, call in enumerate(message.get("tool_calls") or []):
        at = f"messages[{i}].tool_calls[{k}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _err(f"{at}.function", "must name a function")
        if isinstance(call.get("id"), str):
            names[call["id"]] = function["name"]
        try:
            args = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            raise _err(f"{at}.function.arguments", "is not valid JSON") from None
        if not isinstance(args, dict):
            raise _err(f"{at}.function.arguments", "must be a JSON object")
        parts.append(
            {"functionCall": {"name": function["name"], "args": args}, "thoughtSignature": SKIP_SIGNATURE}
        )
    return parts


def _number(body: dict, key: str):
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise _err(key, "must be a number")
    return value


def _generation_config(body: dict) -> dict:
    config: dict = {}
    for src, dst in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("seed", "seed"),
    ):
        value = _number(body, src)
        if value is not None:
            config[dst] = value
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _err(key, "must be a positive integer")
            config["maxOutputTokens"] = value
            break
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise _err("stop", "must be a string or an array of strings")
        if len(stop) > 5:
            raise _err("stop", "can hold at most 5 sequences on a Gemini model")
        if any(stop):
            config["stopSequences"] = [s for s in stop if s]
    config.update(_response_format(body.get("response_format")))
    thinking = _thinking(body)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    return config


def _response_format(fmt) -> dict:
    if fmt is None:
        return {}
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = json_object(fmt.get("json_schema"))
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise _err("response_format.json_schema.schema", "must be a JSON Schema object")
        return {"responseMimeType": "application/json", "responseJsonSchema": schema}
    raise _err("response_format.type", f"{kind!r} is not text, json_object or json_schema")


def _thinking(body: dict) -> dict | None:
    """thinkingConfig from `reasoning_effort` or `extra_body.thinking`, thoughts included."""
    thinking = body.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled", "adaptive"):
            raise _err("thinking", "must be {'type': 'enabled', 'budget_tokens': N}, adaptive or disabled")
        if thinking["type"] == "disabled":
            return {"thinkingBudget": 0}
        if thinking["type"] == "adaptive":
            return {"thinkingBudget": -1, "includeThoughts": True}
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise _err("thinking.budget_tokens", "must be a positive integer")
        return {"thinkingBudget": budget, "includeThoughts": True}
    effort = body.get("reasoning_effort")
    if effort is None:
        return None
    if effort not in THINKING_BUDGETS:
        raise _err("reasoning_effort", f"{effort!r} is not one of {', '.join(THINKING_BUDGETS)}")
    budget = THINKING_BUDGETS[effort]
    return {"thinkingBudget": budget, "includeThoughts": True} if budget else {"thinkingBudget": 0}


def _tools(tools) -> list[dict]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _err("tools", "must be an array")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise _err(
                f"tools[{i}].type", f"{kind!r} cannot be carried to a Gemini model (function tools only)"
            )
        function = json_object(tool.get("function"))
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise _err(f"tools[{i}].function.name", "is required")
        decl: dict = {"name": function["name"]}
        if isinstance(function.get("description"), str) and function["description"]:
            decl["description"] = function["description"]
        parameters = function.get("parameters")
        if parameters is not None:
            if not isinstance(parameters, dict):
                raise _err(f"tools[{i}].function.parameters", "must be a JSON Schema object")
            decl["parametersJsonSchema"] = parameters
        out.append(decl)
    return out


def _tool_config(choice, names: set[str]) -> dict | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    name = json_object(json_object(choice).get("function")).get("name")
    if isinstance(choice, dict) and choice.get("type") == "function" and name in names:
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise _err("tool_choice", "must be auto, none, required or one of the given function tools")


# ------------------------------------------------------------------------------- answer: Gemini → chat


def usage_from_gemini(meta) -> Usage | None:
    """Billing usage of a `usageMetadata`: thoughts are billed as output, cached content as cache reads."""
    if not isinstance(meta, dict):
        return None
    prompt = _get(meta, "promptTokenCount")
    candidates = _get(meta, "candidatesTokenCount")
    thoughts = _get(meta, "thoughtsTokenCount") or 0
    if prompt is None and candidates is None:
        return None
    prompt = (prompt or 0) + (_get(meta, "toolUsePromptTokenCount") or 0)
    cached = min(_get(meta, "cachedContentTokenCount") or 0, prompt)
    return Usage(
        input_tokens=prompt - cached,
        output_tokens=(candidates or 0) + thoughts,
        cache_read_tokens=cached,
    )


def _chat_usage(usage: Usage, meta: dict) -> dict:
    out = usage_to_openai(usage)
    out["completion_tokens_details"] = {"reasoning_tokens": _get(meta, "thoughtsTokenCount") or 0}
    return out


def _finish_reason(reason, has_calls: bool) -> str:
    if reason in FILTERED:
        return "content_filter"
    if reason in FINISH_REASONS:
        return FINISH_REASONS[reason]
    return "tool_calls" if has_calls else "stop"


def _call_id(call: dict) -> str:
    return call["id"] if isinstance(call.get("id"), str) and call["id"] else new_id("call_")


def _part_text(part: dict) -> str:
    """Text of an answer part; an inline image (Gemini image models) as a Markdown data-URL image."""
    if isinstance(part.get("text"), str):
        return part["text"]
    data = part.get("inlineData")
    if isinstance(data, dict) and isinstance(data.get("data"), str):
        mime = data.get("mimeType") or "image/png"
        return f"![image](data:{mime};base64,{data['data']})"
    return ""


def _candidate(data: dict) -> dict:
    candidates = data.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return candidates[0]
    return {}


def gemini_response_to_chat(data: dict, *, model: str) -> dict:
    """A GenerateContentResponse as a chat.completion (a prompt Gemini blocked is a content_filter stop)."""
    if not isinstance(data, dict) or ("candidates" not in data and "promptFeedback" not in data):
        raise ConversionError("upstream response is not a Gemini GenerateContentResponse")
    data = camelize(data)
    candidate = _candidate(data)
    texts, thoughts, calls = [], [], []
    for part in json_object(candidate.get("content")).get("parts") or []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            calls.append(
                {
                    "id": _call_id(call),
                    "type": "function",
                    "function": {
                        "name": str(call.get("name") or ""),
                        "arguments": orjson.dumps(json_object(call.get("args"))).decode(),
                    },
                }
            )
        elif part.get("thought") is True:
            thoughts.append(_part_text(part))
        else:
            texts.append(_part_text(part))
    message: dict = {"role": "assistant", "content": "".join(texts) or (None if calls else "")}
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    reason = candidate.get("finishReason")
    if not candidate and json_object(data.get("promptFeedback")).get("blockReason"):
        reason = "SAFETY"
    out: dict = {
        "id": f"chatcmpl-{data.get('responseId') or new_id('')}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(reason, bool(calls)),
            }
        ],
    }
    meta = json_object(data.get("usageMetadata"))
    usage = usage_from_gemini(meta)
    if usage is not None:
        out["usage"] = _chat_usage(usage, meta)
    return out


# ------------------------------------------------------------------------------ streams


class GeminiToChatStream(StreamConverter):
    """streamGenerateContent (`alt=sse`) events as OpenAI chat.completion.chunk events.

    Gemini sends no end marker: the chunk with a finishReason completes the answer, and the
    usage chunk and `[DONE]` follow at the end of the upstream stream (usageMetadata may repeat)."""

    def __init__(self, model: str, include_usage: bool):
        super().__init__()
        self.model = model
        self.include_usage = include_usage
        self._id = new_id("chatcmpl-")
        self._created = int(time.time())
        self._started = False
        self._calls = 0
        self._meta: dict = {}
        self._finish_reason: str | None = None

    def _chunk(self, delta: dict, finish_reason: str | None = None) -> bytes:
        chunk = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return encode_sse(chunk)

    def _feed(self, event: SSEEvent) -> list[bytes]:
        data = self._json(event)
        if data is None:
            return []
        if "error" in data and "candidates" not in data:
            return self._upstream_failed(data)
        data = camelize(data)
        if isinstance(data.get("responseId"), str) and not self._started:
            self._id = f"chatcmpl-{data['responseId']}"
        if isinstance(data.get("usageMetadata"), dict):
            self._meta = data["usageMetadata"]
            self.usage = usage_from_gemini(self._meta) or self.usage
        out = []
        if not self._started:
            self._started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))
        candidate = _candidate(data)
        for part in json_object(candidate.get("content")).get("parts") or []:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("functionCall"), dict):
                call = part["functionCall"]
                arguments = orjson.dumps(json_object(call.get("args"))).decode()
                self.output_chars += len(arguments)
                tool_call = {
                    "index": self._calls,
                    "id": _call_id(call),
                    "type": "function",
                    "function": {"name": str(call.get("name") or ""), "arguments": arguments},
                }
                self._calls += 1
                out.append(self._chunk({"tool_calls": [tool_call]}))
                continue
            text = _part_text(part)
            if not text:
                continue
            self.output_chars += len(text)
            key = "reasoning_content" if part.get("thought") is True else "content"
            out.append(self._chunk({key: text}))
        reason = candidate.get("finishReason")
        if not candidate and json_object(data.get("promptFeedback")).get("blockReason"):
            reason = "SAFETY"
        if isinstance(reason, str) and self._finish_reason is None:
            self._finish_reason = _finish_reason(reason, self._calls > 0)
            self.completed = True
            out.append(self._chunk({}, self._finish_reason))
        return out

    def _finish(self) -> list[bytes]:
        if self._finish_reason is None:
            return []
        self._terminated = True
        out = []
        if self.include_usage and self.usage is not None:
            chunk = {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self.model,
                "choices": [],
                "usage": _chat_usage(self.usage, self._meta),
            }
            out.append(encode_sse(chunk))
        out.append(OPENAI_DONE)
        return out

    def _error_event(self, message: str) -> bytes:
        return encode_sse(openai_error_from(502, message, "upstream_error", "upstream_error"))


class GeminiPassthroughStream(StreamConverter):
    """A Gemini upstream's SSE relayed to a Gemini client: model name restored, usage tracked,
    re-framed as one JSON array when the client did not ask for `alt=sse`."""

    def __init__(self, model: str, *, sse: bool):
        super().__init__()
        self.model = model
        self.sse = sse
        self._sent = 0

    def _frame(self, data: dict) -> bytes:
        self._sent += 1
        if self.sse:
            return encode_sse(data)
        return (b"[" if self._sent == 1 else b",\r\n") + orjson.dumps(data)

    def _feed(self, event: SSEEvent) -> list[bytes]:
        data = self._json(event)
        if data is None:
            return []
        if "error" in data and "candidates" not in data:
            self.upstream_error = upstream_error_message(data) or "upstream stream error"
            out = self._frame(data) + (b"" if self.sse else b"]")
            self._errored = True
            return [out]
        meta = data.get("usageMetadata") or data.get("usage_metadata")
        if isinstance(meta, dict):
            self.usage = usage_from_gemini(camelize(meta)) or self.usage
        for part in json_object(_candidate(camelize(data)).get("content")).get("parts") or []:
            if isinstance(part, dict):
                self.output_chars += len(_part_text(part))
        if _candidate(camelize(data)).get("finishReason") or json_object(
            camelize(data).get("promptFeedback")
        ).get("blockReason"):
            self.completed = True
        if "modelVersion" in data:
            data["modelVersion"] = self.model
        return [self._frame(data)]

    def _finish(self) -> list[bytes]:
        self._terminated = True
        if self.sse:
            return []
        return [b"]" if self._sent else b"[]"]

    def _error_event(self, message: str) -> bytes:
        body = gemini_error(502, message)
        if self.sse:
            return encode_sse(body)
        return (b"[" if self._sent == 0 else b",\r\n") + orjson.dumps(body) + b"]"
