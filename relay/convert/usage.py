"""Billing usage from upstream usage objects, and token estimates for holds.

`core.pricing.Usage.input_tokens` counts NON-cached input only. OpenAI's
`prompt_tokens` includes cached (and, with some gateways, cache-write) tokens, while
Anthropic's `input_tokens` already excludes cache reads and writes.
"""

from __future__ import annotations

import math

from core.pricing import Usage


def _int(value) -> int | None:
    """A non-negative token count, or None for anything else (garbage never raises)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and math.isfinite(value):
        return max(int(value), 0)
    return None


def _get(d, *keys) -> int | None:
    for key in keys:
        if isinstance(d, dict):
            value = _int(d.get(key))
            if value is not None:
                return value
    return None


def openai_cache_tokens(u: dict) -> tuple[int, int]:
    """(cache read, cache write) tokens of an OpenAI-style usage object, across dialects."""
    details = u.get("prompt_tokens_details")
    read = _get(details, "cached_tokens")
    if read is None:
        read = _get(u, "prompt_cache_hit_tokens", "cache_read_input_tokens")  # DeepSeek, LiteLLM
    write = _get(details, "cache_write_tokens")
    if write is None:
        write = _get(u, "cache_creation_input_tokens")
    return read or 0, write or 0


def usage_from_openai(u: dict | None) -> Usage | None:
    if not isinstance(u, dict):
        return None
    prompt = _get(u, "prompt_tokens", "input_tokens")
    completion = _get(u, "completion_tokens", "output_tokens")
    if prompt is None and completion is None:
        return None
    read, write = openai_cache_tokens(u)
    prompt = prompt or 0
    read = min(read, prompt)
    write = min(write, prompt - read)
    return Usage(
        input_tokens=prompt - read - write,
        output_tokens=completion or 0,
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


def usage_from_anthropic(u: dict | None) -> Usage | None:
    if not isinstance(u, dict):
        return None
    fresh = _get(u, "input_tokens")
    output = _get(u, "output_tokens")
    read = _get(u, "cache_read_input_tokens")
    write = _get(u, "cache_creation_input_tokens")
    if fresh is None and output is None and read is None and write is None:
        return None
    return Usage(
        input_tokens=fresh or 0,
        output_tokens=output or 0,
        cache_read_tokens=read or 0,
        cache_write_tokens=write or 0,
    )


def merge_anthropic_usage(base: dict | None, update: dict | None) -> dict | None:
    """Anthropic stream usage: message_start's counts, overridden by message_delta's cumulative ones."""
    if not isinstance(update, dict):
        return base
    merged = dict(base) if isinstance(base, dict) else {}
    merged.update({k: v for k, v in update.items() if v is not None})
    return merged


def usage_to_openai(usage: Usage) -> dict:
    """OpenAI usage object for a billing usage: prompt_tokens includes cache reads and writes."""
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    details = {"cached_tokens": usage.cache_read_tokens}
    if usage.cache_write_tokens:
        details["cache_write_tokens"] = usage.cache_write_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": details,
    }


def usage_to_anthropic(usage: Usage) -> dict:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }


def estimate_tokens(text_or_chars: str | bytes | int) -> int:
    """≈ 4 characters per token, at least 1 for anything non-empty."""
    n = text_or_chars if isinstance(text_or_chars, int) else len(text_or_chars)
    if n <= 0:
        return 0
    return max(1, math.ceil(n / 4))


def request_chars(body) -> int:
    """Characters of the text a request sends (messages, system, tools), in either format.

    Image data is not text: base64 payloads are counted as a flat 1000 characters per image so a
    screenshot does not inflate a hold a hundredfold.
    """
    return _chars(body, 0)


_SKIP_KEYS = {"model", "role", "type", "id", "tool_call_id", "tool_use_id", "signature", "cache_control"}
_IMAGE_KEYS = {"data", "url", "image_url", "file_data"}


def _chars(node, depth: int) -> int:
    if depth > 64:
        return 0
    if isinstance(node, str):
        return len(node)
    if isinstance(node, dict):
        total = 0
        for key, value in node.items():
            if key in _SKIP_KEYS:
                continue
            if key in _IMAGE_KEYS and isinstance(value, str | dict) and _is_binary(value):
                total += 1000
                continue
            total += _chars(value, depth + 1)
        return total
    if isinstance(node, list):
        return sum(_chars(item, depth + 1) for item in node)
    return 0


def _is_binary(value) -> bool:
    if isinstance(value, dict):
        value = value.get("url")
    return isinstance(value, str) and (value.startswith("data:") or len(value) > 4096)
