"""One relay call from plan to settlement: hold, failover across channels and groups, finish once.

`Call` carries what every endpoint shares (request id, token, plan, trace, hold);
`relay.pipeline.run` drives it, so the endpoints only say how to build upstream requests and
read upstream answers. A call ends through `Call.finish` exactly once, with a typed outcome:
`Charged` (settle), `Failed` (release the hold, or record the refusal when none was taken) or
`HandedOver` (a video job owns the hold from then on).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import aiohttp
from django.db import DatabaseError

from billing import spool
from billing.ledger import InsufficientBalance, QuotaExceeded, batched_ledger, get_ledger, mark_sent
from core.db import db_async, db_async_detached
from core.pricing import Charge, Usage
from groups.policy import Reason
from groups.routing import ChannelInfo, RoutingSnapshot
from groups.saturation import (
    HALF_OPEN_S,
    cooldown_start,
    half_open_claim,
    half_open_succeeded,
    inflight_acquire,
    inflight_release,
)

from . import upstream
from .accounting import usage_fields
from .auth import TokenInfo, should_touch_last_used
from .convert.responses import upstream_error_message
from .errors import SATURATED_MESSAGE, RelayError
from .planner import Plan, PlanStep
from .router import order_channels

logger = logging.getLogger("relay")

# Upstream answers blamed on the request itself: passed on to the client, no failover.
CLIENT_ERROR_STATUSES = frozenset({400, 413, 415, 422})
# 504: the upstream may have done the work, so it is not retried elsewhere (reported as is).
NO_FAILOVER_STATUSES = CLIENT_ERROR_STATUSES | {504}


T = TypeVar("T")


class Retry(Exception):
    """This channel failed before the client saw a byte: try the next one.

    `retry_after` is the upstream's own Retry-After (seconds) when it said it is saturated."""

    def __init__(self, outcome: str, status: int = 0, detail: str = "", *, retry_after: float | None = None):
        super().__init__(detail or outcome)
        self.outcome = outcome
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


class Rejected(Exception):
    """The upstream blamed the request itself (a 4xx, or a 504): no failover, the client is told."""

    def __init__(self, status: int, raw: bytes):
        super().__init__(f"upstream rejected the request (HTTP {status})")
        self.status = status
        self.raw = raw


def upstream_client_error(status: int, raw: bytes) -> RelayError:
    """A 4xx the upstream blamed on the request itself: passed on in the client's format."""
    message = upstream_error_message(raw) or f"The upstream rejected the request (HTTP {status})."
    if status >= 500:
        return RelayError("upstream", f"The upstream timed out (HTTP {status}): {message}", status=status)
    return RelayError("invalid_request", message, status=status)


@dataclass
class Served(Generic[T]):
    """The channel that answered and what `accept` read of its answer.

    It holds the channel's in-flight slot and the upstream connection until `close()`."""

    step: PlanStep
    channel: ChannelInfo
    response: aiohttp.ClientResponse
    result: T
    ttfb_ms: int
    closed: bool = False

    def close(self) -> None:
        """Give the in-flight slot back and close the upstream connection: once."""
        if self.closed:
            return
        self.closed = True
        inflight_release(self.channel.id)
        self.response.close()


@dataclass(frozen=True)
class Charged:
    """The upstream served the call: charge `charge` for `usage`; the rest of the hold is released."""

    served: Served
    usage: Usage
    charge: Charge
    estimated: bool = False
    status: str = "success"  # or "partial": a stream that did not complete
    error_code: str = ""
    error_message: str = ""


@dataclass(frozen=True)
class Failed:
    """The call failed: release the hold (or record the refusal when none was taken), charge nothing.

    `code` and `detail` replace the error's own code and message on the usage record when the
    record should say more than the client is told (an answer that could not be converted)."""

    error: RelayError
    served: Served | None = None
    code: str = ""
    detail: str = ""


@dataclass(frozen=True)
class HandedOver:
    """The call's hold now belongs to something that outlives it (a video job settles it later)."""


Outcome = Charged | Failed | HandedOver


@dataclass(frozen=True)
class UpstreamRequest:
    """What `build` makes of a call for one channel: POSTed to the channel's base URL + path."""

    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Call:
    request_id: str
    token: TokenInfo
    snapshot: RoutingSnapshot
    api_format: str
    endpoint: str
    model_name: str = ""
    stream: bool = False
    started: float = field(default_factory=time.monotonic)
    plan: Plan | None = None
    hold_micro: int | None = None  # what the hold committed; None = unknown (settlement reads it)
    held: bool = False
    outcome: Outcome | None = None  # how the call ended, set once by `finish`
    detached: bool = False
    trace: list[dict] = field(default_factory=list)
    holding: asyncio.Task | None = field(default=None, repr=False)  # a hold `start_hold` began

    @property
    def planned(self) -> Plan:
        """The route, once `plan_route` has set it (every upstream call comes after that)."""
        if self.plan is None:
            raise RuntimeError(f"call {self.request_id} has no plan yet")
        return self.plan

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def base_record(self) -> dict:
        return {
            "token_id": self.token.id,
            "token_name": self.token.name,
            "endpoint": self.endpoint,
            "api_format": self.api_format,
            "model_name": self.model_name[:128],
            "stream": self.stream,
            "trace": self.trace,
            "latency_ms": self.elapsed_ms(),
        }

    # --- money -------------------------------------------------------------------------

    def _ledger(self, name: str, sent: asyncio.Future | None = None):
        """The ledger's `name` call as a coroutine function: micro-batched on the event loop
        (PostgreSQL), else a database unit on a thread. `sent` is resolved once the call's
        statement is on its way (at once for a unit on a thread)."""
        batched = batched_ledger()
        if batched is not None:
            call = getattr(batched, name)
            return functools.partial(call, sent=sent) if sent is not None else call
        mark_sent(sent)
        fn = getattr(get_ledger(), name)
        return db_async_detached(fn) if self.detached else db_async(fn)

    async def finish(self, outcome: Outcome) -> bool:
        """The one way a call ends: settle, release or refuse, exactly once.

        The outcome is taken before the first await, so a second finish (the client leaving while
        the first one writes, Django closing a stream that already settled) is a no-op: False."""
        if self.outcome is not None:
            return False
        self.outcome = outcome
        if self.holding is not None:
            # not held (insufficient balance, no database): the call is refused below
            with contextlib.suppress(RelayError):
                await self.hold_taken()
        if isinstance(outcome, Charged):
            await self.settle(
                served=outcome.served,
                usage=outcome.usage,
                charge=outcome.charge,
                status=outcome.status,
                http_status=200,
                estimated=outcome.estimated,
                error_code=outcome.error_code,
                error_message=outcome.error_message,
            )
        elif isinstance(outcome, Failed):
            error = outcome.error
            if not self.held:
                await self.refuse(error)
                return True
            # With the database down the client still gets its error; the hold stays for the sweeper.
            try:
                await self.settle(
                    served=outcome.served,
                    usage=None,
                    charge=None,
                    status="error",
                    http_status=error.status,
                    error_code=outcome.code or error.code,
                    error_message=outcome.detail or error.message,
                    refusal_reason=error.reason,
                )
            except DatabaseError:
                logger.exception("could not release the hold of call %s; the sweeper will", self.request_id)
        return True

    async def refuse(self, error: RelayError) -> None:
        """Record a refusal after auth (no hold was taken) so the request id can be looked up.

        Only `finish` calls it (as it does `settle`), so that a call ends once."""
        record = {
            **self.base_record(),
            "http_status": error.status,
            "error_code": error.code,
            "error_message": error.message[:500],
            "refusal_reason": error.reason,
        }
        touch = self.token.id if should_touch_last_used(self.token.id) else None
        try:
            await self._ledger("refuse")(
                request_id=self.request_id, user_id=self.token.user_id, record=record, touch_token_id=touch
            )
        except Exception:
            logger.exception("could not record refused call %s", self.request_id)

    async def start_hold(self, amount_micro: int) -> None:
        """Begin the hold and return once its statement is on its way to PostgreSQL, so that
        routing's Redis round trips overlap PostgreSQL's work (bench/PROFILE.md). `dispatch`
        waits for the hold (`hold_taken`) before the first upstream request, and `finish`
        before it ends the call: no upstream call is made unpaid, no hold is left behind."""
        sent = asyncio.get_running_loop().create_future()
        self.holding = asyncio.ensure_future(self.hold(amount_micro, sent=sent))
        self.holding.add_done_callback(lambda _: mark_sent(sent))
        try:
            await sent
        except asyncio.CancelledError:
            # The client left: let the hold finish (it marks the call held) so finish() releases it.
            holding, self.holding = self.holding, None
            await asyncio.wait([holding])
            if not holding.cancelled():
                holding.exception()
            raise

    async def hold_taken(self) -> None:
        """Wait for the hold `start_hold` began: its refusal (402, 503) is the call's error.
        A call whose client left meanwhile (detached) stops here, before any upstream call."""
        holding, self.holding = self.holding, None
        if holding is None:
            return
        await holding
        if self.detached:
            raise RelayError("upstream", "The client went away.", status=499)

    async def hold(self, amount_micro: int, *, sent: asyncio.Future | None = None) -> None:
        """Reserve the estimate; 402 before any upstream call when balance or quota fall short."""
        pending = asyncio.ensure_future(
            self._ledger("hold", sent)(
                user_id=self.token.user_id,
                token_id=self.token.id,
                request_id=self.request_id,
                amount_micro=amount_micro,
                touch_token=should_touch_last_used(self.token.id),
            )
        )
        try:
            self.hold_micro = await asyncio.shield(pending)
        except asyncio.CancelledError:
            # The client left while the hold was being written: let it finish, then mark the
            # call held so that finish() releases it (settling finds the hold, if any, by request id).
            await asyncio.wait([pending])
            self.held = True
            raise
        except DatabaseError:
            logger.exception("could not hold for call %s", self.request_id)
            raise RelayError(
                "unavailable",
                "The gateway cannot reach its database right now; nothing was charged. Please retry shortly.",
                retry_after=2,
            ) from None
        except QuotaExceeded:
            raise RelayError(
                "insufficient_quota",
                "This key's quota is used up (the call may cost up to "
                f"¥{amount_micro / 1_000_000:.4f}). Raise the token quota or use another key.",
                reason=Reason.TOKEN_QUOTA,
            ) from None
        except InsufficientBalance:
            raise RelayError(
                "insufficient_quota",
                f"Insufficient balance: this call may cost up to ¥{amount_micro / 1_000_000:.4f}. "
                "Please recharge.",
                reason=Reason.BALANCE,
            ) from None
        self.held = True

    async def settle(
        self,
        *,
        served: Served | None,
        usage: Usage | None,
        charge: Charge | None,
        status: str,
        http_status: int,
        estimated: bool = False,
        error_code: str = "",
        error_message: str = "",
        refusal_reason: str = "",
    ) -> None:
        """Charge (or release) the hold and write the usage record (through `finish`, once)."""
        record = {
            **self.base_record(),
            "status": status,
            "http_status": http_status,
            "error_code": error_code[:64],
            "error_message": error_message[:500],
            "refusal_reason": refusal_reason,
            "usage_estimated": estimated,
        }
        if served is not None:
            record.update(
                group_name=served.step.group.name,
                channel_name=served.channel.name,
                fallback_used=served.step.fallback,
                multiplier=served.step.multiplier,
                ttfb_ms=served.ttfb_ms,
            )
        if usage is not None:
            record.update(usage_fields(usage))
        if charge is not None:
            record.update(billing_basis=charge.basis, price_breakdown=charge.as_dict())
        cost = charge.cost_micro if charge is not None else 0
        sent = asyncio.get_running_loop().create_future()
        if served is not None:
            # the in-flight slot's Redis round trip overlaps the settlement's PostgreSQL work
            sent.add_done_callback(lambda _: served.close())
        try:
            await asyncio.shield(
                self._settle_or_spool(
                    sent,
                    request_id=self.request_id,
                    user_id=self.token.user_id,
                    cost_micro=cost,
                    record=record,
                    hold_micro=self.hold_micro,
                )
            )
        finally:
            mark_sent(sent)

    async def _settle_or_spool(self, sent: asyncio.Future, **settlement) -> None:
        """With the database unreachable the settlement goes to the spool, replayed once it
        answers (billing/spool.py); only if even that fails does the DatabaseError propagate."""
        try:
            await self._ledger("settle", sent)(**settlement)
        except DatabaseError:
            if not await spool.settle_later(**settlement):
                raise

    # --- routing -----------------------------------------------------------------------

    def attempt(
        self, step: PlanStep, channel: ChannelInfo, outcome: str, status: int, started: float
    ) -> None:
        self.trace.append(
            {
                "group": step.group.name,
                "channel": channel.name,
                "outcome": outcome,
                "status": status,
                "ms": int((time.monotonic() - started) * 1000),
            }
        )

    async def dispatch(
        self,
        *,
        build: Callable[[PlanStep, ChannelInfo], UpstreamRequest],
        accept: Callable[[aiohttp.ClientResponse], Awaitable[T]],
    ) -> Served[T]:
        """Try each channel of each group in plan order until one answers.

        The channel's in-flight slot stays taken by the returned call: `close()` it. An answer
        the upstream blamed on the request is the client's error (`upstream_client_error`).
        """
        saturated_only = True
        retry_after = None
        for step in self.planned.steps:
            candidates = order_channels(step.channels)
            now = time.monotonic()
            for channel in candidates.saturated:
                self.attempt(step, channel, "saturated", 0, now)
            for channel in candidates.unhealthy:
                self.attempt(step, channel, "unhealthy", 0, now)
                saturated_only = False
            if candidates.saturated:
                wait = candidates.retry_after_s
                retry_after = wait if retry_after is None else min(retry_after, wait)
            trials = []
            if candidates.held:
                await self.hold_taken()  # before a trial is claimed
            for channel in candidates.held:
                # A held channel gets a trial call only when its group has no ready channel left.
                if not candidates.ready and half_open_claim(channel.id):
                    trials.append(channel)
                else:
                    self.attempt(step, channel, "saturated", 0, now)
                    wait = candidates.held_wait_s.get(channel.id) or float(HALF_OPEN_S)
                    retry_after = wait if retry_after is None else min(retry_after, wait)
            for channel in candidates.ready + trials:
                if not inflight_acquire(channel.id, channel.max_concurrency):
                    self.attempt(step, channel, "saturated", 0, time.monotonic())
                    continue
                try:
                    await self.hold_taken()  # a no-op after the first channel
                except BaseException:
                    inflight_release(channel.id)
                    raise
                started = time.monotonic()
                try:
                    served = await self._try(step, channel, build, accept, started)
                except Retry as retry:
                    inflight_release(channel.id)
                    self.attempt(step, channel, retry.outcome, retry.status, started)
                    if retry.outcome == "upstream_429":
                        wait = cooldown_start(channel.id, retry.retry_after)
                        retry_after = wait if retry_after is None else min(retry_after, wait)
                    else:
                        saturated_only = False
                    continue
                except Rejected as rejected:
                    inflight_release(channel.id)
                    if channel in trials:
                        half_open_succeeded(channel.id)
                    self.attempt(step, channel, "ok", rejected.status, started)
                    raise upstream_client_error(rejected.status, rejected.raw) from None
                except BaseException:
                    inflight_release(channel.id)
                    raise
                if channel in trials:
                    half_open_succeeded(channel.id)
                self.attempt(step, channel, "ok", served.response.status, started)
                return served
        await self.hold_taken()  # a refused hold is the answer, if it was refused
        if saturated_only:
            raise RelayError(
                "saturated",
                SATURATED_MESSAGE,
                retry_after=math.ceil(retry_after or 1),
                reason=Reason.SATURATED,
            )
        last = self.trace[-1]["outcome"] if self.trace else ""
        if all(a["outcome"] in ("unhealthy", "saturated") for a in self.trace):
            raise RelayError(
                "unavailable",
                "Every upstream channel for this model is unavailable right now.",
                reason=Reason.NO_CHANNEL,
            )
        raise RelayError(
            "upstream",
            f"The upstream failed ({last}) on every channel that could serve this model; "
            "you were not charged.",
        )

    async def _try(self, step, channel, build, accept, started) -> Served:
        request = build(step, channel)
        try:
            response = await upstream.session(allow_private=channel.allow_private_network).post(
                channel.base_url + request.path,
                data=request.body,
                headers=request.headers,
                timeout=upstream.timeout(),
                allow_redirects=False,
            )
        except TimeoutError:
            raise Retry("timeout") from None
        except aiohttp.ClientError as exc:
            raise Retry("connect_error", detail=type(exc).__name__) from None
        try:
            if response.status in (429, 529):  # 529: Anthropic's "overloaded" is saturation too
                retry_after = upstream.retry_after_seconds(response.headers.get("Retry-After"))
                raise Retry("upstream_429", response.status, retry_after=retry_after)
            if response.status >= 400 and response.status not in NO_FAILOVER_STATUSES:
                raise Retry(f"upstream_{response.status}", response.status)
            if response.status >= 400:
                raise Rejected(response.status, await response.read())
            result = await accept(response)
        except Retry:
            response.close()
            raise
        except TimeoutError:
            response.close()
            raise Retry("timeout", response.status) from None
        except aiohttp.ClientError as exc:
            response.close()
            raise Retry("read_error", response.status, type(exc).__name__) from None
        except BaseException:
            response.close()
            raise
        return Served(step, channel, response, result, self.elapsed_ms())
