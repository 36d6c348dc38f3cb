"""OpenAI ⇄ Anthropic format conversion and usage extraction: pure Python, no Django, no I/O.

- ``sse``: ``SSEParser`` (bytes in, ``SSEEvent`` out, bounded), ``encode_sse``, ``OPENAI_DONE``.
- ``requests``: ``openai_chat_to_anthropic``, ``anthropic_messages_to_openai_chat`` (+ helpers for
  ``stream_options.include_usage`` and the requested output limit).
- ``responses``: non-streaming bodies both ways, format-native error bodies.
- ``streams``: stateful stream converters with one interface (see its docstring).
- ``usage``: upstream usage → ``core.pricing.Usage``, token estimates for holds.

Unconvertible client bodies raise ``ConversionError`` (a 400 in the client's format);
unparsable upstream event streams raise ``SSEError``.
"""

from relay.convert.errors import ConversionError, SSEError

__all__ = ["ConversionError", "SSEError"]
