"""Incremental Server-Sent Events parsing and encoding (WHATWG event-stream rules).

The parser works on bytes so that a multi-byte character split across network chunks
is never decoded half-way, and it bounds memory per event so a hostile upstream cannot
make a relay process buffer without limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from relay.convert.errors import SSEError

MAX_EVENT_BYTES = 8 * 1024 * 1024
OPENAI_DONE = b"data: [DONE]\n\n"
_BOM = b"\xef\xbb\xbf"
_EOL = re.compile(rb"\r\n?|\n")


@dataclass(frozen=True)
class SSEEvent:
    event: str | None
    data: str


class SSEParser:
    """Feed raw bytes as they arrive; get back every event completed so far."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES):
        self.max_event_bytes = max_event_bytes
        self._buf = bytearray()
        self._scan = 0  # bytes of _buf already searched for a line end
        self._event: str | None = None
        self._data: list[str] = []
        self._size = 0  # bytes held by the event being built
        self._started = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if not self._started:
            self._buf += chunk
            if len(self._buf) < len(_BOM) and _BOM.startswith(bytes(self._buf)):
                return []
            self._started = True
            if self._buf.startswith(_BOM):
                del self._buf[: len(_BOM)]
        else:
            self._buf += chunk
        events: list[SSEEvent] = []
        for line in self._lines():
            self._line(line, events)
        if self._size + len(self._buf) > self.max_event_bytes:
            self._reset()
            raise SSEError(f"an upstream event exceeded {self.max_event_bytes} bytes")
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: a last line without its newline and a last event without its blank line."""
        events: list[SSEEvent] = []
        if self._buf:
            line = bytes(self._buf).rstrip(b"\r")
            self._buf.clear()
            self._scan = 0
            self._line(line, events)
        self._dispatch(events)
        return events

    def _lines(self):
        buf = self._buf
        n = len(buf)
        start = 0
        i = self._scan
        while True:
            m = _EOL.search(buf, i)
            if m is None:
                i = n
                break
            if m.end() == n and buf[m.start()] == 0x0D:
                i = m.start()  # maybe the first half of \r\n: wait for the next chunk
                break
            yield bytes(buf[start : m.start()])
            start = i = m.end()
        del buf[:start]
        self._scan = i - start

    def _line(self, raw: bytes, events: list[SSEEvent]) -> None:
        if not raw:
            self._dispatch(events)
            return
        if raw[:1] == b":":
            return  # comment / keep-alive
        line = raw.decode("utf-8", errors="replace")
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._size += len(raw)
            if self._size > self.max_event_bytes:
                self._reset()
                raise SSEError(f"an upstream event exceeded {self.max_event_bytes} bytes")
            self._data.append(value)
        elif name == "event":
            self._event = value or None
        # id, retry and unknown fields (garbage lines included) are ignored, as the spec says

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._data:
            events.append(SSEEvent(self._event, "\n".join(self._data)))
        self._event = None
        self._data = []
        self._size = 0

    def _reset(self) -> None:
        self._buf.clear()
        self._scan = 0
        self._event = None
        self._data = []
        self._size = 0


def encode_sse(data: bytes | str | dict | list, event: str | None = None) -> bytes:
    """One event on the wire; dicts are serialized with orjson, multi-line data kept intact."""
    if isinstance(data, dict | list):
        payload = orjson.dumps(data)
    elif isinstance(data, str):
        payload = data.encode()
    else:
        payload = bytes(data)
    head = b"event: " + event.encode() + b"\n" if event else b""
    lines = payload.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return head + b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"
