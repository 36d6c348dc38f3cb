"""Smaller endpoints: models list, count_tokens, embeddings, image generation and edits, rerank."""

from __future__ import annotations

import orjson

from core.pricing import Usage
from groups.policy import callable_models

from . import multipart
from .accounting import charge_for, estimated_usage, hold_estimate
from .chat import (
    ChatRequest,
    ChatStream,
    detached,
    first_chunk,
    max_tokens_of,
    read_json,
    require_model,
    upstream_client_error,
)
from .convert.errors import ConversionError
from .convert.requests import openai_wants_usage, openai_with_stream_usage
from .convert.shapes import json_array
from .convert.streams import OpenAIPassthroughStream
from .convert.usage import estimate_tokens, request_chars, usage_from_openai
from .errors import RelayError, json_response
from .flow import Call
from .images import hide_upstream_urls
from .multipart import Upload
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


def _simple_build(path: str, body: dict, model: str):
    def build(step, channel):
        payload = dict(body, model=channel.upstream_model(model))
        return path, orjson.dumps(payload), headers_for(channel)

    return build


async def _plan_and_hold(call: Call, body: dict, family: str, **hold_kwargs) -> str:
    """The call's route through the key's groups and its hold; the requested model name."""
    model = require_model(body)
    call.model_name = model
    call.plan = plan_route(
        snapshot=call.snapshot, token=call.token, model_name=model, family=family, api_format="openai"
    )
    estimate = hold_estimate(
        model=call.plan.model,
        billing_mode=call.token.billing_mode,
        multiplier=call.plan.max_multiplier,
        usd_cny_rate=call.snapshot.usd_cny_rate,
        **hold_kwargs,
    )
    await call.hold(estimate.amount_micro)
    return model


async def _relay_openai_json(
    call: Call,
    body: dict,
    *,
    path: str,
    family: str,
    usage_of,
    render=None,
    finish=None,
    build=None,
    accept=read_json,
    **hold_kwargs,
):
    """Plan, hold, dispatch and settle one OpenAI JSON call. `render` turns the upstream answer
    into another client format's response before settling (a conversion error charges nothing);
    otherwise `finish` may rewrite the OpenAI answer (e.g. hide upstream URLs) once settled.
    `build` and `accept` replace the JSON request and answer (multipart uploads, audio bytes)."""
    model = await _plan_and_hold(call, body, family, **hold_kwargs)

    async def run():
        served = await call.dispatch(build=build or _simple_build(path, body, model), accept=accept)
        call.release(served)
        outcome, status, data = served.result
        if outcome == "error":
            raise upstream_client_error(status, data)
        try:
            response = render(data) if render is not None else None
        except ConversionError as exc:
            raise RelayError("upstream", f"The upstream answer could not be converted: {exc}") from None
        usage, estimated = usage_of(data)
        charge = charge_for(
            model=call.planned.model,
            usage=usage,
            billing_mode=call.token.billing_mode,
            multiplier=served.step.multiplier,
            usd_cny_rate=call.snapshot.usd_cny_rate,
        )
        await call.settle(
            served=served, usage=usage, charge=charge, status="success", http_status=200, estimated=estimated
        )
        if response is None:
            if finish is not None:
                data = await finish(data, served.channel)
            response = json_response(dict(data, model=model) if "model" in data else data)
        return response

    return await detached(call, run())


async def handle_embeddings(request, call: Call, body: dict):
    if "input" not in body:
        raise RelayError("invalid_request", "'input' is required.", param="input")
    prompt_chars = (
        request_chars({"input": body["input"]})
        if not isinstance(body["input"], list) or not (body["input"] and isinstance(body["input"][0], int))
        else len(body["input"]) * 4
    )

    def usage_of(data):
        usage = usage_from_openai(data.get("usage"))
        if usage is None:
            return estimated_usage(prompt_chars=prompt_chars, output_chars=0), True
        return usage, False

    return await _relay_openai_json(
        call,
        body,
        path="/embeddings",
        family="embeddings",
        usage_of=usage_of,
        prompt_chars=prompt_chars,
        max_tokens=None,
    )


async def handle_images(
    request, call: Call, body: dict, *, render=None, path="/images/generations", build=None
):
    if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
        raise RelayError("invalid_request", "'prompt' must be a non-empty string.", param="prompt")
    n = body.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
        raise RelayError("invalid_request", f"'n' must be a whole number from 1 to {MAX_IMAGES}.", param="n")

    def usage_of(data):
        images = data.get("data")
        count = len(images) if isinstance(images, list) else n
        return Usage(images=count, calls=max(count, 1)), not isinstance(images, list)

    async def finish(data, channel):
        return await hide_upstream_urls(request, data, channel)

    return await _relay_openai_json(
        call,
        body,
        path=path,
        family="images",
        usage_of=usage_of,
        render=render,
        finish=finish,
        build=build,
        images=n,
    )


async def handle_image_edit(request, call: Call, form: dict):
    """POST /v1/images/edits (multipart `image` or `image[]`, optional `mask`): the uploads go
    upstream intact; routed, billed and answered like generations."""
    images = form.get("image", form.get("image[]"))
    images = images if isinstance(images, list) else [images]
    if not all(isinstance(i, Upload) and i.data for i in images):
        raise RelayError(
            "invalid_request", "'image' must be one or more non-empty image files.", param="image"
        )
    mask = form.get("mask")
    if mask is not None and not (isinstance(mask, Upload) and mask.data):
        raise RelayError("invalid_request", "'mask' must be a non-empty image file.", param="mask")
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        n = int(fields.get("n") or 1)
    except ValueError:
        raise RelayError(
            "invalid_request", f"'n' must be a whole number from 1 to {MAX_IMAGES}.", param="n"
        ) from None
    files: dict[str, Upload | list[Upload]] = (
        {"image": images[0]} if len(images) == 1 else {"image[]": images}
    )
    if mask is not None:
        files["mask"] = mask

    def build(step, channel):
        raw, content_type = multipart.encode(
            dict(fields, model=channel.upstream_model(fields["model"].strip())), files
        )
        return (
            "/images/edits",
            raw,
            dict(headers_for(channel, json_body=False), **{"Content-Type": content_type}),
        )

    return await handle_images(request, call, dict(fields, n=n), path="/images/edits", build=build)


async def handle_rerank(request, call: Call, body: dict):
    """Cohere/Jina-shaped rerank (query, documents, top_n → results), billed per call."""
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

    def usage_of(data):
        return Usage(calls=1), False

    return await _relay_openai_json(
        call, body, path="/rerank", family="embeddings", usage_of=usage_of, max_tokens=None
    )


async def handle_completions(request, call: Call, body: dict):
    """Legacy OpenAI completions, billed per token like chat; a stream is relayed like a chat stream."""
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise RelayError(
            "invalid_request", "'prompt' must be a string or an array of strings.", param="prompt"
        )
    max_tokens = max_tokens_of(body, "max_tokens")
    prompt_chars = sum(len(p) for p in prompts)
    if body.get("stream") is True:
        call.stream = True
        model = await _plan_and_hold(call, body, "chat", prompt_chars=prompt_chars, max_tokens=max_tokens)
        build = _simple_build("/completions", openai_with_stream_usage(body), model)
        served = await call.dispatch(build=build, accept=first_chunk)
        outcome, status, payload = served.result
        if outcome == "error":
            call.release(served)
            raise upstream_client_error(status, payload)
        return ChatStream(call, _CompletionStream(body), served, prompt_chars).response()

    def usage_of(data):
        usage = usage_from_openai(data.get("usage"))
        if usage is None:
            choices = json_array(data.get("choices"))
            output_chars = sum(len(c.get("text") or "") for c in choices if isinstance(c, dict))
            return estimated_usage(prompt_chars=prompt_chars, output_chars=output_chars), True
        return usage, False

    return await _relay_openai_json(
        call,
        body,
        path="/completions",
        family="chat",
        usage_of=usage_of,
        prompt_chars=prompt_chars,
        max_tokens=max_tokens,
    )


class _CompletionStream:
    """What `ChatStream` needs to relay a completions stream: its chunks pass through as OpenAI's,
    the usage chunk (always asked upstream) kept only if the client asked for it."""

    stream_content_type = ChatRequest.stream_content_type

    def __init__(self, body: dict):
        self.include_usage = openai_wants_usage(body)

    def stream_converter(self, channel_kind: str):
        return OpenAIPassthroughStream(self.include_usage)
