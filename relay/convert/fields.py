"""Every top-level field of a client format, and what converting it to the other format does.

One table per direction, so that no field a client sends is dropped without a word: a field
is *carried* (converted to the upstream's equivalent), *honoured* (its meaning is achieved
without sending it, e.g. a default value or a setting the conversion already fulfils) or
*refused* (a 400 naming it, unless it holds one of its no-op values). A field missing from
its table is refused too. The value checks of carried fields live with their conversion
(`relay.convert.requests`); the README's "Conversion limits" lists these tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.convert.errors import ConversionError

CARRIED = "carried"
HONOURED = "honoured"
REFUSED = "refused"


@dataclass(frozen=True)
class Field:
    decision: str
    why: str
    inert: tuple = (None,)
    """Values of a refused field that ask for nothing, and so are accepted."""


def _refused(why: str, *inert) -> Field:
    return Field(REFUSED, why, (None, *inert))


OPENAI_CHAT_TO_ANTHROPIC: dict[str, Field] = {
    "model": Field(CARRIED, "the channel's model name"),
    "messages": Field(CARRIED, "system/developer → system, tool → tool_result"),
    "max_tokens": Field(CARRIED, "max_tokens"),
    "max_completion_tokens": Field(CARRIED, "max_tokens"),
    "temperature": Field(CARRIED, "clamped to Anthropic's 0–1"),
    "top_p": Field(CARRIED, "top_p"),
    "stop": Field(CARRIED, "stop_sequences"),
    "stream": Field(CARRIED, "stream"),
    "stream_options": Field(HONOURED, "include_usage: the gateway sends the usage chunk"),
    "tools": Field(CARRIED, "function tools as custom tools"),
    "tool_choice": Field(CARRIED, "auto/required/none/named"),
    "parallel_tool_calls": Field(CARRIED, "false → disable_parallel_tool_use"),
    "response_format": Field(CARRIED, "json_schema → output_config.format, json_object → a forced tool"),
    "reasoning_effort": Field(CARRIED, "thinking.budget_tokens"),
    "thinking": Field(CARRIED, "extra_body.thinking, as is"),
    "user": Field(CARRIED, "metadata.user_id"),
    "safety_identifier": Field(CARRIED, "metadata.user_id"),
    "service_tier": Field(CARRIED, "auto → auto, default → standard_only; other tiers refused"),
    "prompt_cache_key": Field(
        HONOURED, "a best-effort cache-routing hint: Anthropic's prompt cache is keyed by the prompt"
    ),
    "prompt_cache_retention": Field(HONOURED, "a cache-lifetime hint, like prompt_cache_key"),
    "metadata": Field(HONOURED, "OpenAI only attaches it to stored completions, and none are stored"),
    "store": _refused("true cannot be honoured: nothing stores chat completions on this route", False),
    "verbosity": _refused("other than 'medium' (the default) has no Anthropic equivalent", "medium"),
    "n": _refused("greater than 1 is not supported by Anthropic models", 1),
    "frequency_penalty": _refused("is not supported by Anthropic models", 0),
    "presence_penalty": _refused("is not supported by Anthropic models", 0),
    "modalities": _refused("other than ['text'] is not supported by Anthropic models", ["text"]),
    "seed": _refused("cannot be honoured: Anthropic sampling cannot be seeded"),
    "logprobs": _refused("is not supported by Anthropic models", False),
    "top_logprobs": _refused("is not supported by Anthropic models"),
    "logit_bias": _refused("is not supported by Anthropic models"),
    "audio": _refused("is not supported by Anthropic models"),
    "prediction": _refused("is not supported by Anthropic models"),
    "web_search_options": _refused("is not supported by Anthropic models"),
    "functions": _refused("(deprecated) is not carried: use 'tools'"),
    "function_call": _refused("(deprecated) is not carried: use 'tool_choice'"),
}

ANTHROPIC_TO_OPENAI_CHAT: dict[str, Field] = {
    "model": Field(CARRIED, "the channel's model name"),
    "messages": Field(CARRIED, "blocks as chat messages; system messages kept in place"),
    "system": Field(CARRIED, "a leading system message"),
    "max_tokens": Field(CARRIED, "max_tokens"),
    "temperature": Field(CARRIED, "temperature"),
    "top_p": Field(CARRIED, "top_p"),
    "stop_sequences": Field(CARRIED, "stop"),
    "stream": Field(CARRIED, "stream, with stream_options.include_usage"),
    "tools": Field(CARRIED, "custom tools as function tools"),
    "tool_choice": Field(CARRIED, "auto/any/none/tool, disable_parallel_tool_use"),
    "thinking": Field(CARRIED, "reasoning_effort (budget → low/medium/high, adaptive → medium)"),
    "output_config": Field(CARRIED, "effort → reasoning_effort, format → response_format"),
    "output_format": Field(CARRIED, "response_format json_schema"),
    "metadata": Field(CARRIED, "user_id → user; other keys refused"),
    "service_tier": Field(CARRIED, "auto → auto, standard_only → default"),
    "context_management": Field(
        HONOURED, "clear_thinking edits applied to the reasoning history sent upstream; others refused"
    ),
    "top_k": _refused("is not supported by OpenAI-compatible models"),
    "container": _refused("(code execution) is not supported by OpenAI-compatible models"),
    "mcp_servers": _refused("(MCP connector) is not supported by OpenAI-compatible models"),
}

RESPONSES_TO_CHAT: dict[str, Field] = {
    "model": Field(CARRIED, "model"),
    "input": Field(CARRIED, "messages (a string is one user message)"),
    "instructions": Field(CARRIED, "a leading system message"),
    "tools": Field(CARRIED, "function tools (namespaces as namespace__name)"),
    "tool_choice": Field(CARRIED, "tool_choice"),
    "text": Field(CARRIED, "format → response_format, verbosity → verbosity"),
    "reasoning": Field(CARRIED, "effort → reasoning_effort; summary: reasoning comes back as a summary"),
    "max_output_tokens": Field(CARRIED, "max_completion_tokens"),
    "previous_response_id": Field(CARRIED, "the stored conversation, sent first"),
    "temperature": Field(CARRIED, "temperature"),
    "top_p": Field(CARRIED, "top_p"),
    "parallel_tool_calls": Field(CARRIED, "parallel_tool_calls"),
    "stream": Field(CARRIED, "stream, with usage"),
    "user": Field(CARRIED, "user"),
    "safety_identifier": Field(CARRIED, "safety_identifier"),
    "prompt_cache_key": Field(CARRIED, "prompt_cache_key"),
    "prompt_cache_retention": Field(CARRIED, "prompt_cache_retention"),
    "service_tier": Field(CARRIED, "service_tier"),
    "store": Field(HONOURED, "the gateway stores the response (default true)"),
    "metadata": Field(HONOURED, "kept on the stored response and echoed"),
    "include": Field(HONOURED, "reasoning.encrypted_content only: reasoning items come back as summaries"),
    "stream_options": Field(HONOURED, "include_obfuscation: no obfuscation events are sent"),
    "truncation": Field(HONOURED, "'disabled' (an overlong input fails), or 'auto' for the same"),
    "client_metadata": Field(HONOURED, "Codex's client tags, no effect on the answer"),
    "max_tool_calls": Field(HONOURED, "counts built-in tool calls, and none can run on this route"),
    "background": _refused(
        "true is not supported: responses run in the foreground (stream long ones)", False
    ),
    "conversation": _refused("(Conversations API) is not supported: use previous_response_id"),
    "prompt": _refused("(stored prompt templates) is not supported: send input and instructions"),
    "top_logprobs": _refused("is not supported: logprobs are not carried by this route", 0),
}


def check_fields(body: dict, table: dict[str, Field], upstream: str) -> None:
    """A 400 for the first field of `body` its table refuses, or that the table does not know."""
    for key, value in body.items():
        rule = table.get(key)
        if rule is None:
            raise ConversionError(f"'{key}' is not supported by {upstream}")
        if rule.decision == REFUSED and not any(_same(value, v) for v in rule.inert):
            raise ConversionError(f"'{key}' {rule.why}")


def _same(value, inert) -> bool:
    """Equal, and a boolean only to a boolean (`True` is not the no-op `1`)."""
    if isinstance(value, bool) != isinstance(inert, bool):
        return False
    return value == inert
