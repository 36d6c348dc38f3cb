"""OpenAI ⇄ Anthropic format conversion and usage extraction: pure Python, no Django, no I/O."""

from relay.convert.errors import ConversionError, SSEError

__all__ = ["ConversionError", "SSEError"]
