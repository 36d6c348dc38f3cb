"""Two stream converters in a row: upstream → OpenAI chat chunks → the client's format.

The Responses and Gemini client formats are built on chat, so an Anthropic upstream reaches
them through `AnthropicToOpenAIStream` and an OpenAI one through `OpenAIPassthroughStream`
(which checks the chunks); billing reads the first converter's upstream-reported usage.
"""

from __future__ import annotations

from relay.convert.sse import SSEEvent, SSEParser
from relay.convert.streams import StreamConverter


class ChainedStream(StreamConverter):
    def __init__(self, inner: StreamConverter, outer: StreamConverter):
        super().__init__()
        self.inner = inner
        self.outer = outer
        self._parser = SSEParser()

    def _through(self, chunks: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for chunk in chunks:
            for event in self._parser.feed(chunk):
                out.extend(self.outer.feed(event))
        self._sync()
        return out

    def _sync(self) -> None:
        self.usage = self.inner.usage or self.outer.usage
        self.output_chars = max(self.inner.output_chars, self.outer.output_chars)
        self.completed = self.inner.completed
        self.saw_garbage = self.inner.saw_garbage or self.outer.saw_garbage
        self.upstream_error = self.inner.upstream_error or self.outer.upstream_error
        if self.outer._terminated:
            self._terminated = True

    def _feed(self, event: SSEEvent) -> list[bytes]:
        return self._through(self.inner.feed(event))

    def _finish(self) -> list[bytes]:
        out = self._through(self.inner.finish())
        self.outer.usage = self.outer.usage or self.inner.usage
        return out + self.outer.finish()

    def _error_event(self, message: str) -> bytes:
        return b"".join(self.outer.error(message))
