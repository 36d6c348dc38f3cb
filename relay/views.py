"""/v1/* views: thin async wrappers around the relay flow.

Each view authenticates, reads the routing snapshot and hands a `Call` to its handler;
`relay_view` turns every refusal into the client's error format, finishes a call that
failed (`Call.finish(Failed(…))`: its hold released, or its refusal recorded), and stamps
`X-Request-Id` on every response.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid

from django.db import DatabaseError
from django.views.decorators.csrf import csrf_exempt

from core.db import one_call
from core.lean_asgi import lean
from groups.routing import aget_snapshot

from .audio import handle_speech, handle_transcription
from .auth import authenticate
from .chat import handle_chat, parse_body
from .endpoints import (
    handle_completions,
    handle_count_tokens,
    handle_embeddings,
    handle_image_edit,
    handle_images,
    handle_model_detail,
    handle_models,
    handle_rerank,
)
from .errors import RelayError
from .flow import Call, Failed
from .images import image_file as fetch_image_file
from .multipart import read_form
from .ratelimit import rpm_check_token
from .responses_api import (
    handle_response_cancel,
    handle_response_get,
    handle_response_input_items,
    handle_responses,
)
from .videos import (
    handle_video_content,
    handle_video_create,
    handle_video_delete,
    handle_video_get,
    handle_video_list,
    handle_video_remix,
)

logger = logging.getLogger("relay")


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def anthropic_style(request) -> bool:
    """GET /v1/models answers in Anthropic's shape for Anthropic clients."""
    headers = request.headers
    return bool(headers.get("anthropic-version")) or (
        bool(headers.get("x-api-key")) and not headers.get("Authorization")
    )


def relay_view(api_format: str | None, methods: tuple[str, ...] = ("POST",)):
    """Auth, snapshot, error contract and request id around a relay handler."""

    def decorate(handler):
        async def serve(request, *args, **kwargs):
            request_id = new_request_id()
            fmt = api_format or ("anthropic" if anthropic_style(request) else "openai")
            call = None
            try:
                if request.method not in methods:
                    raise RelayError("method_not_allowed", f"Use {' or '.join(methods)} for {request.path}.")
                token = await authenticate(request)
                rpm_check_token(token)
                snapshot = await aget_snapshot()
                call = Call(
                    request_id=request_id,
                    token=token,
                    snapshot=snapshot,
                    api_format=fmt,
                    endpoint=request.path[:64],
                )
                response = await handler(request, call, *args, **kwargs)
            except RelayError as error:
                if call is not None:
                    await call.finish(Failed(error))
                response = error.response(fmt, request_id)
            except asyncio.CancelledError:
                if call is not None and not call.detached:
                    await asyncio.shield(
                        call.finish(Failed(RelayError("upstream", "The client went away.", status=499)))
                    )
                raise
            except DatabaseError:
                logger.exception("relay request %s: database unavailable", request_id)
                failure = RelayError(
                    "unavailable", "The gateway cannot reach its database right now. Please retry shortly."
                )
                response = failure.response(fmt, request_id)
            except Exception:
                logger.exception("relay request %s failed", request_id)
                failure = RelayError("upstream", "The gateway failed to handle this request.", status=500)
                if call is not None:
                    await call.finish(Failed(failure))
                response = failure.response(fmt, request_id)
            response["X-Request-Id"] = request_id
            response["request-id"] = request_id  # the Anthropic SDK's `request_id` reads this one
            return response

        @lean
        @csrf_exempt
        @functools.wraps(handler)
        async def view(request, *args, **kwargs):
            with one_call():  # its database units wait for a connection once at most
                return await serve(request, *args, **kwargs)

        return view

    return decorate


@relay_view("openai")
async def chat_completions(request, call):
    return await handle_chat(request, call, parse_body(request))


@relay_view("anthropic")
async def messages(request, call):
    return await handle_chat(request, call, parse_body(request))


@relay_view("openai")
async def responses(request, call):
    return await handle_responses(request, call, parse_body(request))


@relay_view("openai", methods=("GET", "DELETE"))
async def response_detail(request, call, response_id: str):
    return await handle_response_get(request, call, response_id)


@relay_view("openai", methods=("GET",))
async def response_input_items(request, call, response_id: str):
    return await handle_response_input_items(request, call, response_id)


@relay_view("openai")
async def response_cancel(request, call, response_id: str):
    return await handle_response_cancel(request, call, response_id)


@relay_view("anthropic")
async def count_tokens(request, call):
    return await handle_count_tokens(request, call, parse_body(request))


@relay_view("openai")
async def embeddings(request, call):
    return await handle_embeddings(request, call, parse_body(request))


@relay_view("openai")
async def images_generations(request, call):
    return await handle_images(request, call, parse_body(request))


@relay_view("openai")
async def images_edits(request, call):
    return await handle_image_edit(request, call, _form(request))


@lean
@csrf_exempt
async def image_file(request, image_id: str):
    """A generated image behind its relay URL: no key needed (the random id is the capability)."""
    request_id = new_request_id()
    try:
        if request.method != "GET":
            raise RelayError("method_not_allowed", f"Use GET for {request.path}.")
        response = await fetch_image_file(image_id)
    except RelayError as error:
        response = error.response("openai", request_id)
    response["X-Request-Id"] = request_id
    return response


@relay_view("openai")
async def rerank(request, call):
    return await handle_rerank(request, call, parse_body(request))


@relay_view("openai")
async def completions(request, call):
    return await handle_completions(request, call, parse_body(request))


@relay_view("openai")
async def audio_speech(request, call):
    return await handle_speech(request, call, parse_body(request))


@relay_view("openai")
async def audio_transcriptions(request, call):
    return await handle_transcription(
        request, call, parse_body(request) if _is_json(request) else _form(request)
    )


@relay_view(None, methods=("GET",))
async def models(request, call):
    return await handle_models(request, call)


@relay_view(None, methods=("GET",))
async def model_detail(request, call, model_id: str):
    return await handle_model_detail(request, call, model_id)


@relay_view("openai", methods=("POST", "GET"))
async def videos(request, call):
    if request.method == "GET":
        return await handle_video_list(request, call)
    return await handle_video_create(
        request, call, parse_body(request) if _is_json(request) else _form(request)
    )


@relay_view("openai", methods=("GET", "DELETE"))
async def video_detail(request, call, video_id: str):
    if request.method == "DELETE":
        return await handle_video_delete(request, call, video_id)
    return await handle_video_get(request, call, video_id)


@relay_view("openai")
async def video_remix(request, call, video_id: str):
    return await handle_video_remix(request, call, video_id, parse_body(request))


@relay_view("openai", methods=("GET",))
async def video_content(request, call, video_id: str):
    return await handle_video_content(request, call, video_id)


@relay_view(None, methods=("GET", "POST", "PUT", "PATCH", "DELETE"))
async def unknown(request, call, rest: str = ""):
    raise RelayError("not_found", f"Unknown endpoint {request.method} {request.path}.")


def _is_json(request) -> bool:
    return "multipart/form-data" not in request.content_type and "urlencoded" not in request.content_type


def _form(request) -> dict:
    return read_form(request)
