"""A stream cut by the upstream passes on every event that arrived before the cut.

aiohttp's `readany` raises once the connection broke, even when received bytes are still
buffered; the relay reads those first, so what the upstream sent reaches the client (and
is billed) however the cut and the relay's reads interleave.
"""

import asyncio
from types import SimpleNamespace
from unittest import mock

import aiohttp
import pytest
import requests
from aiohttp.streams import StreamReader

from relay.chat import received_before_break


def test_bytes_buffered_before_the_break_are_still_read():
    async def scenario():
        reader = StreamReader(mock.Mock(), 2**16, loop=asyncio.get_running_loop())
        reader.feed_data(b'data: {"n": 1}\n\n')
        reader.feed_data(b'data: {"n": 2}\n\n')
        reader.set_exception(aiohttp.ClientPayloadError("Response payload is not completed"))
        with pytest.raises(aiohttp.ClientPayloadError):
            await reader.readany()  # what the relay's read loop sees: the bytes are not handed out
        return received_before_break(SimpleNamespace(content=reader))

    assert asyncio.run(scenario()) == b'data: {"n": 1}\n\ndata: {"n": 2}\n\n'


@pytest.mark.live
def test_every_cut_stream_delivers_the_text_sent_before_the_cut(live, reconciled):
    """The simulator writes half the answer in a burst and drops the connection; before the fix
    the relay often forwarded only the first event (the role) and then the error."""
    live.sim.configure(upstream="*", error="cut_stream", output_tokens=200)
    key = live.make_key(select="ClaudeCode")
    body = {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "write a long story about relays"}],
        "stream": True,
        "max_tokens": 400,
    }
    for _ in range(8):
        auth = {"Authorization": f"Bearer {key}"}
        resp = requests.post(f"{live.url}/v1/chat/completions", json=body, headers=auth, timeout=30)
        events = [line for line in resp.text.splitlines() if line.startswith("data: ")]
        assert events[-1].startswith('data: {"error"')  # ended as incomplete, in OpenAI's shape
        texts = [e for e in events[:-1] if '"content":"' in e and '"content":""' not in e]
        assert len(texts) >= 10, events[:3]
        rec = live.settled(resp.headers["X-Request-Id"])
        assert rec.status == "partial" and rec.cost_micro > 0
