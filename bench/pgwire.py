"""A counting proxy in front of PostgreSQL: statements and round trips a relay sends, exactly.

PostgreSQL keeps no statement counts without pg_stat_statements (a restart to load), so the
bench puts this loopback TCP proxy between a relay instance of its own and the server, and
reads the client side of the wire protocol (v3) as it passes:

- a simple `Query` message is one round trip (answered by ReadyForQuery), and its statements;
- extended protocol: `Parse` names a statement, `Bind` binds it to a portal, each `Execute` runs
  one statement, and each `Sync` is one round trip, however many messages were pipelined
  before it;
- statements are counted by their first keyword (BEGIN, COMMIT, ROLLBACK, SELECT, INSERT,
  UPDATE, WITH, …), so transaction control can be told from the work.

Bytes are forwarded unchanged in both directions; an encrypted session could not be read, so
the bench's relay connects through it with `sslmode=disable&gssencmode=disable`. It runs on its
own event loop in a thread of the bench process.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections import Counter

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102


def keyword(query: bytes) -> str:
    """The first SQL keyword of a statement, upper-case ('' for an empty query)."""
    text = query.lstrip()
    while text.startswith(b"--"):
        text = text.split(b"\n", 1)[1].lstrip() if b"\n" in text else b""
    word = text.split(None, 1)[0] if text else b""
    return word.rstrip(b";(").decode("ascii", "replace").upper()


def _cstring(body: bytes, start: int = 0) -> tuple[bytes, int]:
    end = body.index(b"\0", start)
    return body[start:end], end + 1


class Counts:
    """What clients sent through the proxy so far (thread-safe reads of a Counter)."""

    def __init__(self) -> None:
        self.counter: Counter[str] = Counter()
        self.lock = threading.Lock()

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counter[key] += n

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counter)


class ClientStream:
    """Parses one client connection's messages and counts them."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.statements: dict[bytes, str] = {}  # prepared statement name → keyword
        self.portals: dict[bytes, str] = {}  # portal name → keyword

    def message(self, kind: bytes, body: bytes) -> None:
        if kind == b"Q":
            query, _ = _cstring(body)
            parts = [part for part in query.split(b";") if part.strip()] or [b""]
            for part in parts:
                self._statement(keyword(part))
            self.counts.add("round_trips")
        elif kind == b"P":
            name, at = _cstring(body)
            query, _ = _cstring(body, at)
            self.statements[name] = keyword(query)
            self.counts.add("parses")
        elif kind == b"B":
            portal, at = _cstring(body)
            name, _ = _cstring(body, at)
            self.portals[portal] = self.statements.get(name, "?")
        elif kind == b"E":
            portal, _ = _cstring(body)
            self._statement(self.portals.get(portal, "?"))
        elif kind == b"S":
            self.counts.add("round_trips")
        elif kind == b"H":
            self.counts.add("flushes")

    def _statement(self, word: str) -> None:
        self.counts.add("statements")
        self.counts.add(f"statements_{word.lower() or 'empty'}")


class PgWireCounter:
    """The proxy: `port` forwards to `upstream`; `counts.snapshot()` at any moment."""

    def __init__(self, upstream_host: str, upstream_port: int, port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port
        self.counts = Counts()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("the PostgreSQL counting proxy did not start")

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        ready.set()
        self.loop.run_forever()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    async def _shutdown(self) -> None:
        self.server.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self.counts.add("connections")
        down = asyncio.ensure_future(self._copy(up_reader, writer))
        try:
            await self._client_to_server(reader, up_writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            up_writer.close()
            await down
            writer.close()

    async def _copy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _client_to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # untyped start-up messages until the StartupMessage itself (or a blind encrypted session)
        while True:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            rest = await reader.readexactly(length - 8)
            writer.write(head + rest)
            await writer.drain()
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                continue  # the server refuses in one byte ('N'); the StartupMessage follows
            if code == CANCEL_REQUEST:
                return
            break
        stream = ClientStream(self.counts)
        while True:
            head = await reader.readexactly(5)
            kind, length = head[:1], struct.unpack("!i", head[1:])[0]
            body = await reader.readexactly(length - 4)
            writer.write(head + body)
            await writer.drain()
            stream.message(kind, body)
            if kind == b"X":
                return
