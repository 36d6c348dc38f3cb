"""The pipeline's own guarantees, call by call: a call finishes once (cancelled or not), a
refusal keeps its reason, a stream whose client leaves settles once, and an upstream's
Retry-After reaches the client as a number.

The ledger is a recording stand-in here (the real one has its own contract test): what is
checked is which ledger call the pipeline makes, how often and with what record."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from decimal import Decimal

import pytest
from aiohttp import web

from billing.ledger import InsufficientBalance
from core.keys import hash_key
from core.pricing import Charge, Usage
from groups.policy import Reason, callable_models
from groups.routing import ChannelInfo, get_snapshot
from groups.saturation import inflight, inflight_acquire
from relay import flow, upstream
from relay.auth import load_token
from relay.chat import ChatStream
from relay.convert.usage import estimate_tokens
from relay.endpoints import _CompletionStream
from relay.errors import RelayError
from relay.flow import Call, Charged, Failed, HandedOver, Retry, Served, UpstreamRequest
from relay.pipeline import read_json
from relay.planner import plan_route


class RecordingLedger:
    """Records each ledger call; `settle` can be made to wait until the test lets it go."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.settling = threading.Event()
        self.go = threading.Event()
        self.go.set()
        self.done = threading.Event()

    def hold(self, **kw):
        self.calls.append(("hold", kw))
        return kw["amount_micro"]

    def settle(self, **kw):
        self.calls.append(("settle", kw))
        self.settling.set()
        self.go.wait(timeout=10)
        self.done.set()

    def refuse(self, **kw):
        self.calls.append(("refuse", kw))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]


@pytest.fixture
def ledger(monkeypatch):
    recording = RecordingLedger()
    monkeypatch.setattr(flow, "get_ledger", lambda: recording)
    return recording


@pytest.fixture
def new_call(demo):
    """A call of the demo key, planned for one of its text models."""
    token = load_token(hash_key(demo["demo_key"]))
    snapshot = get_snapshot()
    model = next(
        name for name, _ in callable_models(snapshot, token, "openai") if snapshot.models[name].kind == "text"
    )

    def make(request_id: str = "req_pipeline") -> Call:
        call = Call(
            request_id=request_id,
            token=token,
            snapshot=snapshot,
            api_format="openai",
            endpoint="/v1/chat/completions",
            model_name=model,
        )
        call.plan = plan_route(
            snapshot=snapshot, token=token, model_name=model, family="chat", api_format="openai"
        )
        return call

    return make


class FakeContent:
    def __init__(self, chunks: list[bytes]):
        self.chunks = list(chunks)

    async def readany(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


class FakeResponse:
    status = 200

    def __init__(self, chunks: list[bytes]):
        self.content = FakeContent(chunks)
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def served_by(call: Call, first: bytes = b"", rest: list[bytes] | None = None) -> Served:
    step = call.planned.steps[0]
    channel = step.channels[0]
    assert inflight_acquire(channel.id, 0)
    return Served(step, channel, FakeResponse(rest or []), first, ttfb_ms=5)  # type: ignore[arg-type]


def charge_of(cost_micro: int) -> Charge:
    return Charge(basis="tokens", cost_micro=cost_micro, multiplier=Decimal(1), usd_cny_rate=Decimal(7))


def test_finish_is_exactly_once_when_the_client_leaves_while_it_writes(ledger, new_call):
    call = new_call()
    call.held = True
    served = served_by(call)
    served.close()
    ledger.go.clear()  # the settlement blocks in the ledger until the client has gone

    async def scenario():
        charged = Charged(served, Usage(input_tokens=3, output_tokens=4), charge_of(1234))
        task = asyncio.ensure_future(call.finish(charged))
        while not ledger.settling.is_set():
            await asyncio.sleep(0.01)
        task.cancel()  # the client went away mid-settlement
        with pytest.raises(asyncio.CancelledError):
            await task
        # relay_view then finishes the call as failed: a no-op, the charge stands.
        gone = await call.finish(Failed(RelayError("upstream", "The client went away.", status=499)))
        ledger.go.set()
        while not ledger.done.is_set():
            await asyncio.sleep(0.01)
        return gone

    assert asyncio.run(scenario()) is False
    assert ledger.kinds() == ["settle"]
    settled = ledger.calls[0][1]
    assert settled["cost_micro"] == 1234
    assert settled["record"]["status"] == "success"
    assert settled["record"]["output_tokens"] == 4
    assert isinstance(call.outcome, Charged)


def test_a_refused_call_records_its_reason_once(ledger, new_call):
    call = new_call()
    error = RelayError("permission", "This key may not call it (model allowlist).", reason=Reason.ALLOWLIST)

    async def scenario():
        return await call.finish(Failed(error)), await call.finish(HandedOver())

    assert asyncio.run(scenario()) == (True, False)
    assert ledger.kinds() == ["refuse"]
    record = ledger.calls[0][1]["record"]
    assert record["refusal_reason"] == "allowlist"
    assert (record["http_status"], record["error_code"]) == (403, "permission_error")


def test_a_failed_held_call_is_released_with_its_reason_and_charged_nothing(ledger, new_call):
    call = new_call()
    call.held = True
    error = RelayError("saturated", "saturated", retry_after=3, reason=Reason.SATURATED)
    asyncio.run(call.finish(Failed(error)))
    assert ledger.kinds() == ["settle"]
    released = ledger.calls[0][1]
    assert released["cost_micro"] == 0
    assert released["record"]["status"] == "error"
    assert released["record"]["refusal_reason"] == "saturated"
    assert released["record"]["http_status"] == 429


def test_an_answer_that_cannot_be_converted_is_recorded_on_its_channel(ledger, new_call):
    call = new_call()
    call.held = True
    served = served_by(call)
    served.close()
    error = RelayError("upstream", "The upstream answer could not be converted: no choices")
    asyncio.run(call.finish(Failed(error, served=served, code="bad_response", detail="no choices")))
    record = ledger.calls[0][1]["record"]
    assert (record["error_code"], record["error_message"]) == ("bad_response", "no choices")
    assert record["channel_name"] == served.channel.name


def test_a_stream_settles_once_when_its_client_disconnects(ledger, new_call):
    call = new_call()
    call.held = True
    call.stream = True
    first, more = (
        b'data: {"id":"c1","object":"chat.completion.chunk",'
        b'"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' % text
        for text in (b"Hel", b"lo")
    )
    served = served_by(call, first, [more, more, more])
    stream = ChatStream(call, _CompletionStream({}), served, prompt_chars=40)

    async def scenario():
        body = stream.body()
        assert b"Hel" in await body.__anext__()
        await body.aclose()  # the client went away after the first event
        await stream.finish()  # finishing again, as Django's close would: nothing more happens

    asyncio.run(scenario())
    stream._close_from_django()  # Django closing the response later changes nothing either
    assert ledger.kinds() == ["settle"]
    record = ledger.calls[0][1]["record"]
    assert (record["status"], record["error_code"]) == ("partial", "client_disconnected")
    assert record["usage_estimated"] is True and record["input_tokens"] == estimate_tokens(40)
    assert ledger.calls[0][1]["cost_micro"] > 0
    assert served.response.closed == 1
    assert inflight(served.channel.id) == 0


@pytest.fixture
def saturated_upstream():
    """An upstream that answers every call with 429 and `Retry-After: 7`, on a loop of its own."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict = {}

    async def busy(request):
        return web.json_response(
            {"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "7"}
        )

    async def serve():
        app = web.Application()
        app.router.add_post("/{tail:.*}", busy)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state["url"] = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        state["runner"] = runner
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop)
    assert started.wait(10)
    yield state["url"]
    asyncio.run_coroutine_threadsafe(state["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_an_upstream_retry_after_reaches_the_client_as_a_number(ledger, new_call, saturated_upstream):
    call = new_call()
    step = call.planned.steps[0]
    channel = ChannelInfo(
        id=999_001,
        name="busy",
        kind="openai",
        base_url=saturated_upstream,
        api_key="sk-upstream",
        priority=0,
        weight=1,
        max_concurrency=0,
        allow_private_network=True,
    )
    call.plan = replace(call.planned, steps=(replace(step, channels=(channel,)),))

    def build(step, channel):
        return UpstreamRequest("/chat/completions", b"{}", {"Content-Type": "application/json"})

    async def scenario():
        try:
            with pytest.raises(Retry) as retry:
                await call._try(step, channel, build, read_json, 0.0)
            with pytest.raises(RelayError) as refused:
                await call.dispatch(build=build, accept=read_json)
        finally:
            await upstream.close_sessions()
        return retry.value, refused.value

    retry, refused = asyncio.run(scenario())
    assert (retry.outcome, retry.status, retry.retry_after) == ("upstream_429", 429, 7.0)
    assert refused.kind == "saturated" and refused.retry_after == 7
    assert refused.response("openai", call.request_id)["Retry-After"] == "7"
    assert [a["outcome"] for a in call.trace] == ["upstream_429"]


# --- the hold overlaps routing; no upstream request before it stands ----------------------


class GatedHold(RecordingLedger):
    """A ledger whose hold waits (on its database thread) until the test lets it go, and then
    holds or refuses for want of balance."""

    def __init__(self, *, refuse: bool = False):
        super().__init__()
        self.holding = threading.Event()
        self.hold_go = threading.Event()
        self.refuse_hold = refuse

    def hold(self, **kw):
        self.holding.set()
        assert self.hold_go.wait(timeout=10)
        if self.refuse_hold:
            raise InsufficientBalance("insufficient balance")
        return super().hold(**kw)


@pytest.fixture
def gated(monkeypatch):
    def make(**kw) -> GatedHold:
        gate = GatedHold(**kw)
        monkeypatch.setattr(flow, "get_ledger", lambda: gate)
        return gate

    return make


class UpstreamReached(Exception):
    """`build` ran: the call was about to send its upstream request."""


async def until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("refused", [False, True], ids=["held", "refused"])
def test_routing_runs_while_the_hold_is_written_and_no_upstream_request_precedes_it(gated, new_call, refused):
    """`start_hold` returns while the hold is still being written; `dispatch` then reads the
    channels' state and takes an in-flight slot meanwhile, but builds no upstream request
    until the hold stands. A refused hold is the call's answer (402) and gives the slot back."""
    ledger = gated(refuse=refused)
    call = new_call()
    channel = call.planned.steps[0].channels[0]
    built = []

    def build(step, channel):
        built.append(channel.id)
        raise UpstreamReached

    async def scenario():
        await call.start_hold(1000)
        await until(ledger.holding.is_set)
        assert not call.held
        dispatching = asyncio.ensure_future(call.dispatch(build=build, accept=read_json))
        await until(lambda: inflight(channel.id) == 1)  # routing ran, the slot is taken
        assert built == [] and not dispatching.done()
        ledger.hold_go.set()
        with pytest.raises(UpstreamReached if not refused else RelayError) as raised:
            await dispatching
        return raised.value

    error = asyncio.run(scenario())
    assert inflight(channel.id) == 0
    if refused:
        assert built == [] and not call.held
        assert isinstance(error, RelayError) and error.status == 402
    else:
        assert built == [channel.id] and call.held


def test_finish_waits_for_a_hold_in_flight_and_releases_it(gated, new_call):
    """A call that ends before `dispatch` waited for its hold (no channel was ready, say) still
    has that hold released, not left to the sweeper."""
    ledger = gated()
    call = new_call()

    async def scenario():
        await call.start_hold(1000)
        ending = asyncio.ensure_future(
            call.finish(Failed(RelayError("saturated", "saturated", reason=Reason.SATURATED)))
        )
        await asyncio.sleep(0.05)
        assert not ending.done()  # waiting for the hold
        ledger.hold_go.set()
        return await ending

    assert asyncio.run(scenario()) is True
    assert ledger.kinds() == ["hold", "settle"]
    assert ledger.calls[1][1]["cost_micro"] == 0 and call.held


def test_the_in_flight_slot_is_given_back_while_the_settlement_is_written(ledger, new_call):
    call = new_call()
    call.held = True
    served = served_by(call)
    ledger.go.clear()  # the settlement waits in the ledger until the test lets it go

    async def scenario():
        charged = Charged(served, Usage(input_tokens=3, output_tokens=4), charge_of(1234))
        settling = asyncio.ensure_future(call.finish(charged))
        await until(ledger.settling.is_set)
        await until(lambda: inflight(served.channel.id) == 0)
        assert served.closed and not settling.done()
        ledger.go.set()
        return await settling

    assert asyncio.run(scenario()) is True
    assert served.response.closed == 1
