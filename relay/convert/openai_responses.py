"""OpenAI Responses API ⇄ OpenAI Chat Completions: requests, answers and streams.

The relay serves `/v1/responses` by converting to chat (which every channel kind speaks,
directly or through the chat⇄Anthropic converters) and converting the answer back. What
chat cannot carry is refused with a `ConversionError` naming the field; nothing is dropped
without a word (each top-level field's decision is in `relay.convert.fields.RESPONSES_TO_CHAT`).
"""

from __future__ import annotations

import time

from core.pricing import Usage
from relay.convert.errors import ConversionError
from relay.convert.fields import RESPONSES_TO_CHAT, check_fields
from relay.convert.responses import new_id, upstream_error_message
from relay.convert.shapes import json_array, json_object
from relay.convert.sse import SSEEvent, encode_sse
from relay.convert.streams import StreamConverter
from relay.convert.usage import usage_from_openai

# Carried to chat under the same name (every top-level field: `fields.RESPONSES_TO_CHAT`).
SAME_NAME = (
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "service_tier",
    "stream",
)
INCLUDE_ALLOWED = {"reasoning.encrypted_content"}


def _field_error(field: str, why: str) -> ConversionError:
    return ConversionError(f"'{field}' {why}")


# ------------------------------------------------------------------------------ request: Responses → chat


def responses_to_chat(body: dict, history: list[dict] | None = None) -> dict:
    """A Responses request as a chat request; `history` is the stored conversation that
    `previous_response_id` names (input and output items, oldest first)."""
    if not isinstance(body, dict):
        raise ConversionError("request body must be a JSON object")
    check_fields(body, RESPONSES_TO_CHAT, "this gateway's /v1/responses")
    if body.get("truncation") not in (None, "disabled", "auto"):
        raise _field_error("truncation", "must be 'disabled' or 'auto'")
    include = body.get("include")
    if include is not None:
        if not isinstance(include, list) or not all(isinstance(x, str) for x in include):
            raise _field_error("include", "must be an array of strings")
        for item in include:
            if item not in INCLUDE_ALLOWED:
                raise _field_error("include", f"value '{item}' cannot be carried by this route")
    out: dict = {"model": body.get("model")}
    messages: list[dict] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _field_error("instructions", "must be a string")
        if instructions:
            messages.append({"role": "system", "content": instructions})
    for item in history or []:
        _append_item(messages, item, "previous_response_id")
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        messages.append({"role": "user", "content": raw_input})
    elif isinstance(raw_input, list):
        for i, item in enumerate(raw_input):
            _append_item(messages, item, f"input[{i}]")
    elif raw_input is not None or not history:
        raise _field_error("input", "is required and must be a string or an array of items")
    if not any(m["role"] != "system" for m in messages):
        raise _field_error("input", "must contain at least one message")
    out["messages"] = messages
    for key in SAME_NAME:
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stream"):
        out["stream_options"] = {"include_usage": True}
    if body.get("max_output_tokens") is not None:
        value = body["max_output_tokens"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _field_error("max_output_tokens", "must be a positive integer")
        out["max_completion_tokens"] = value
    if body.get("tools") is not None:
        out["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        out["tool_choice"] = _tool_choice(body["tool_choice"])
    out.update(_text_options(body.get("text")))
    effort = _reasoning_effort(body.get("reasoning"))
    if effort is not None:
        out["reasoning_effort"] = effort
    return out


def _text_options(text) -> dict:
    if text is None:
        return {}
    if not isinstance(text, dict):
        raise _field_error("text", "must be an object")
    out: dict = {}
    for key in text:
        if key not in ("format", "verbosity"):
            raise _field_error(f"text.{key}", "is not supported by this gateway")
    if text.get("verbosity") is not None:
        if text["verbosity"] not in ("low", "medium", "high"):
            raise _field_error("text.verbosity", "must be 'low', 'medium' or 'high'")
        out["verbosity"] = text["verbosity"]
    fmt = text.get("format")
    if fmt is None:
        return out
    if not isinstance(fmt, dict):
        raise _field_error("text.format", "must be an object")
    kind = fmt.get("type")
    if kind == "text":
        return out
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
        return out
    if kind == "json_schema":
        if not isinstance(fmt.get("schema"), dict):
            raise _field_error("text.format.schema", "must be a JSON Schema object")
        if not isinstance(fmt.get("name"), str) or not fmt["name"]:
            raise _field_error("text.format.name", "is required for json_schema")
        schema = {"name": fmt["name"], "schema": fmt["schema"]}
        for key in ("strict", "description"):
            if fmt.get(key) is not None:
                schema[key] = fmt[key]
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
        return out
    raise _field_error("text.format.type", f"'{kind}' is not one of text, json_object, json_schema")


def _reasoning_effort(reasoning) -> str | None:
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        raise _field_error("reasoning", "must be an object")
    for key in reasoning:
        if key not in ("effort", "summary", "generate_summary"):
            raise _field_error(f"reasoning.{key}", "is not supported by this gateway")
    effort = reasoning.get("effort")
    if effort is None:
        return None
    if effort not in ("none", "minimal", "low", "medium", "high", "xhigh"):
        raise _field_error("reasoning.effort", f"'{effort}' is not a known effort")
    return effort


NAMESPACE_SEPARATOR = "__"


def _tools(tools) -> list[dict]:
    if not isinstance(tools, list):
        raise _field_error("tools", "must be an array")
    out = []
    for i, tool in enumerate(tools):
        if isinstance(tool, dict) and tool.get("type") == "namespace":
            if not isinstance(tool.get("name"), str) or not isinstance(tool.get("tools"), list):
                raise _field_error(f"tools[{i}]", "a namespace needs a name and tools")
            for j, inner in enumerate(tool["tools"]):
                out.append(_function_tool(inner, f"tools[{i}].tools[{j}]", namespace=tool["name"]))
        else:
            out.append(_function_tool(tool, f"tools[{i}]"))
    return out


def _function_tool(tool, where: str, namespace: str | None = None) -> dict:
    if not isinstance(tool, dict):
        raise _field_error(where, "must be an object")
    if tool.get("type") != "function":
        hint = (
            ' (Codex CLI: set web_search = "disabled" in config.toml)'
            if tool.get("type") == "web_search"
            else ""
        )
        raise _field_error(
            f"{where}.type", f"'{tool.get('type')}' cannot be carried: only function tools can{hint}"
        )
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise _field_error(f"{where}.name", "is required")
    function = {"name": chat_tool_name(tool["name"], namespace)}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def chat_tool_name(name: str, namespace: str | None) -> str:
    """A namespaced Responses tool as one chat function name (`namespace__name`)."""
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name


def namespaces_of(request: dict) -> set[str]:
    tools = json_array(request.get("tools"))
    return {
        t["name"] for t in tools if isinstance(t, dict) and t.get("type") == "namespace" and t.get("name")
    }


def split_tool_name(name: str, namespaces: set[str]) -> dict:
    """The `name` (and `namespace`) fields of a function_call item for a chat function name."""
    head, sep, tail = name.partition(NAMESPACE_SEPARATOR)
    if sep and head in namespaces:
        return {"name": tail, "namespace": head}
    return {"name": name}


def _tool_choice(choice):
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise _field_error("tool_choice", "must be auto, none, required or {type: function, name}")


def _append_item(messages: list[dict], item, where: str) -> None:
    if not isinstance(item, dict):
        raise _field_error(where, "must be an object")
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise _field_error(f"{where}.role", f"'{role}' is not user, assistant, system or developer")
        content = _content(item.get("content"), role, where)
        messages.append({"role": "system" if role == "developer" else role, "content": content})
    elif kind == "function_call":
        namespace = item.get("namespace") if isinstance(item.get("namespace"), str) else None
        call = {
            "id": str(item.get("call_id") or item.get("id") or new_id("call_")),
            "type": "function",
            "function": {
                "name": chat_tool_name(str(item.get("name") or ""), namespace),
                "arguments": str(item.get("arguments") or "{}"),
            },
        }
        last = messages[-1] if messages else None
        if last and last["role"] == "assistant" and "tool_calls" in last:
            last["tool_calls"].append(call)
        elif last and last["role"] == "assistant" and isinstance(last.get("content"), str | None):
            last["tool_calls"] = [call]
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        if not isinstance(item.get("call_id"), str):
            raise _field_error(f"{where}.call_id", "is required")
        output = item.get("output")
        if isinstance(output, list):
            output = _content(output, "tool", where)
        elif not isinstance(output, str):
            raise _field_error(f"{where}.output", "must be a string or an array of content parts")
        messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
    elif kind == "reasoning":
        return  # the model's own earlier reasoning: chat upstreams take no reasoning input
    else:
        raise _field_error(f"{where}.type", f"'{kind}' items cannot be carried by this route")


def _content(content, role: str, where: str):
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _field_error(f"{where}.content", "must be a string or an array of content parts")
    parts = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        if not isinstance(part, dict):
            raise _field_error(at, "must be an object")
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            if not isinstance(part.get("text"), str):
                raise _field_error(f"{at}.text", "must be a string")
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "refusal" and role == "assistant":
            parts.append({"type": "text", "text": str(part.get("refusal") or "")})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise _field_error(f"{at}.image_url", "is required (file_id images cannot be carried)")
            image = {"url": url}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            if not isinstance(part.get("file_data"), str):
                raise _field_error(f"{at}.file_data", "is required (file_id and file_url cannot be carried)")
            file = {"file_data": part["file_data"]}
            if part.get("filename"):
                file["filename"] = part["filename"]
            parts.append({"type": "file", "file": file})
        else:
            raise _field_error(f"{at}.type", f"'{kind}' cannot be carried by this route")
    if role in ("assistant", "system", "developer", "tool"):
        if any(p["type"] != "text" for p in parts):
            raise _field_error(f"{where}.content", f"a {role} message can only hold text")
        return "".join(p["text"] for p in parts)
    return parts


# --------------------------------------------------------------------------- answer: chat → Responses


def responses_usage(usage: Usage | None) -> dict | None:
    if usage is None:
        return None
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + usage.output_tokens,
    }


def response_shell(request: dict, *, response_id: str, model: str, created_at: int) -> dict:
    """The fields of a Response object that echo the request (in_progress, no output yet)."""
    text = json_object(request.get("text"))
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": [],
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": request.get("reasoning") or {"effort": None, "summary": None},
        "store": request.get("store", True),
        "temperature": request.get("temperature"),
        "text": {
            "format": text.get("format") or {"type": "text"},
            **({"verbosity": text["verbosity"]} if text.get("verbosity") else {}),
        },
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p"),
        "truncation": request.get("truncation", "disabled"),
        "usage": None,
        "metadata": request.get("metadata") or {},
    }


def _finish(response: dict, finish_reason, usage: Usage | None) -> dict:
    if finish_reason == "length":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    elif finish_reason == "content_filter":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "content_filter"}
    else:
        response["status"] = "completed"
    response["usage"] = responses_usage(usage)
    return response


def _message_item(item_id: str, text: str, *, refusal: bool = False, status: str = "completed") -> dict:
    part = (
        {"type": "refusal", "refusal": text}
        if refusal
        else {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    )
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": [part]}


def _reasoning_item(item_id: str, text: str) -> dict:
    return {"type": "reasoning", "id": item_id, "summary": [{"type": "summary_text", "text": text}]}


def _call_item(item_id: str, call_id: str, name: dict, arguments: str, status: str = "completed") -> dict:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        **name,
        "arguments": arguments,
        "status": status,
    }


def chat_to_responses(chat: dict, request: dict, *, response_id: str, model: str) -> dict:
    """A chat.completion as a Response object for `request`."""
    choices = chat.get("choices") if isinstance(chat, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ConversionError("upstream response is not an OpenAI chat completion")
    choice = choices[0]
    message = json_object(choice.get("message"))
    response = response_shell(request, response_id=response_id, model=model, created_at=int(time.time()))
    output = response["output"]
    namespaces = namespaces_of(request)
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        output.append(_reasoning_item(new_id("rs_"), reasoning))
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(p["text"] for p in text if isinstance(p, dict) and isinstance(p.get("text"), str))
    if isinstance(text, str) and text:
        output.append(_message_item(new_id("msg_"), text))
    elif isinstance(message.get("refusal"), str) and message["refusal"]:
        output.append(_message_item(new_id("msg_"), message["refusal"], refusal=True))
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            output.append(
                _call_item(
                    new_id("fc_"),
                    str(call.get("id") or new_id("call_")),
                    split_tool_name(str(function.get("name") or ""), namespaces),
                    str(function.get("arguments") or ""),
                )
            )
    return _finish(response, choice.get("finish_reason"), usage_from_openai(chat.get("usage")))


# ------------------------------------------------------------------------------ stream: chat → Responses


class ChatToResponsesStream(StreamConverter):
    """OpenAI chat.completion.chunk events as Responses API stream events.

    `response` is the finished Response object once the stream completed (for storage)."""

    def __init__(self, request: dict, *, response_id: str, model: str, on_end=None):
        super().__init__()
        self._on_end = on_end  # called with the finished Response before its last event goes out
        self.response = response_shell(
            request, response_id=response_id, model=model, created_at=int(time.time())
        )
        self._namespaces = namespaces_of(request)
        self._seq = 0
        self._started = False
        self._open: dict | None = None  # the output item being streamed: {"kind", "index", ...}
        self._calls: dict[int, dict] = {}  # chat tool_calls index → its open function_call state
        self._finish_reason: str | None = None

    def _event(self, data: dict) -> bytes:
        data["sequence_number"] = self._seq
        self._seq += 1
        return encode_sse(data, data["type"])

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return [
            self._event({"type": "response.created", "response": dict(self.response)}),
            self._event({"type": "response.in_progress", "response": dict(self.response)}),
        ]

    def _add_item(self, item: dict) -> tuple[list[bytes], int]:
        index = len(self.response["output"])
        self.response["output"].append(item)
        return [
            self._event({"type": "response.output_item.added", "output_index": index, "item": dict(item)})
        ], index

    def _close_open(self) -> list[bytes]:
        state, self._open = self._open, None
        if state is None:
            return []
        index, item = state["index"], self.response["output"][state["index"]]
        text = "".join(state["text"])
        if state["kind"] == "reasoning":
            part: dict = {"type": "summary_text", "text": text}
            item["summary"] = [part]
            common = {"item_id": item["id"], "output_index": index, "summary_index": 0}
            return [
                self._event({"type": "response.reasoning_summary_text.done", **common, "text": text}),
                self._event({"type": "response.reasoning_summary_part.done", **common, "part": part}),
                self._event({"type": "response.output_item.done", "output_index": index, "item": item}),
            ]
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        item["content"] = [part]
        item["status"] = "completed"
        common = {"item_id": item["id"], "output_index": index, "content_index": 0}
        return [
            self._event({"type": "response.output_text.done", **common, "text": text, "logprobs": []}),
            self._event({"type": "response.content_part.done", **common, "part": part}),
            self._event({"type": "response.output_item.done", "output_index": index, "item": item}),
        ]

    def _text(self, kind: str, delta: str) -> list[bytes]:
        out: list[bytes] = []
        if self._open is None or self._open["kind"] != kind:
            out += self._close_open()
            if kind == "reasoning":
                added, index = self._add_item({"type": "reasoning", "id": new_id("rs_"), "summary": []})
                item_id = self.response["output"][index]["id"]
                out += added
                out.append(
                    self._event(
                        {
                            "type": "response.reasoning_summary_part.added",
                            "item_id": item_id,
                            "output_index": index,
                            "summary_index": 0,
                            "part": {"type": "summary_text", "text": ""},
                        }
                    )
                )
            else:
                added, index = self._add_item(
                    {
                        "type": "message",
                        "id": new_id("msg_"),
                        "status": "in_progress",
                        "role": "assistant",
                        "content": [],
                    }
                )
                item_id = self.response["output"][index]["id"]
                out += added
                out.append(
                    self._event(
                        {
                            "type": "response.content_part.added",
                            "item_id": item_id,
                            "output_index": index,
                            "content_index": 0,
                            "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                        }
                    )
                )
            self._open = {"kind": kind, "index": index, "text": []}
        state = self._open
        state["text"].append(delta)
        self.output_chars += len(delta)
        item_id = self.response["output"][state["index"]]["id"]
        if kind == "reasoning":
            out.append(
                self._event(
                    {
                        "type": "response.reasoning_summary_text.delta",
                        "item_id": item_id,
                        "output_index": state["index"],
                        "summary_index": 0,
                        "delta": delta,
                    }
                )
            )
        else:
            out.append(
                self._event(
                    {
                        "type": "response.output_text.delta",
                        "item_id": item_id,
                        "output_index": state["index"],
                        "content_index": 0,
                        "delta": delta,
                        "logprobs": [],
                    }
                )
            )
        return out

    def _tool_call(self, call: dict) -> list[bytes]:
        out: list[bytes] = []
        index = call.get("index", 0)
        function = json_object(call.get("function"))
        state = self._calls.get(index)
        if state is None:
            out += self._close_open()
            item = _call_item(
                new_id("fc_"),
                str(call.get("id") or new_id("call_")),
                split_tool_name(str(function.get("name") or ""), self._namespaces),
                "",
                "in_progress",
            )
            added, output_index = self._add_item(item)
            out += added
            state = self._calls[index] = {"output_index": output_index, "arguments": []}
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            state["arguments"].append(arguments)
            self.output_chars += len(arguments)
            item = self.response["output"][state["output_index"]]
            out.append(
                self._event(
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": item["id"],
                        "output_index": state["output_index"],
                        "delta": arguments,
                    }
                )
            )
        return out

    def _close_calls(self) -> list[bytes]:
        out = []
        for state in self._calls.values():
            index = state["output_index"]
            item = self.response["output"][index]
            item["arguments"] = "".join(state["arguments"])
            item["status"] = "completed"
            out.append(
                self._event(
                    {
                        "type": "response.function_call_arguments.done",
                        "item_id": item["id"],
                        "output_index": index,
                        "arguments": item["arguments"],
                    }
                )
            )
            out.append(
                self._event({"type": "response.output_item.done", "output_index": index, "item": item})
            )
        self._calls = {}
        return out

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
        out = self._start()
        if isinstance(data.get("usage"), dict):
            self.usage = usage_from_openai(data["usage"]) or self.usage
        for choice in data.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            delta = json_object(choice.get("delta"))
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                out += self._text("reasoning", reasoning)
            if isinstance(delta.get("content"), str) and delta["content"]:
                out += self._text("message", delta["content"])
            for call in delta.get("tool_calls") or []:
                if isinstance(call, dict):
                    out += self._tool_call(call)
            if isinstance(choice.get("finish_reason"), str):
                self._finish_reason = choice["finish_reason"]
                self.completed = True
        return out

    def _end(self) -> list[bytes]:
        self.completed = True
        out = self._start() + self._close_open() + self._close_calls()
        response = _finish(self.response, self._finish_reason, self.usage)
        name = "response.completed" if response["status"] == "completed" else "response.incomplete"
        if self._on_end is not None:
            self._on_end(response)
        out.append(self._event({"type": name, "response": response}))
        self._terminated = True
        return out

    def _finish(self) -> list[bytes]:
        return self._end() if self.completed else []

    def _error_event(self, message: str) -> bytes:
        self.response["status"] = "failed"
        self.response["error"] = {"code": "server_error", "message": message}
        return b"".join(self._start()) + self._event({"type": "response.failed", "response": self.response})
