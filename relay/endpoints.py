"""Smaller endpoints: models list, count_tokens, embeddings, image generation and edits, rerank,
completions. Those that call an upstream are a `Spec` each, run by `relay.pipeline.run`."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from django.http import HttpResponse, StreamingHttpResponse

from core.pricing import Usage
from groups.policy import callable_models

from . import multipart
from .accounting import estimated_usage
from .chat import ChatRequest, ChatStream, max_tokens_of, require_model
from .convert.requests import openai_wants_usage, openai_with_stream_usage
from .convert.shapes import json_array
from .convert.streams import OpenAIPassthroughStream
from .convert.usage import estimate_tokens, request_chars, usage_from_openai
from .errors import RelayError, json_response
from .flow import Call, Served, UpstreamRequest
from .images import hide_upstream_urls
from .multipart import Upload
from .pipeline import Estimate, Metered, Spec, read_json, run
from .planner import plan_route
from .upstream import headers_for

MODEL_CREATED = 1_700_000_000
MAX_IMAGES = 10


def _model_object(api_format: str, name: str, group: str) -> dict:
    if api_format == "anthropic":
        return {"type": "model", "id": name, "display_name": name, "created_at": "2025-01-01T00:00:00Z"}
    return {"id": name, "object": "model", "created": MODEL_CREATED, "owned_by": group}


async def handle_models(request, call: Call):
    """Only what this key can call, across its select and fallback groups, in its client's shape."""
    listed = callable_models(call.snapshot, call.token, call.api_format)
    data = [_model_object(call.api_format, name, group) for name, group in listed]
    if call.api_format == "anthropic":
        return json_response(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )
    return json_response({"object": "list", "data": data})


async def handle_model_detail(request, call: Call, model_id: str):
    """GET /v1/models/{id} (the SDKs' `models.retrieve`): a model this key can call, else 404."""
    call.model_name = model_id
    for name, group in callable_models(call.snapshot, call.token, call.api_format):
        if name == model_id:
            return json_response(_model_object(call.api_format, name, group))
    known = call.snapshot.groups
    groups = ", ".join(known[g].name for g in call.token.group_ids if g in known) or "none"
    raise RelayError(
        "model_not_found", f"The model '{model_id}' is not available in this token's groups ({groups})."
    )


async def handle_count_tokens(request, call: Call, body: dict):
    """An estimate of the prompt's input tokens; free, and checked against the key's groups."""
    model = require_model(body)
    call.model_name = model
    if not isinstance(body.get("messages"), list):
        raise RelayError("invalid_request", "'messages' must be an array.", param="messages")
    plan_route(
        snapshot=call.snapshot, token=call.token, model_name=model, family="chat", api_format="anthropic"
    )
    return json_response({"input_tokens": estimate_tokens(request_chars(body))})


class OpenAISpec(Spec[dict, dict]):
    """An OpenAI JSON endpoint: the body goes upstream as it came, but for the channel's model
    name, and its JSON answer comes back with the client's model name."""

    path = ""

    def __init__(self, body: dict):
        self.body = body

    def parse(self, call: Call) -> None:
        self.model = call.model_name = require_model(self.body)

    def estimate(self) -> Estimate:
        return Estimate()

    def build(self, step, channel) -> UpstreamRequest:
        payload = dict(self.body, model=channel.upstream_model(self.model))
        return UpstreamRequest(self.path, orjson.dumps(payload), headers_for(channel))

    accept = staticmethod(read_json)

    def respond(self, served: Served[dict]) -> dict:
        return served.result

    async def deliver(self, served, reply) -> HttpResponse:
        return json_response(dict(reply, model=self.model) if "model" in reply else reply)


class EmbeddingsSpec(OpenAISpec):
    family = "embeddings"
    path = "/embeddings"

    def parse(self, call: Call) -> None:
        body = self.body
        if "input" not in body:
            raise RelayError("invalid_request", "'input' is required.", param="input")
        self.prompt_chars = (
            request_chars({"input": body["input"]})
            if not isinstance(body["input"], list)
            or not (body["input"] and isinstance(body["input"][0], int))
            else len(body["input"]) * 4
        )
        super().parse(call)

    def estimate(self) -> Estimate:
        return Estimate(prompt_chars=self.prompt_chars)

    def usage(self, served, reply) -> Metered:
        usage = usage_from_openai(served.result.get("usage"))
        if usage is None:
            return Metered(estimated_usage(prompt_chars=self.prompt_chars, output_chars=0), estimated=True)
        return Metered(usage)


async def handle_embeddings(request, call: Call, body: dict):
    return await run(call, EmbeddingsSpec(body))


class ImagesSpec(OpenAISpec):
    """Image generation, billed per image; image URLs in the answer point at the relay.

    `render` answers in another client format instead (Gemini's image models)."""

    family = "images"
    path = "/images/generations"

    def __init__(self, request, body: dict, *, render: Callable[[dict], HttpResponse] | None = None):
        super().__init__(body)
        self.request = request
        self.render = render

    def parse(self, call: Call) -> None:
        body = self.body
        if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
            raise RelayError("invalid_request", "'prompt' must be a non-empty string.", param="prompt")
        n = body.get("n", 1)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
            raise RelayError(
                "invalid_request", f"'n' must be a whole number from 1 to {MAX_IMAGES}.", param="n"
            )
        self.n = n
        super().parse(call)

    def estimate(self) -> Estimate:
        return Estimate(images=self.n)

    def respond(self, served):
        return self.render(served.result) if self.render is not None else served.result

    def usage(self, served, reply) -> Metered:
        images = served.result.get("data")
        count = len(images) if isinstance(images, list) else self.n
        return Metered(Usage(images=count, calls=max(count, 1)), estimated=not isinstance(images, list))

    async def deliver(self, served, reply) -> HttpResponse:
        if self.render is not None:
            return reply
        return await super().deliver(served, await hide_upstream_urls(self.request, reply, served.channel))


async def handle_images(request, call: Call, body: dict, *, render=None):
    return await run(call, ImagesSpec(request, body, render=render))


class ImageEditSpec(ImagesSpec):
    """POST /v1/images/edits (multipart `image` or `image[]`, optional `mask`): the uploads go
    upstream intact; routed, billed and answered like generations."""

    path = "/images/edits"

    def __init__(self, request, form: dict):
        super().__init__(request, {})
        self.form = form

    def parse(self, call: Call) -> None:
        form = self.form
        images = form.get("image", form.get("image[]"))
        images = images if isinstance(images, list) else [images]
        if not all(isinstance(i, Upload) and i.data for i in images):
            raise RelayError(
                "invalid_request", "'image' must be one or more non-empty image files.", param="image"
            )
        mask = form.get("mask")
        if mask is not None and not (isinstance(mask, Upload) and mask.data):
            raise RelayError("invalid_request", "'mask' must be a non-empty image file.", param="mask")
        self.fields = {k: v for k, v in form.items() if isinstance(v, str)}
        try:
            n = int(self.fields.get("n") or 1)
        except ValueError:
            raise RelayError(
                "invalid_request", f"'n' must be a whole number from 1 to {MAX_IMAGES}.", param="n"
            ) from None
        self.files: dict[str, Upload | list[Upload]] = (
            {"image": images[0]} if len(images) == 1 else {"image[]": images}
        )
        if mask is not None:
            self.files["mask"] = mask
        self.body = dict(self.fields, n=n)
        super().parse(call)

    def build(self, step, channel) -> UpstreamRequest:
        raw, content_type = multipart.encode(
            dict(self.fields, model=channel.upstream_model(self.fields["model"].strip())), self.files
        )
        headers = dict(headers_for(channel, json_body=False), **{"Content-Type": content_type})
        return UpstreamRequest(self.path, raw, headers)


async def handle_image_edit(request, call: Call, form: dict):
    return await run(call, ImageEditSpec(request, form))


class RerankSpec(OpenAISpec):
    """Cohere/Jina-shaped rerank (query, documents, top_n → results), billed per call."""

    family = "embeddings"
    path = "/rerank"

    def parse(self, call: Call) -> None:
        body = self.body
        if not isinstance(body.get("query"), str) or not body["query"].strip():
            raise RelayError("invalid_request", "'query' must be a non-empty string.", param="query")
        documents = body.get("documents")
        if not isinstance(documents, list) or not documents or not all(isinstance(d, str) for d in documents):
            raise RelayError(
                "invalid_request", "'documents' must be a non-empty array of strings.", param="documents"
            )
        top_n = body.get("top_n")
        if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
            raise RelayError("invalid_request", "'top_n' must be a positive integer.", param="top_n")
        super().parse(call)

    def usage(self, served, reply) -> Metered:
        return Metered(Usage(calls=1))


async def handle_rerank(request, call: Call, body: dict):
    return await run(call, RerankSpec(body))


class CompletionsSpec(OpenAISpec):
    """Legacy OpenAI completions, billed per token like chat; a stream is relayed like a chat stream."""

    path = "/completions"

    def parse(self, call: Call) -> None:
        body = self.body
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise RelayError(
                "invalid_request", "'prompt' must be a string or an array of strings.", param="prompt"
            )
        self.max_tokens = max_tokens_of(body, "max_tokens")
        self.prompt_chars = sum(len(p) for p in prompts)
        if body.get("stream") is True:
            self.stream = call.stream = True
            self.source = _CompletionStream(body)
            self.body = openai_with_stream_usage(body)
        super().parse(call)

    def estimate(self) -> Estimate:
        return Estimate(prompt_chars=self.prompt_chars, max_tokens=self.max_tokens)

    def usage(self, served, reply) -> Metered:
        usage = usage_from_openai(served.result.get("usage"))
        if usage is None:
            choices = json_array(served.result.get("choices"))
            output_chars = sum(len(c.get("text") or "") for c in choices if isinstance(c, dict))
            return Metered(
                estimated_usage(prompt_chars=self.prompt_chars, output_chars=output_chars), estimated=True
            )
        return Metered(usage)

    def stream_response(self, call: Call, served) -> StreamingHttpResponse:
        return ChatStream(call, self.source, served, self.prompt_chars).response()


async def handle_completions(request, call: Call, body: dict):
    return await run(call, CompletionsSpec(body))


class _CompletionStream:
    """What `ChatStream` needs to relay a completions stream: its chunks pass through as OpenAI's,
    the usage chunk (always asked upstream) kept only if the client asked for it."""

    stream_content_type = ChatRequest.stream_content_type

    def __init__(self, body: dict):
        self.include_usage = openai_wants_usage(body)

    def stream_converter(self, channel_kind: str):
        return OpenAIPassthroughStream(self.include_usage)
