"""Gemini API endpoints (/v1beta/models/...): generateContent, streamGenerateContent, countTokens, models.

Behaves like Google's: the key in `x-goog-api-key` (or `?key=`), a wrong one a 400
API_KEY_INVALID; Google-shaped errors (`{"error": {"code", "message", "status"}}`, 429
RESOURCE_EXHAUSTED with a RetryInfo detail); SSE events separated by CRLF CRLF with
`usageMetadata` on every chunk; thinking on by default for thinking models (thoughts billed in
`thoughtsTokenCount`, shown as `thought` parts only with `includeThoughts`); Gemini 3 refusing a
function call in history without a `thoughtSignature`; implicit caching of long prefixes.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from .call import BadRequest, Call, Stream
from .openai_api import PNG_B64
from .textgen import (
    IMAGE_TOKENS,
    count_tokens,
    cut,
    digest,
    new_id,
    pieces,
    reply_text,
    structured_text,
    thinking_text,
    tool_arguments,
)

CACHE_MIN_TOKENS = 1024
IMAGE_OUTPUT_TOKENS = 1290  # what Google bills one generated 1024px image as
MODELS = ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-3-pro-preview", "gemini-2.5-flash-image"]
STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
ERRORS = {
    "500": (
        500,
        "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    ),
    "503": (503, "The model is overloaded. Please try again later."),
    "529": (503, "The model is overloaded. Please try again later."),
}
REQUEST_FIELDS = {
    "contents",
    "systemInstruction",
    "generationConfig",
    "tools",
    "toolConfig",
    "safetySettings",
    "cachedContent",
    "model",
}
CONFIG_FIELDS = {
    "temperature",
    "topP",
    "topK",
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
    "responseLogprobs",
    "logprobs",
}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _camelize(node):
    """Google's REST API takes snake_case too (user data in args/response/schemas kept as is)."""
    if isinstance(node, list):
        return [_camelize(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        name = _camel(key)
        keep = name in ("args", "response", "responseJsonSchema", "parametersJsonSchema", "properties")
        out[name] = value if keep else _camelize(value)
    return out


def error(
    call: Call, status: int, message: str, headers: dict | None = None, details: list | None = None
) -> web.Response:
    body: dict = {"error": {"code": status, "message": message, "status": STATUS.get(status, "UNKNOWN")}}
    if details:
        body["error"]["details"] = details
    return call.json(body, status=status, headers=headers)


def auth_error(call: Call, key: str | None) -> web.Response:
    """A missing key is a 403, a wrong one a 400 API_KEY_INVALID (as Google); the `401` rule a
    revoked key's 403."""
    if call.rule.error == "401":
        return error(call, 403, "Permission denied: Consumer has been suspended.")
    if key is None:
        return error(
            call,
            403,
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        )
    detail = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
    return error(call, 400, "API key not valid. Please pass a valid API key.", details=[detail])


def rate_limit_error(call: Call, headers: dict, *, concurrency: bool) -> web.Response:
    message = (
        "Resource has been exhausted (e.g. check quota)."
        if concurrency
        else "You exceeded your current quota, please check your plan and billing details."
    )
    details = []
    if headers.get("Retry-After"):
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{headers['Retry-After']}s"}
        )
    return error(call, 429, message, headers=headers, details=details)


def server_error(call: Call, kind: str) -> web.Response:
    status, message = ERRORS[kind]
    return error(call, status, message)


def bad_request(call: Call, exc: BadRequest) -> web.Response:
    return error(call, exc.status, exc.message)


def not_found(call: Call) -> web.Response:
    return error(call, 404, f"Method not found: {call.request.method} {call.request.path}.")


# ----------------------------------------------------------------------------- request reading


def _schema(schema) -> dict:
    """An OpenAPI-subset Schema (`type: OBJECT`) in the lower-case JSON Schema terms textgen reads."""
    if not isinstance(schema, dict):
        return {}
    out = dict(schema)
    if isinstance(out.get("type"), str):
        out["type"] = out["type"].lower()
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _schema(v) for k, v in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = _schema(out["items"])
    return out


def _check(body: dict) -> dict:
    """Google's own refusals: unknown fields, bad roles and parts, out-of-range settings."""
    for key in body:
        if key not in REQUEST_FIELDS:
            raise BadRequest(f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
    config = body.get("generationConfig") or {}
    if not isinstance(config, dict):
        raise BadRequest("Invalid value at 'generation_config': expected an object.")
    for key in config:
        if key not in CONFIG_FIELDS:
            raise BadRequest(
                f"Invalid JSON payload received. Unknown name \"{key}\" at 'generation_config': "
                "Cannot find field."
            )
    temperature = config.get("temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise BadRequest("* GenerateContentRequest.generation_config.temperature: must be in [0, 2]")
    stops = config.get("stopSequences") or []
    if len(stops) > 5:
        raise BadRequest("* GenerateContentRequest.generation_config.stop_sequences: at most 5 allowed")
    mime = config.get("responseMimeType")
    if (config.get("responseSchema") or config.get("responseJsonSchema")) and mime != "application/json":
        raise BadRequest(
            "* GenerateContentRequest.generation_config.response_mime_type: must be application/json "
            "when response_schema is set"
        )
    if config.get("responseSchema") and config.get("responseJsonSchema"):
        raise BadRequest("response_schema and response_json_schema cannot both be set")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
    for i, content in enumerate(contents):
        if content.get("role", "user") not in ("user", "model", "function"):
            raise BadRequest(f"Please use a valid role: user, model. (contents[{i}])")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise BadRequest(
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            )
        for part in parts:
            if not any(
                k in part for k in ("text", "inlineData", "functionCall", "functionResponse", "fileData")
            ):
                raise BadRequest(f"* GenerateContentRequest.contents[{i}].parts: a part must hold data")
    return config


def _is_thinking_model(model: str) -> bool:
    return ("2.5" in model or "gemini-3" in model) and "image" not in model and "lite" not in model


def _check_signatures(call: Call, contents: list) -> None:
    """Gemini 3 validates thought signatures: a function call in history must carry one."""
    if "gemini-3" not in call.model:
        return
    for i, content in enumerate(contents):
        if content.get("role") != "model":
            continue
        for j, part in enumerate(content["parts"]):
            if "functionCall" in part and not part.get("thoughtSignature"):
                raise BadRequest(
                    f"Function call is missing a thought_signature in functionCall parts. This is required "
                    f"for tools to work correctly, and missing thought_signature may lead to degraded model "
                    f"performance. (contents[{i}].parts[{j}])"
                )


def _part_text(part: dict) -> tuple[str, int]:
    if isinstance(part.get("text"), str):
        return part["text"], 0
    if "functionCall" in part:
        call = part["functionCall"]
        return f"{call.get('name', '')} {orjson.dumps(call.get('args', {})).decode()}", 0
    if "functionResponse" in part:
        return orjson.dumps(part["functionResponse"].get("response", {})).decode(), 0
    return "", IMAGE_TOKENS


def _prompt(call: Call, body: dict) -> tuple[int, int, str, bool]:
    """(prompt tokens, cached tokens, last user text, whether a function already answered)."""
    segs: list[tuple[str, int]] = []
    tools = body.get("tools") or []
    for tool in tools:
        segs.append((orjson.dumps(tool).decode(), 0))
    system = body.get("systemInstruction")
    if isinstance(system, dict):
        segs.extend(_part_text(p) for p in system.get("parts") or [])
    contents = body["contents"]
    prefix_end = len(segs)
    for i, content in enumerate(contents):
        segs.extend(_part_text(p) for p in content["parts"])
        if i == len(contents) - 2:
            prefix_end = len(segs)
    total = max(sum(count_tokens(t) + e for t, e in segs), 1)
    prefix = segs[:prefix_end]
    prefix_tokens = sum(count_tokens(t) + e for t, e in prefix)
    cached = 0
    long_prefix = len(contents) > 1 and prefix_tokens >= CACHE_MIN_TOKENS
    if long_prefix and call.sim.cache.hit(call.upstream, call.model, digest([t for t, _ in prefix])):
        cached = prefix_tokens
    last = contents[-1]
    text = "\n".join(_part_text(p)[0] for p in last["parts"])
    answered = any("functionResponse" in p for c in contents for p in c["parts"])
    return total, cached, text, answered


def _chosen_function(body: dict, answered: bool) -> dict | None:
    declarations = [d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []]
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = str(calling.get("mode") or "AUTO").upper()
    if not declarations or mode == "NONE" or answered:
        return None
    allowed = calling.get("allowedFunctionNames") or []
    if allowed:
        if mode not in ("ANY", "VALIDATED"):
            raise BadRequest("allowed_function_names can only be set when mode is ANY")
        for decl in declarations:
            if decl.get("name") in allowed:
                return decl
        raise BadRequest(f"allowed_function_names: no function named {allowed[0]!r} was declared")
    return declarations[0]


def build(call: Call) -> dict:
    """The GenerateContentResponse for a request."""
    body = call.body = _camelize(call.body)
    config = _check(body)
    _check_signatures(call, body["contents"])
    prompt_tokens, cached, last, answered = _prompt(call, body)
    thinking = config.get("thinkingConfig") or {}
    budget = thinking.get("thinkingBudget")
    thinks = _is_thinking_model(call.model) and budget != 0
    if budget == 0 and "pro" in call.model:
        raise BadRequest("Budget 0 is invalid. This model only works in thinking mode.")
    parts: list[dict] = []
    thoughts = 0
    if thinks:
        text = thinking_text(last)
        thoughts = count_tokens(text)
        if thinking.get("includeThoughts"):
            parts.append({"text": text, "thought": True})
    finish = "STOP"
    output = 0
    function = _chosen_function(body, answered)
    schema = config.get("responseJsonSchema") or _schema(config.get("responseSchema")) or None
    if "image" in call.model:
        caption = f"Here is your image of {' '.join(last.split()[:8])}."
        parts.append({"text": caption})
        parts.append({"inlineData": {"mimeType": "image/png", "data": PNG_B64}})
        output = count_tokens(caption) + IMAGE_OUTPUT_TOKENS
    elif function is not None:
        params = function.get("parametersJsonSchema") or _schema(function.get("parameters"))
        args = tool_arguments(params, last)
        part: dict = {"functionCall": {"name": function.get("name", ""), "args": args}}
        if thinks:
            part["thoughtSignature"] = new_id("", 64)
        parts.append(part)
        output = count_tokens(function.get("name", "") + orjson.dumps(args).decode())
    elif config.get("responseMimeType") == "application/json":
        text = structured_text(schema, last)
        parts.append({"text": text})
        output = count_tokens(text)
    else:
        text = reply_text(call.upstream, call.model, last, call.rule.output_tokens)
        max_tokens = config.get("maxOutputTokens")
        text, why = cut(text, max_tokens, config.get("stopSequences"))
        if why == "max_tokens":
            finish = "MAX_TOKENS"
        parts.append({"text": text})
        output = count_tokens(text)
    usage = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": output,
        "totalTokenCount": prompt_tokens + output + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if cached:
        usage["cachedContentTokenCount"] = cached
    return {
        "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}],
        "usageMetadata": usage,
        "modelVersion": call.model,
        "responseId": new_id("", 22),
    }


# ----------------------------------------------------------------------------- handlers


async def generate_content(call: Call, model: str) -> web.StreamResponse:
    answer = build(call)
    if call.rule.error == "garbage":
        call.status = "200"
        return web.Response(body=b'{"candidates": [{"content": {"par', content_type="application/json")
    return call.json(answer)


def _chunks(answer: dict) -> list[dict]:
    """The answer as streamed: a few words per chunk, each with the usage so far, finishReason last."""
    candidate = answer["candidates"][0]
    usage = answer["usageMetadata"]
    base = {"modelVersion": answer["modelVersion"], "responseId": answer["responseId"]}
    split: list[dict] = []
    for part in candidate["content"]["parts"]:
        if isinstance(part.get("text"), str) and part["text"]:
            split.extend(dict(part, text=piece) for piece in pieces(part["text"]))
        else:
            split.append(part)
    split = split or [{"text": ""}]
    running = {k: usage[k] for k in ("promptTokenCount", "promptTokensDetails")}
    out = []
    for i, part in enumerate(split):
        chunk_candidate: dict = {"content": {"parts": [part], "role": "model"}, "index": 0}
        meta = dict(running, totalTokenCount=usage["promptTokenCount"])
        if i == len(split) - 1:
            chunk_candidate["finishReason"] = candidate["finishReason"]
            meta = usage
        out.append({"candidates": [chunk_candidate], "usageMetadata": meta, **base})
    return out


def _sse(data: dict) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\r\n\r\n"


STREAM_ERROR = _sse({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})


async def stream_generate_content(call: Call, model: str) -> web.StreamResponse:
    answer = build(call)
    chunks = _chunks(answer)
    if call.request.query.get("alt") != "sse":
        return call.json(chunks)  # without alt=sse Google answers one JSON array
    stream = Stream(call, len(chunks), STREAM_ERROR)
    await stream.start()
    for i, chunk in enumerate(chunks):
        if call.rule.error == "garbage" and i == 1:
            await stream.send(b'data: {"candidates": [{"conte\r\n\r\n')
            continue
        await stream.send(_sse(chunk))
    await stream.resp.write_eof()
    return stream.resp


async def count_tokens_endpoint(call: Call, model: str) -> web.Response:
    body = _camelize(call.body)
    inner = body.get("generateContentRequest")
    if isinstance(inner, dict):
        body = inner
    contents = body.get("contents") or []
    total = sum(
        count_tokens(_part_text(p)[0]) + _part_text(p)[1] for c in contents for p in c.get("parts") or []
    )
    return call.json({"totalTokens": total})


ACTIONS = {
    "generateContent": generate_content,
    "streamGenerateContent": stream_generate_content,
    "countTokens": count_tokens_endpoint,
}


def model_entry(name: str) -> dict:
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": name,
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
        "thinking": _is_thinking_model(name),
    }


async def models(call: Call) -> web.Response:
    return call.json({"models": [model_entry(m) for m in MODELS]})
