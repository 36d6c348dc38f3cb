"""OpenAI Responses API (`/v1/responses`): served by the chat path through conversion.

The Responses request becomes a chat request (`responses_to_chat`), runs the chat flow
unchanged (plan → hold → dispatch → settle, billed as chat, any OpenAI or Anthropic
channel), and its answer or stream is converted back. Finished responses are stored for
`previous_response_id` and `GET /v1/responses/{id}` unless the client sent `store: false`.
"""

from __future__ import annotations

from django.http import HttpResponse, StreamingHttpResponse

from . import response_store
from .chat import ChatRequest, handle_chat
from .convert.chain import ChainedStream
from .convert.errors import ConversionError
from .convert.openai_responses import ChatToResponsesStream, chat_to_responses, responses_to_chat
from .convert.responses import new_id
from .errors import RelayError, json_response
from .flow import Call


class ResponsesChat(ChatRequest):
    """The chat request of a Responses call: answers and streams go back as Responses."""

    def __init__(
        self, body: dict, *args, responses_body: dict, history: list[dict] | None, user_id: int, **kw
    ):
        super().__init__(body, *args, **kw)
        self.responses_body = responses_body
        self.history = history
        self.user_id = user_id
        self.response_id = new_id("resp_")

    def keep(self, response: dict) -> None:
        response_store.store(self.user_id, self.responses_body, self.history, response)

    def answer(self, out: dict) -> dict:
        response = chat_to_responses(out, self.responses_body, response_id=self.response_id, model=self.model)
        self.keep(response)
        return response

    def stream_converter(self, channel_kind: str):
        outer = ChatToResponsesStream(
            self.responses_body, response_id=self.response_id, model=self.model, on_end=self.keep
        )
        return ChainedStream(super().stream_converter(channel_kind), outer)


async def handle_responses(request, call: Call, body: dict) -> HttpResponse | StreamingHttpResponse:
    """POST /v1/responses."""
    history = await response_store.history_for(call.token.user_id, body)
    try:
        chat_body = responses_to_chat(body, history)
    except ConversionError as exc:
        raise RelayError("invalid_request", str(exc)) from None

    def chat_type(*args, **kwargs):
        return ResponsesChat(
            *args, responses_body=body, history=history, user_id=call.token.user_id, **kwargs
        )

    return await handle_chat(request, call, chat_body, chat_type=chat_type)


async def handle_response_get(request, call: Call, response_id: str) -> HttpResponse:
    """GET /v1/responses/{id} (the caller's own stored responses only) and DELETE of it."""
    if request.method == "DELETE":
        await response_store.delete(call.token.user_id, response_id)
        return json_response({"id": response_id, "object": "response", "deleted": True})
    return json_response(await response_store.fetch(call.token.user_id, response_id))


async def handle_response_input_items(request, call: Call, response_id: str) -> HttpResponse:
    """GET /v1/responses/{id}/input_items."""
    return json_response(await response_store.list_input_items(call.token.user_id, response_id, request.GET))


async def handle_response_cancel(request, call: Call, response_id: str) -> HttpResponse:
    """POST /v1/responses/{id}/cancel."""
    await response_store.cancel(call.token.user_id, response_id)
