"""Deterministic text, token counts and tool arguments for simulated replies.

A token is 4 characters (rounded up per text piece): cheap, deterministic, close enough to real
tokenizers for billing tests and benchmarks.
"""

from __future__ import annotations

import hashlib
import re
import secrets

import orjson

IMAGE_TOKENS = 85
FILLER = (
    "The simulated upstream keeps answering with plain sentences so streams have many chunks and "
    "usage numbers stay realistic for billing tests and benchmarks. "
)
_WORD = re.compile(r"\s*\S+|\s+$")


def count_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + secrets.token_hex((length + 1) // 2)[:length]


def digest(parts: list[str]) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.digest()


def reply_text(upstream: str, model: str, prompt: str, output_tokens: int | None) -> str:
    """The answer: echoes the prompt so tests can see it went through; `output_tokens` pads or cuts."""
    echo = " ".join(prompt.split())[:200]
    text = f"Hello from {upstream} ({model}). You said: {echo}"
    if output_tokens is None:
        return text
    want = output_tokens * 4
    while len(text) < want:
        text += " " + FILLER
    return text[:want].rstrip() + "." if output_tokens else ""


def thinking_text(prompt: str) -> str:
    return f"The user wrote {len(prompt)} characters. I will answer briefly and politely."


def cut(text: str, max_tokens: int | None, stop: list[str] | None) -> tuple[str, str | None]:
    """Apply stop sequences then the token limit; return the text and why it ended early, if it did."""
    for seq in stop or ():
        if seq and seq in text:
            return text[: text.index(seq)], "stop_sequence:" + seq
    if max_tokens is not None and count_tokens(text) > max_tokens:
        return text[: max_tokens * 4], "max_tokens"
    return text, None


def pieces(text: str, words: int = 3) -> list[str]:
    """Split into stream deltas of a few words each (never empty for non-empty text)."""
    found = _WORD.findall(text)
    return ["".join(found[i : i + words]) for i in range(0, len(found), words)]


def json_pieces(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def structured_text(schema: object, prompt: str) -> str:
    """A JSON answer matching a schema (structured-output modes); a bare object when there is none."""
    value: object = tool_arguments(schema, prompt) if isinstance(schema, dict) else {"answer": prompt[-60:]}
    if isinstance(schema, dict) and schema.get("type") not in (None, "object"):
        value = _value(schema, " ".join(prompt.split()[-3:]) or "example")
    return orjson.dumps(value).decode()


def tool_arguments(schema: object, prompt: str) -> dict:
    """Arguments that satisfy a JSON schema's declared properties (required ones at least)."""
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties") or {}
    if not isinstance(props, dict):
        return {}
    required = schema.get("required") or list(props)
    words = prompt.split()
    sample = " ".join(words[-3:]) if words else "example"
    return {name: _value(props.get(name) or {}, sample) for name in required if isinstance(name, str)}


def _value(prop: object, sample: str) -> object:
    if not isinstance(prop, dict):
        return sample
    if prop.get("enum"):
        return prop["enum"][0]
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return [_value(prop.get("items") or {}, sample)]
    if kind == "object":
        return tool_arguments(prop, sample)
    return sample
