"""The relay pipeline: plan → hold → dispatch → respond → settle, the same for every endpoint.

An endpoint hands `run` a `Spec` that says only what differs: how to parse the request, what
the hold should cover, the upstream request for a channel, how to read the upstream's answer,
what it used and how to answer the client (whole, or as a stream). `run` does the rest, and
every call ends through `Call.finish` once, whether it is charged, released or refused.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar

import aiohttp
import orjson
from django.http import HttpResponse, StreamingHttpResponse

from core.pricing import Usage
from groups.routing import ChannelInfo

from .accounting import charge_for, hold_estimate
from .convert.errors import ConversionError
from .errors import RelayError, json_response
from .flow import Call, Charged, Failed, Retry, Served, UpstreamRequest
from .planner import Plan, PlanStep, plan_route

A = TypeVar("A")  # what `accept` reads of the upstream's answer
R = TypeVar("R")  # the client's answer, before it becomes a response


@dataclass(frozen=True)
class Estimate:
    """What the hold must cover: the worst case of the call, priced by `hold_estimate`."""

    prompt_chars: int = 0
    max_tokens: int | None = None
    seconds: Decimal | None = None
    images: int = 1


@dataclass(frozen=True)
class Metered:
    """What the upstream served, and whether it had to be estimated (the upstream did not say)."""

    usage: Usage
    estimated: bool = False


async def read_json(response: aiohttp.ClientResponse) -> dict:
    """Non-stream accept: the whole (small) JSON answer, or a Retry for garbage."""
    raw = await response.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Retry("bad_response", response.status, "upstream answered with invalid JSON") from None
    if not isinstance(data, dict):
        raise Retry("bad_response", response.status, "upstream answered with a non-object")
    return data


async def first_chunk(response: aiohttp.ClientResponse) -> bytes:
    """Stream accept: wait for the first bytes so a dead upstream can still fail over."""
    content_type = response.headers.get("Content-Type", "")
    if "text/event-stream" not in content_type:
        raise Retry("bad_response", response.status, f"expected an event stream, got {content_type!r}")
    chunk = await response.content.readany()
    if not chunk:
        raise Retry("empty_stream", response.status)
    return chunk


class Spec(Generic[A, R]):
    """What one endpoint adds to the pipeline. `run` calls, in order: `parse`, `route`,
    `estimate`, `build` (per channel tried) and then, for a stream, `stream`; otherwise
    `accept`, `respond` (the client's answer; a ConversionError charges nothing), `usage`,
    `settle` and `deliver` (the response, once settled)."""

    family = "chat"  # the routing family (groups.policy) of the models this endpoint serves
    route_format = "openai"  # the client format the plan checks channels against
    stream = False
    model = ""

    def parse(self, call: Call) -> None:
        """Check the request and read what the call needs (its model, `stream`)."""
        raise NotImplementedError

    def route(self, call: Call) -> Plan:
        return plan_route(
            snapshot=call.snapshot,
            token=call.token,
            model_name=self.model,
            family=self.family,
            api_format=self.route_format,
        )

    def estimate(self) -> Estimate:
        raise NotImplementedError

    def build(self, step: PlanStep, channel: ChannelInfo) -> UpstreamRequest:
        raise NotImplementedError

    async def accept(self, response: aiohttp.ClientResponse) -> A:
        """Read a successful upstream answer (a Retry fails over to the next channel)."""
        raise NotImplementedError

    def respond(self, served: Served[A]) -> R:
        raise NotImplementedError

    def usage(self, served: Served[A], reply: R) -> Metered:
        raise NotImplementedError

    async def settle(self, call: Call, served: Served[A], reply: R) -> None:
        """Charge what the call used, at the multiplier of the group that served it."""
        metered = self.usage(served, reply)
        charge = charge_for(
            model=call.planned.model,
            usage=metered.usage,
            billing_mode=call.token.billing_mode,
            multiplier=served.step.multiplier,
            usd_cny_rate=call.snapshot.usd_cny_rate,
        )
        await call.finish(Charged(served, metered.usage, charge, estimated=metered.estimated))

    async def deliver(self, served: Served[A], reply: R) -> HttpResponse:
        return json_response(reply)

    def stream_response(self, call: Call, served: Served[bytes]) -> StreamingHttpResponse:
        """The client's stream; it settles the call through `Call.finish` when it ends."""
        raise NotImplementedError


async def run(call: Call, spec: Spec) -> HttpResponse | StreamingHttpResponse:
    """One relay call through its seven steps (authentication came before, in the view)."""
    spec.parse(call)
    call.plan = spec.route(call)
    estimate = spec.estimate()
    hold = hold_estimate(
        model=call.planned.model,
        billing_mode=call.token.billing_mode,
        multiplier=call.planned.max_multiplier,
        usd_cny_rate=call.snapshot.usd_cny_rate,
        prompt_chars=estimate.prompt_chars,
        max_tokens=estimate.max_tokens,
        seconds=estimate.seconds,
        images=estimate.images,
    )
    await call.start_hold(hold.amount_micro)
    if spec.stream:
        served = await call.dispatch(build=spec.build, accept=first_chunk)
        return spec.stream_response(call, served)
    return await detached(call, _answer(call, spec))


async def _answer(call: Call, spec: Spec) -> HttpResponse:
    served = await call.dispatch(build=spec.build, accept=spec.accept)
    try:
        try:
            reply = spec.respond(served)
        except ConversionError as exc:
            error = RelayError("upstream", f"The upstream answer could not be converted: {exc}")
            await call.finish(Failed(error, served=served, code="bad_response", detail=str(exc)))
            raise error from None
        await spec.settle(call, served, reply)  # closes `served` while the settlement is written
    finally:
        served.close()
    return await spec.deliver(served, reply)


async def detached(call: Call, coro):
    """Run the upstream part so that a client leaving does not abort it: the call still
    completes and is billed for what the upstream generated, and its hold is resolved."""
    task = asyncio.ensure_future(_resolving(call, coro))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        call.detached = True
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        raise


async def _resolving(call: Call, coro):
    try:
        return await coro
    except Exception as exc:
        if call.detached:
            error = exc if isinstance(exc, RelayError) else RelayError("upstream", "The gateway failed.")
            await call.finish(Failed(error))
        raise
