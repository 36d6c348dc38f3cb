"""Errors of the conversion layer: the relay maps them to a 400 in the client's format."""


class ConversionError(ValueError):
    """A request or response body that cannot be converted to the other API format."""


class SSEError(ValueError):
    """An upstream event stream that cannot be parsed safely (e.g. an event too large)."""
