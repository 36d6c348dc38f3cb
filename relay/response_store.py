"""Stored Responses API answers, for `previous_response_id` and `GET /v1/responses/{id}`.

Kept in the Django cache (Redis in production, so every relay node sees them) for
`RELAY_RESPONSES_TTL_S`, under the owning user: another user's id reads as unknown.
Each entry holds the Response object and the conversation that led to it (input and
output items, oldest first), which is what a follow-up call continues from.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache

from .errors import RelayError


def _key(user_id: int, response_id: str) -> str:
    return f"relay:response:{user_id}:{response_id}"


def input_items(body: dict) -> list[dict]:
    """A request's `input` as items (a string is one user message)."""
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    return [item for item in raw or [] if isinstance(item, dict)]


async def history_for(user_id: int, body: dict) -> list[dict] | None:
    """The conversation `previous_response_id` continues, or a 400 when it is unknown."""
    previous = body.get("previous_response_id")
    if previous is None:
        return None
    if not isinstance(previous, str) or not previous:
        raise RelayError(
            "invalid_request", "'previous_response_id' must be a string.", param="previous_response_id"
        )
    entry = await cache.aget(_key(user_id, previous))
    if entry is None:
        raise RelayError(
            "invalid_request",
            f"Previous response with id '{previous}' not found (responses are kept "
            f"{settings.RELAY_RESPONSES_TTL_S // 3600} h, and only when stored with store=true).",
            param="previous_response_id",
        )
    return entry["conversation"]


def store(user_id: int, body: dict, history: list[dict] | None, response: dict) -> None:
    """Keep a finished response unless the client asked for `store: false`.

    Synchronous, like the relay's other cache writes on the hot path: a stream stores its
    response before sending `response.completed`, so a follow-up call always finds it."""
    if body.get("store") is False:
        return
    conversation = [*(history or []), *input_items(body), *response.get("output", [])]
    cache.set(
        _key(user_id, response["id"]),
        {"response": response, "conversation": conversation},
        settings.RELAY_RESPONSES_TTL_S,
    )


async def fetch(user_id: int, response_id: str) -> dict:
    entry = await cache.aget(_key(user_id, response_id))
    if entry is None:
        raise RelayError("not_found", f"No response with id '{response_id}' (or it has expired).")
    return entry["response"]


async def delete(user_id: int, response_id: str) -> None:
    if not await cache.adelete(_key(user_id, response_id)):
        raise RelayError("not_found", f"No response with id '{response_id}' (or it has expired).")
