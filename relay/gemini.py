"""/v1beta/*: Google's Gemini API (generateContent, streamGenerateContent, countTokens, models).

Gemini-native clients reach every channel through chat: a text model's request becomes an
OpenAI chat request and runs the chat path (plan → hold → dispatch → settle, billed as chat),
its answer and stream are converted back (`relay.convert.gemini`); on a Gemini channel the
request and answer pass through as sent, but for the model name. An image model (Nano
Banana) becomes an images/generations call, billed per image, answered with inline PNG parts.
Every refusal is a Gemini error body: `{"error": {"code", "message", "status"}}`.
"""

from __future__ import annotations

import functools

from django.http import HttpResponse, StreamingHttpResponse

from groups.policy import callable_models

from .chat import ChatRequest, handle_chat, parse_body
from .convert.chain import ChainedStream
from .convert.errors import ConversionError
from .convert.gemini import (
    ChatToGeminiStream,
    camelize,
    chat_to_gemini,
    gemini_prompt,
    gemini_to_chat,
    images_to_gemini,
    include_thoughts,
    model_entry,
    models_list,
)
from .convert.gemini_upstream import GeminiPassthroughStream
from .convert.sse import encode_sse
from .convert.usage import estimate_tokens, request_chars
from .endpoints import MAX_IMAGES, handle_images
from .errors import RelayError, json_response
from .flow import Call
from .planner import plan_route
from .views import relay_view

SSE = "text/event-stream; charset=utf-8"


class GeminiChat(ChatRequest):
    """The chat request of a Gemini generateContent call: answers and streams go back as Gemini."""

    def __init__(self, *args, sse: bool, thoughts: bool, native: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.native = {k: v for k, v in native.items() if k != "model"}  # as sent, for Gemini channels
        self.sse = sse  # `alt=sse`: server-sent events; otherwise one JSON array, as Google answers
        self.thoughts = thoughts  # `includeThoughts`: reasoning comes back as `thought` parts
        self.include_usage = True  # Gemini streams always end with usageMetadata
        if not sse:
            self.stream_content_type = "application/json"

    def upstream_body(self, kind: str) -> dict:
        return self.native if kind == "gemini" else super().upstream_body(kind)

    def answer(self, out: dict) -> dict:
        return chat_to_gemini(out, model=self.model, thoughts=self.thoughts)

    def answer_from(self, data: dict, kind: str) -> dict:
        if kind == "gemini":  # passed through: only the model name is the client's
            return dict(data, modelVersion=self.model) if "modelVersion" in data else data
        return super().answer_from(data, kind)

    def stream_converter(self, channel_kind: str):
        if channel_kind == "gemini":
            return GeminiPassthroughStream(self.model, sse=self.sse)
        return ChainedStream(
            super().stream_converter(channel_kind),
            ChatToGeminiStream(self.model, sse=self.sse, thoughts=self.thoughts),
        )


def _converted(convert, *args, **kwargs):
    try:
        return convert(*args, **kwargs)
    except ConversionError as exc:
        raise RelayError("invalid_request", str(exc)) from None


def _is_image_model(call: Call, model: str) -> bool:
    info = call.snapshot.models.get(model)
    return info is not None and info.kind == "image"


async def handle_generate(
    request, call: Call, model: str, *, stream: bool
) -> HttpResponse | StreamingHttpResponse:
    """POST /v1beta/models/{model}:generateContent and :streamGenerateContent."""
    body = parse_body(request)
    call.model_name = model
    sse = request.GET.get("alt") == "sse"
    if _is_image_model(call, model):
        return await _generate_image(request, call, body, model, stream=stream, sse=sse)
    chat = _converted(gemini_to_chat, body, model=model, stream=stream)
    return await handle_chat(
        request,
        call,
        chat,
        chat_type=functools.partial(GeminiChat, sse=sse, thoughts=include_thoughts(body), native=body),
        chat_format="openai",
    )


async def _generate_image(request, call: Call, body: dict, model: str, *, stream: bool, sse: bool):
    """Nano Banana: one image from the last user turn's text, as inline base64 data."""
    prompt = _converted(gemini_prompt, body)
    images = dict(
        _image_options(camelize(body).get("generationConfig") or {}),
        model=model,
        prompt=prompt,
        response_format="b64_json",
    )

    def render(data: dict) -> HttpResponse:
        out = images_to_gemini(data, model=model)
        if not stream:
            return json_response(out)
        if sse:
            return HttpResponse(encode_sse(out), content_type=SSE)
        return json_response([out])

    return await handle_images(request, call, images, render=render)


# Gemini's aspect ratios as the OpenAI images sizes that carry them.
SIZES = {"1:1": "1024x1024", "3:2": "1536x1024", "2:3": "1024x1536", "16:9": "1792x1024", "9:16": "1024x1792"}


def _image_options(config: dict) -> dict:
    """`candidateCount` and `imageConfig.aspectRatio` as the images call's `n` and `size`."""
    if config.get("temperature") is not None:
        raise RelayError(
            "invalid_request",
            "'generationConfig.temperature' cannot be carried to an image model on this route.",
        )
    n = config.get("candidateCount", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
        raise RelayError("invalid_request", f"'generationConfig.candidateCount' must be 1 to {MAX_IMAGES}.")
    out: dict = {"n": n}
    image_config = config.get("imageConfig") or {}
    if not isinstance(image_config, dict):
        raise RelayError("invalid_request", "'generationConfig.imageConfig' must be an object.")
    for key, value in image_config.items():
        if key == "aspectRatio" and value in SIZES:
            out["size"] = SIZES[value]
        else:
            raise RelayError(
                "invalid_request",
                f"'generationConfig.imageConfig.{key}' = {value!r} cannot be carried by this route "
                f"(aspectRatio one of {', '.join(SIZES)}).",
            )
    return out


async def handle_count_tokens(request, call: Call, model: str) -> HttpResponse:
    """POST /v1beta/models/{model}:countTokens: an estimate, free, checked against the key's groups."""
    body = parse_body(request)
    call.model_name = model
    inner = body.get("generateContentRequest")
    if isinstance(inner, dict):
        body = {k: v for k, v in inner.items() if k != "model"}
    chat = _converted(gemini_to_chat, body, model=model, stream=False)
    family = "images" if _is_image_model(call, model) else "chat"
    plan_route(snapshot=call.snapshot, token=call.token, model_name=model, family=family, api_format="openai")
    return json_response({"totalTokens": estimate_tokens(request_chars(chat))})


def _generatable(call: Call) -> list[str]:
    """What this key can call through generateContent: its callable text and image models."""
    names = [name for name, _ in callable_models(call.snapshot, call.token, "openai")]
    return [n for n in names if call.snapshot.models[n].kind != "video"]


@relay_view("gemini", methods=("GET",))
async def models(request, call):
    return json_response(models_list(_generatable(call)))


@relay_view("gemini", methods=("GET",))
async def model_detail(request, call, model: str):
    call.model_name = model
    if model in _generatable(call):
        return json_response(model_entry(model))
    known = call.snapshot.groups
    groups = ", ".join(known[g].name for g in call.token.group_ids if g in known) or "none"
    raise RelayError(
        "model_not_found", f"The model '{model}' is not available in this token's groups ({groups})."
    )


@relay_view("gemini")
async def model_action(request, call, model: str, action: str):
    if action == "generateContent":
        return await handle_generate(request, call, model, stream=False)
    if action == "streamGenerateContent":
        return await handle_generate(request, call, model, stream=True)
    if action == "countTokens":
        return await handle_count_tokens(request, call, model)
    raise RelayError(
        "not_found",
        f"Unknown method '{action}': this gateway serves generateContent, streamGenerateContent "
        "and countTokens.",
    )


@relay_view("gemini", methods=("GET", "POST", "PUT", "PATCH", "DELETE"))
async def unknown(request, call, rest: str = ""):
    raise RelayError("not_found", f"Unknown endpoint {request.method} {request.path}.")
