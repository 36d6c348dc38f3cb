"""OpenAI-format endpoints: chat completions, embeddings, images, models; errors in OpenAI's shape."""

from __future__ import annotations

import base64
import hashlib
import time
import zlib
from array import array

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
CACHE_STEP = 128
FINGERPRINT = "fp_sim0001"
MODELS = [
    ("gpt-5.1", "system"),
    ("gpt-4o-mini", "system"),
    ("text-embedding-3-small", "system"),
    ("nano-banana-pro", "system"),
    ("veo-3.1", "system"),
    ("sora-2", "system"),
    ("wan-2.5", "system"),
    ("seedance-2", "system"),
    ("qwen3.5-max", "system"),
    ("glm-5.1", "system"),
    ("deepseek-v4", "system"),
]

ERRORS = {
    "500": (
        500,
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    "503": (503, "server_error", None, "The engine is currently overloaded, please try again later."),
    "529": (529, "server_error", None, "The engine is currently overloaded, please try again later."),
}


STREAM_ERROR = (
    b"data: "
    + orjson.dumps(
        {"error": {"message": ERRORS["500"][3], "type": "server_error", "param": None, "code": None}}
    )
    + b"\n\n"
)


def error(
    call: Call,
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return call.json(body, status=status, headers=headers)


def auth_error(call: Call, key: str | None) -> web.Response:
    if not key:
        return error(
            call,
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
        )
    shown = key[:3] + "*" * 4 + key[-4:] if len(key) > 8 else "***"
    return error(
        call,
        401,
        f"Incorrect API key provided: {shown}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    )


def rate_limit_error(call: Call, headers: dict, *, concurrency: bool) -> web.Response:
    limit = call.rule.max_concurrency if concurrency else 60
    per = "concurrent requests" if concurrency else "requests per min (RPM)"
    wait = headers.get("Retry-After", "1")
    return error(
        call,
        429,
        f"Rate limit reached for {call.model or 'requests'} in organization org-sim on {per}: "
        f"Limit {limit}, Used {limit}, Requested 1. Please try again in {wait}s.",
        "requests",
        "rate_limit_exceeded",
        headers=headers,
    )


def server_error(call: Call, kind: str) -> web.Response:
    status, type_, code, message = ERRORS[kind]
    return error(call, status, message, type_, code)


def bad_request(call: Call, exc: BadRequest) -> web.Response:
    return error(call, exc.status, exc.message, "invalid_request_error", exc.code, exc.param)


def not_found(call: Call) -> web.Response:
    req = call.request
    return error(call, 404, f"Invalid URL ({req.method} {req.path})", "invalid_request_error")


def headers() -> dict:
    return {"x-request-id": new_id("req_", 32), "openai-processing-ms": "1"}


# ---- chat completions ------------------------------------------------------------------------


def _message_tokens(message: dict) -> tuple[str, int]:
    """Text of one message for counting, plus fixed tokens for images and audio."""
    content = message.get("content")
    extra = 0
    texts = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                raise BadRequest("Invalid content part: expected an object.", param="messages")
            if part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            else:
                extra += IMAGE_TOKENS
    elif content is not None:
        raise BadRequest(
            "Invalid type for 'messages.content': expected a string or an array.", param="messages"
        )
    for tool_call in message.get("tool_calls") or ():
        function = tool_call.get("function") or {} if isinstance(tool_call, dict) else {}
        texts.append(f"{function.get('name', '')} {function.get('arguments', '')}")
    return "\n".join(texts), extra


def _last_text(messages: list) -> str:
    for message in reversed(messages):
        if message.get("role") in ("user", "tool"):
            text, _ = _message_tokens(message)
            return text
    return ""


def analyse_chat(call: Call) -> tuple[int, int, str]:
    """Prompt tokens, cached tokens and the text to echo, for a chat completion request."""
    body = call.body
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array.", param="messages")
    texts: list[str] = []
    total = 0
    prefix_total = 0
    tools = body.get("tools")
    if tools:
        tools_text = orjson.dumps(tools).decode()
        texts.append(tools_text)
        total += count_tokens(tools_text)
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
            "function",
        ):
            raise BadRequest(f"Invalid value for 'messages[{i}].role'.", param=f"messages[{i}].role")
        if i == len(messages) - 1:
            prefix_total = total
            prefix_digest = digest(texts)
        text, extra = _message_tokens(message)
        texts.append(text)
        total += count_tokens(text) + extra
    cached = 0
    if prefix_total >= CACHE_MIN_TOKENS and call.sim.cache.hit(call.upstream, call.model, prefix_digest):
        cached = prefix_total // CACHE_STEP * CACHE_STEP
    return max(total, 1), cached, _last_text(messages)


def _answers_tool_results(messages: list) -> bool:
    """A conversation that already ran a tool gets text: one tool round each, as agents' loops end."""
    return any(isinstance(m, dict) and m.get("role") == "tool" for m in messages)


def _chosen_tool(body: dict) -> dict | None:
    """The function to call, or None when the model should answer with text."""
    tools = body.get("tools")
    if not tools:
        return None
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise BadRequest("Invalid 'tools': expected an array of objects.", param="tools")
    messages = body["messages"]
    choice = body.get("tool_choice", "auto")
    if choice == "none" or _answers_tool_results(messages):
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        for tool in tools:
            if (tool.get("function") or {}).get("name") == name:
                return tool["function"]
        raise BadRequest(
            f"Invalid 'tool_choice': no function named '{name}' in 'tools'.", param="tool_choice"
        )
    return tools[0].get("function") or {}


def _response_format(body: dict) -> dict | None:
    """{'schema': ...} for json_schema / json_object modes (None schema = any object), else None."""
    fmt = body.get("response_format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"schema": None}
    spec = fmt.get("json_schema") if kind == "json_schema" else None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise BadRequest(
            "Invalid 'response_format': expected type 'text', 'json_object' or 'json_schema' with a name.",
            param="response_format",
        )
    return {"schema": spec.get("schema") if isinstance(spec.get("schema"), dict) else None}


def _usage(prompt: int, cached: int, completion: int, reasoning: int = 0) -> dict:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _int_param(body: dict, *names: str) -> int | None:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BadRequest(f"Invalid '{name}': expected an integer greater than or equal to 1.", param=name)
        return value
    return None


async def chat_completions(call: Call) -> web.StreamResponse:
    body = call.body
    if not call.model:
        raise BadRequest("you must provide a model parameter", param="model")
    prompt_tokens, cached, last = analyse_chat(call)
    tool = _chosen_tool(body)
    n = _int_param(body, "n") or 1
    max_tokens = _int_param(body, "max_completion_tokens", "max_tokens")
    stop = body.get("stop")
    stop = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else None
    fmt = _response_format(body)
    effort = body.get("reasoning_effort")
    if effort not in (None, "none", "minimal", "low", "medium", "high", "xhigh"):
        raise BadRequest(f"Invalid value for 'reasoning_effort': {effort!r}.", param="reasoning_effort")
    reasoning = thinking_text(last) if effort not in (None, "none") else None
    if tool is not None:
        arguments = orjson.dumps(tool_arguments(tool.get("parameters"), last)).decode()
        call_id = new_id("call_")
        completion = count_tokens(tool.get("name", "") + arguments)
        finish = "tool_calls"
        text = None
    elif fmt is not None:
        text = structured_text(fmt.get("schema"), last)
        completion, finish = count_tokens(text), "stop"
    else:
        text, why = cut(
            reply_text(call.upstream, call.model, last, call.rule.output_tokens), max_tokens, stop
        )
        completion = count_tokens(text)
        finish = "length" if why == "max_tokens" else "stop"
    thought = count_tokens(reasoning) if reasoning else 0
    usage = _usage(prompt_tokens, cached, (completion + thought) * n, thought * n)
    cid = new_id("chatcmpl-", 29)
    created = int(time.time())
    if body.get("stream"):
        return await _stream_chat(
            call,
            cid,
            created,
            n,
            text,
            tool,
            finish,
            usage,
            arguments if tool else "",
            call_id if tool else "",
            reasoning,
        )
    if call.rule.error == "garbage":
        call.status = "200"
        return web.Response(
            body=b"<html><body>upstream sent garbage{{", content_type="application/json", headers=headers()
        )
    if tool is not None:
        message = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "annotations": [],
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": tool.get("name", ""), "arguments": arguments},
                }
            ],
        }
    else:
        message = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
    if reasoning:
        message = {"role": "assistant", "reasoning_content": reasoning, **message}  # as DeepSeek/Qwen do
    payload = {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": call.model,
        "choices": [
            {"index": i, "message": message, "logprobs": None, "finish_reason": finish} for i in range(n)
        ],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }
    return call.json(payload, headers=headers())


async def _stream_chat(
    call: Call,
    cid: str,
    created: int,
    n: int,
    text: str | None,
    tool: dict | None,
    finish: str,
    usage: dict,
    arguments: str,
    call_id: str,
    reasoning: str | None,
) -> web.StreamResponse:
    include_usage = bool((call.body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": call.model,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }
    if include_usage:
        base["usage"] = None
    deltas = pieces(text) if text is not None else json_pieces(arguments)
    thoughts = pieces(reasoning) if reasoning else []
    stream = Stream(call, n * (len(deltas) + len(thoughts) + 2) + 2, STREAM_ERROR)
    await stream.start(headers())

    def chunk(index: int, delta: dict, finish_reason: str | None = None) -> bytes:
        data = dict(
            base, choices=[{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        )
        return b"data: " + orjson.dumps(data) + b"\n\n"

    for index in range(n):
        for piece in thoughts:
            await stream.send(
                chunk(index, {"role": "assistant", "content": None, "reasoning_content": piece})
            )
        if tool is not None:
            await stream.send(
                chunk(
                    index,
                    {
                        "role": "assistant",
                        "content": None,
                        "refusal": None,
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": call_id,
                                "type": "function",
                                "function": {"name": tool.get("name", ""), "arguments": ""},
                            }
                        ],
                    },
                )
            )
            for piece in deltas:
                await stream.send(
                    chunk(index, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                )
        else:
            await stream.send(chunk(index, {"role": "assistant", "content": "", "refusal": None}))
            if call.rule.error == "garbage":
                await stream.send(
                    b'data: {"id": "' + cid.encode() + b'", "choices": [{"delta": {"content": "hel\n\n'
                )
                await stream.send(b"data: <<not json>>\n\n")
                break
            for piece in deltas:
                await stream.send(chunk(index, {"content": piece}))
        await stream.send(chunk(index, {}, finish))
    if include_usage:
        await stream.send(b"data: " + orjson.dumps(dict(base, choices=[], usage=usage)) + b"\n\n")
    await stream.send(b"data: [DONE]\n\n")
    await stream.resp.write_eof()
    return stream.resp


# ---- embeddings, images, models ----------------------------------------------------------------


def _vector(text: str, dims: int) -> array:
    raw = array("h", hashlib.shake_256(text.encode("utf-8", "surrogatepass")).digest(dims * 2))
    norm = sum(v * v for v in raw) ** 0.5 or 1.0
    return array("f", [v / norm for v in raw])


async def embeddings(call: Call) -> web.Response:
    body = call.body
    if not call.model:
        raise BadRequest("you must provide a model parameter", param="model")
    raw = body.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw)):
        inputs = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(x, str | list) for x in raw):
        inputs = raw
    else:
        raise BadRequest("'input' must be a non-empty string or array.", param="input")
    dims = _int_param(body, "dimensions") or 1536
    b64 = body.get("encoding_format") == "base64"
    data = []
    tokens = 0
    for i, item in enumerate(inputs):
        text = item if isinstance(item, str) else " ".join(str(t) for t in item)
        tokens += count_tokens(item) if isinstance(item, str) else len(item)
        vector = _vector(text, dims)
        embedding = base64.b64encode(vector.tobytes()).decode() if b64 else vector.tolist()
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    payload = {
        "object": "list",
        "data": data,
        "model": call.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return call.json(payload, headers=headers())


def _png() -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + tag + data + zlib.crc32(tag + data).to_bytes(4, "big")

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    pixel = zlib.compress(b"\x00\x33\x99\xff")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixel) + chunk(b"IEND", b"")


PNG = _png()
PNG_B64 = base64.b64encode(PNG).decode()


async def images_generations(call: Call) -> web.Response:
    return _images(call, call.body)


async def images_edits(call: Call) -> web.Response:
    """Like OpenAI's edits: `image` (or `image[]`) files required, each described in the journal."""
    body = call.body
    if not call.model:
        raise BadRequest("you must provide a model parameter", param="model")
    images = body.get("image", body.get("image[]"))
    images = images if isinstance(images, list) else [images]
    if not all(isinstance(i, dict) and i.get("size") for i in images):
        raise BadRequest("'image' must be one or more non-empty image files.", param="image")
    n = body.get("n")
    if isinstance(n, str):
        if not n.isdigit():
            raise BadRequest("Invalid 'n': expected an integer greater than or equal to 1.", param="n")
        body = dict(body, n=int(n))
    return _images(call, body)


def _images(call: Call, body: dict) -> web.Response:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise BadRequest("'prompt' must be a non-empty string.", param="prompt")
    n = _int_param(body, "n") or 1
    if n > 10:
        raise BadRequest("Invalid 'n': must be at most 10.", param="n")
    fmt = body.get("response_format") or "url"
    if fmt not in ("url", "b64_json"):
        raise BadRequest("Invalid 'response_format': expected 'url' or 'b64_json'.", param="response_format")
    base = f"{call.request.scheme}://{call.request.host}/u/{call.upstream}/v1/files"
    data = []
    for _ in range(n):
        item = {"b64_json": PNG_B64} if fmt == "b64_json" else {"url": f"{base}/{new_id('img_')}.png"}
        item["revised_prompt"] = prompt
        data.append(item)
    return call.json({"created": int(time.time()), "data": data}, headers=headers())


async def rerank(call: Call) -> web.Response:
    """Cohere/Jina-style rerank: documents scored by the words they share with the query."""
    body = call.body
    if not call.model:
        raise BadRequest("you must provide a model parameter", param="model")
    query, documents = body.get("query"), body.get("documents")
    if not isinstance(query, str) or not query:
        raise BadRequest("'query' must be a non-empty string.", param="query")
    if not isinstance(documents, list) or not documents or not all(isinstance(d, str) for d in documents):
        raise BadRequest("'documents' must be a non-empty array of strings.", param="documents")
    top_n = _int_param(body, "top_n") or len(documents)
    words = set(query.lower().split())
    scores = [len(words & set(d.lower().split())) / (len(words) or 1) for d in documents]
    order = sorted(range(len(documents)), key=lambda i: (-scores[i], i))[:top_n]
    tokens = count_tokens(query) + sum(count_tokens(d) for d in documents)
    payload = {
        "id": new_id("rerank-"),
        "model": call.model,
        "results": [{"index": i, "relevance_score": round(scores[i], 6)} for i in order],
        "usage": {"total_tokens": tokens},
    }
    return call.json(payload, headers=headers())


async def completions(call: Call) -> web.StreamResponse:
    """Legacy completions: one `choices[].text` per prompt, counted like chat."""
    body = call.body
    if not call.model:
        raise BadRequest("you must provide a model parameter", param="model")
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise BadRequest("'prompt' must be a string or an array of strings.", param="prompt")
    max_tokens = _int_param(body, "max_tokens")
    choices, completion = [], 0
    for index, text in enumerate(prompts):
        answer, why = cut(
            reply_text(call.upstream, call.model, text, call.rule.output_tokens), max_tokens, None
        )
        completion += count_tokens(answer)
        choices.append(
            {
                "text": answer,
                "index": index,
                "logprobs": None,
                "finish_reason": "length" if why == "max_tokens" else "stop",
            }
        )
    prompt_tokens = sum(count_tokens(p) for p in prompts)
    payload = {
        "id": new_id("cmpl-", 29),
        "object": "text_completion",
        "created": int(time.time()),
        "model": call.model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        },
    }
    if body.get("stream") is True:
        return await _stream_completions(call, payload)
    return call.json(payload, headers=headers())


async def _stream_completions(call: Call, payload: dict) -> web.StreamResponse:
    """Completions as OpenAI streams them: `text` pieces per choice, a finish chunk each, then
    the usage chunk (`choices: []`) when `stream_options.include_usage`, then [DONE]."""
    include_usage = bool((call.body.get("stream_options") or {}).get("include_usage"))
    base = {k: payload[k] for k in ("id", "object", "created", "model")}
    texts = [pieces(choice["text"]) for choice in payload["choices"]]
    stream = Stream(call, sum(len(t) + 1 for t in texts) + 2, STREAM_ERROR)
    await stream.start(headers())

    def chunk(index: int, text: str, finish_reason: str | None = None) -> bytes:
        choice = {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}
        return b"data: " + orjson.dumps(dict(base, choices=[choice])) + b"\n\n"

    for choice, parts in zip(payload["choices"], texts, strict=True):
        for piece in parts:
            await stream.send(chunk(choice["index"], piece))
        await stream.send(chunk(choice["index"], "", choice["finish_reason"]))
    if include_usage:
        await stream.send(b"data: " + orjson.dumps(dict(base, choices=[], usage=payload["usage"])) + b"\n\n")
    await stream.send(b"data: [DONE]\n\n")
    await stream.resp.write_eof()
    return stream.resp


SPEECH_FORMATS = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


async def audio_speech(call: Call) -> web.Response:
    """Text to speech: bytes that start like an MP3 frame and carry the input, so tests can check them."""
    body = call.body
    if not call.model:
        raise BadRequest("you must provide a model parameter", param="model")
    for name in ("input", "voice"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise BadRequest(f"'{name}' must be a non-empty string.", param=name)
    fmt = body.get("response_format") or "mp3"
    if fmt not in SPEECH_FORMATS:
        raise BadRequest(f"Invalid 'response_format': {fmt!r}.", param="response_format")
    call.status = "200"
    audio = b"ID3\x04\x00\x00\x00\x00\x00\x00" + f"{body['voice']}:{body['input']}".encode()
    return web.Response(body=audio, content_type=SPEECH_FORMATS[fmt], headers=headers())


async def audio_transcriptions(call: Call) -> web.Response:
    """Whisper-style transcription of the uploaded `file` (described by the form reader)."""
    if not call.model:
        raise BadRequest("you must provide a model parameter", param="model")
    upload = call.body.get("file")
    if not isinstance(upload, dict) or not upload.get("size"):
        raise BadRequest("'file' must be a non-empty file upload.", param="file")
    text = f"Transcript of {upload['filename']} ({upload['size']} bytes) from {call.upstream}."
    fmt = call.body.get("response_format") or "json"
    if fmt == "json":
        return call.json({"text": text}, headers=headers())
    if fmt != "verbose_json":
        raise BadRequest(f"Invalid 'response_format': {fmt!r} (the simulator speaks json and verbose_json).")
    # two timed segments, as Whisper splits at sentence ends: enough to check srt/vtt rendering
    head, _, tail = text.partition(" (")
    segments = [
        {"id": 0, "start": 0.0, "end": 1.5, "text": " " + head},
        {"id": 1, "start": 1.5, "end": 3.25, "text": " (" + tail},
    ]
    verbose = {
        "task": "transcribe",
        "language": "english",
        "duration": 3.25,
        "text": text,
        "segments": segments,
    }
    return call.json(verbose, headers=headers())


async def models(call: Call) -> web.Response:
    data = [{"id": m, "object": "model", "created": 1735689600, "owned_by": owner} for m, owner in MODELS]
    return call.json({"object": "list", "data": data}, headers=headers())
