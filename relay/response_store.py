"""Stored Responses API answers, for `previous_response_id` and `GET /v1/responses/{id}`.

Kept in the Django cache (Redis in production, so every relay node sees them) for
`RELAY_RESPONSES_TTL_S`, under the owning user: another user's id reads as unknown.
Each entry holds the Response object and the conversation that led to it (input and
output items, oldest first), which is what a follow-up call continues from.
"""

from __future__ import annotations

from typing import NoReturn

from django.conf import settings
from django.core.cache import cache

from .convert.responses import new_id
from .errors import RelayError

ITEM_ID_PREFIXES = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "reasoning": "rs_",
}


def _key(user_id: int, response_id: str) -> str:
    return f"relay:response:{user_id}:{response_id}"


def input_items(body: dict) -> list[dict]:
    """A request's `input` as items, each with an id (a string input is one user message)."""
    raw = body.get("input")
    if isinstance(raw, str):
        raw = [{"type": "message", "role": "user", "content": raw}]
    items = []
    for item in raw or []:
        if isinstance(item, dict):
            kind = item.get("type", "message" if "role" in item else None)
            if not isinstance(item.get("id"), str) or not item["id"]:
                item = dict(item, id=new_id(ITEM_ID_PREFIXES.get(str(kind), "item_")))
            items.append(item)
    return items


def listed(item: dict) -> dict:
    """An input item as OpenAI lists it: typed, a message's text as content parts."""
    kind = item.get("type", "message" if "role" in item else None)
    out = dict(item, type=kind)
    if kind == "message":
        out.setdefault("status", "completed")
        if isinstance(item.get("content"), str):
            part = "output_text" if item.get("role") == "assistant" else "input_text"
            extra: dict = {"annotations": []} if part == "output_text" else {}
            out["content"] = [{"type": part, "text": item["content"], **extra}]
    return out


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
    inputs = [*(history or []), *input_items(body)]  # what generated it, as `input_items` lists
    conversation = [*inputs, *response.get("output", [])]
    cache.set(
        _key(user_id, response["id"]),
        {"response": response, "conversation": conversation, "inputs": len(inputs)},
        settings.RELAY_RESPONSES_TTL_S,
    )


async def _entry(user_id: int, response_id: str) -> dict:
    entry = await cache.aget(_key(user_id, response_id))
    if entry is None:
        raise RelayError("not_found", f"No response with id '{response_id}' (or it has expired).")
    return entry


async def fetch(user_id: int, response_id: str) -> dict:
    return (await _entry(user_id, response_id))["response"]


async def list_input_items(user_id: int, response_id: str, query) -> dict:
    """GET /v1/responses/{id}/input_items: the items that generated it (earlier turns included),
    paged like OpenAI (`limit` 1–100, default 20; `order` desc by default; `after`/`before` ids)."""
    entry = await _entry(user_id, response_id)
    items = [listed(item) for item in entry["conversation"][: entry.get("inputs", 0)]]
    order = query.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise RelayError("invalid_request", "'order' must be 'asc' or 'desc'.", param="order")
    try:
        limit = int(query.get("limit") or 20)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise RelayError("invalid_request", "'limit' must be an integer from 1 to 100.", param="limit")
    if order == "desc":
        items = items[::-1]
    ids = [item.get("id") for item in items]
    for param in ("after", "before"):
        cursor = query.get(param)
        if cursor is None:
            continue
        if cursor not in ids:
            raise RelayError("invalid_request", f"No input item with id '{cursor}'.", param=param)
        at = ids.index(cursor)
        items, ids = (items[at + 1 :], ids[at + 1 :]) if param == "after" else (items[:at], ids[:at])
    before_only = query.get("before") is not None and query.get("after") is None
    page = items[-limit:] if before_only else items[:limit]  # `before` alone: the page just before it
    has_more = len(items) > limit
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": has_more,
    }


async def cancel(user_id: int, response_id: str) -> NoReturn:
    """POST /v1/responses/{id}/cancel: only background responses can be cancelled, and this
    gateway runs none (`background: true` is refused), so a known id gets OpenAI's 400."""
    await _entry(user_id, response_id)
    raise RelayError("invalid_request", "Cannot cancel a synchronous response.", param="response_id")


async def delete(user_id: int, response_id: str) -> None:
    if not await cache.adelete(_key(user_id, response_id)):
        raise RelayError("not_found", f"No response with id '{response_id}' (or it has expired).")
