"""Saturation probes: find a busy or broken upstream before a customer call does.

A probe makes the cheapest real call a channel's kind supports (a 1-token completion or
message for text channels, since only a real call shows the upstream's saturation; a models
list for video channels), turns status, latency and Retry-After into an observed verdict,
then moves the channel's routing verdict in the shared cache:

- saturated / failing take effect at once; getting back into rotation takes
  `PROBE_RECOVERY_SUCCESSES` healthy probes in a row, re-probed on a shorter interval;
- 401/403 auto-disables the channel; it comes back only when the operator allowed
  `auto_reenable` on it and it recovers like any other channel.

Every probe is a `ChannelHealth` row; every change of routing verdict is an audit event.
Upstream keys travel only in request headers and are scrubbed from any recorded error.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.services import audit_record

from . import saturation
from .models import Channel, ChannelHealth, ChannelKind, ModelKind
from .saturation import Verdict
from .urlsafety import UnsafeURLError, guard_url, safe_session

log = logging.getLogger(__name__)

ANTHROPIC_VERSION = "2023-06-01"
SATURATION_STATUSES = (429, 529)
AUTH_STATUSES = (401, 403)
JITTER = 0.1


@dataclass(frozen=True)
class ProbeResult:
    verdict: str
    status_code: int | None = None
    latency_ms: int | None = None
    retry_after_s: float | None = None
    error: str = ""


@dataclass(frozen=True)
class ProbeOutcome:
    channel: Channel
    result: ProbeResult
    previous: str
    routing: str


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or nonsense."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - timezone.now()).total_seconds()
        except (TypeError, ValueError, IndexError):
            return None
    return max(seconds, 0.0) if seconds == seconds else None  # NaN guard


def _scrub(text: str, secret: str) -> str:
    text = text.replace(secret, "***") if secret else text
    return text[:500]


def _probe_model(channel: Channel) -> str | None:
    """Upstream name of the cheapest chat model the channel serves (a real saturation signal)."""
    row = (
        channel.channel_models.select_related("model")
        .filter(model__kind=ModelKind.TEXT, model__output_usd_per_mtok__isnull=False)
        .order_by("model__output_usd_per_mtok", "model__input_usd_per_mtok", "model__name")
        .first()
    )
    if row is None:
        return None
    return row.upstream_name or row.model.name


def probe_request(channel: Channel) -> tuple[str, str, dict, dict | None]:
    """(method, url, headers, json body) of the cheapest real call for this channel."""
    base = channel.base_url.rstrip("/")
    key = channel.api_key
    model = _probe_model(channel) if channel.kind != ChannelKind.VIDEO else None
    if channel.kind == ChannelKind.ANTHROPIC:
        headers = {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
        if model:
            body = {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "ping"}]}
            return "POST", f"{base}/messages", headers, body
        return "GET", f"{base}/models", headers, None
    if channel.kind == ChannelKind.GEMINI:
        headers = {"x-goog-api-key": key}
        if model:
            body = {
                "contents": [{"role": "user", "parts": [{"text": "ping"}]}],
                "generationConfig": {"maxOutputTokens": 1},
            }
            return "POST", f"{base}/v1beta/models/{model}:generateContent", headers, body
        return "GET", f"{base}/v1beta/models", headers, None
    headers = {"Authorization": f"Bearer {key}"}
    if model:
        body = {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "ping"}]}
        return "POST", f"{base}/chat/completions", headers, body
    return "GET", f"{base}/models", headers, None


def probe_decide(
    *,
    status_code: int | None,
    latency_ms: int | None,
    latency_threshold_ms: int,
) -> str:
    """Observed verdict of one probe call (pure, so the rules are easy to read and test)."""
    if status_code is None:
        return Verdict.FAILING
    if status_code in AUTH_STATUSES:
        return Verdict.AUTH_ERROR
    if status_code in SATURATION_STATUSES:
        return Verdict.SATURATED
    if status_code >= 400:
        return Verdict.FAILING
    if latency_ms is not None and latency_ms > latency_threshold_ms:
        return Verdict.SATURATED
    return Verdict.HEALTHY


def probe_call(channel: Channel, *, timeout_s: float | None = None) -> ProbeResult:
    """Make the probe call (no database writes) and read what it says."""
    timeout_s = settings.PROBE_TIMEOUT_S if timeout_s is None else timeout_s
    inflight = saturation.inflight(channel.id)
    if channel.max_concurrency and inflight >= channel.max_concurrency:
        return ProbeResult(
            Verdict.SATURATED, error=f"in-flight at capacity ({inflight}/{channel.max_concurrency})"
        )
    method, url, headers, body = probe_request(channel)
    try:
        guard_url(url, allow_private=channel.allow_private_network)
    except UnsafeURLError as exc:
        return ProbeResult(Verdict.FAILING, error=f"refused by the SSRF guard: {exc}")
    started = time.monotonic()
    try:
        with safe_session(allow_private=channel.allow_private_network) as session:
            response = session.request(
                method, url, headers=headers, json=body, timeout=timeout_s, allow_redirects=False
            )
    except requests.Timeout:
        return ProbeResult(Verdict.FAILING, error=f"timed out after {timeout_s:g}s")
    except requests.RequestException as exc:
        return ProbeResult(Verdict.FAILING, error=_scrub(f"{type(exc).__name__}: {exc}", channel.api_key))
    latency_ms = int((time.monotonic() - started) * 1000)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    error = ""
    if not response.ok:
        error = _scrub(f"HTTP {response.status_code}: {response.text[:300]}", channel.api_key)
    verdict = probe_decide(
        status_code=response.status_code,
        latency_ms=latency_ms,
        latency_threshold_ms=channel.latency_threshold_ms,
    )
    if verdict == Verdict.SATURATED and response.ok:
        error = f"latency {latency_ms} ms above threshold {channel.latency_threshold_ms} ms"
    return ProbeResult(verdict, response.status_code, latency_ms, retry_after, error)


def _previous_routing(channel: Channel) -> str:
    if channel.auto_disabled:
        return Verdict.AUTH_ERROR
    cached = saturation.verdict_get(channel.id)
    previous = cached["verdict"] if cached else None
    if previous is None:
        history = ChannelHealth.objects.filter(channel=channel)
        previous = history.values_list("routing_verdict", flat=True).first()
    if previous == Verdict.AUTH_ERROR:
        return Verdict.HEALTHY  # an operator re-enabled it since: their word counts
    return previous or Verdict.HEALTHY


def _recovered(channel: Channel) -> bool:
    """This healthy probe plus the previous ones make enough successes in a row."""
    needed = max(settings.PROBE_RECOVERY_SUCCESSES, 1) - 1
    if needed == 0:
        return True
    recent = list(ChannelHealth.objects.filter(channel=channel).values_list("verdict", flat=True)[:needed])
    return len(recent) == needed and all(v == Verdict.HEALTHY for v in recent)


def probe_interval(channel: Channel, routing: str) -> float:
    """Healthy channels every `probe_interval_s`; others on a third of it (at least 1 s)."""
    base = float(channel.probe_interval_s)
    return base if routing == Verdict.HEALTHY else max(1.0, base / 3)


def _jittered(seconds: float) -> float:
    return seconds * random.uniform(1 - JITTER, 1 + JITTER)


@transaction.atomic
def probe_record(*, channel: Channel, result: ProbeResult, now=None) -> ProbeOutcome:
    """Apply one probe result: routing verdict, shared cache, auto-disable, history, audit."""
    channel = Channel.objects.select_for_update().get(pk=channel.pk)
    now = now or timezone.now()
    previous = _previous_routing(channel)
    routing = result.verdict
    if channel.auto_disabled:
        # off until it recovers, and only if the operator allowed it to come back by itself
        back = result.verdict == Verdict.HEALTHY and channel.auto_reenable and _recovered(channel)
        routing = Verdict.HEALTHY if back else Verdict.AUTH_ERROR
    elif result.verdict == Verdict.HEALTHY and previous != Verdict.HEALTHY and not _recovered(channel):
        routing = previous
    ChannelHealth.objects.create(
        channel=channel,
        at=now,
        verdict=result.verdict,
        routing_verdict=routing,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        retry_after_s=result.retry_after_s,
        error=result.error,
    )
    saturation.probe_counted(channel.id, result.verdict)
    if result.status_code in SATURATION_STATUSES:
        # the verdict already blocks the channel; a cool-down only adds the upstream's Retry-After
        if result.retry_after_s:
            saturation.cooldown_start(channel.id, result.retry_after_s)
        else:
            saturation.upstream_429_counted(channel.id)
    saturation.verdict_set(
        channel.id,
        routing,
        retry_after_s=result.retry_after_s,
        observed=result.verdict,
        latency_ms=result.latency_ms,
    )
    details = {
        "verdict": routing,
        "observed": result.verdict,
        "status_code": result.status_code,
        "latency_ms": result.latency_ms,
        "retry_after_s": result.retry_after_s,
        "error": result.error,
    }
    if routing != previous:
        audit_record(
            actor=None, action="channel.verdict", obj=channel, before={"verdict": previous}, after=details
        )
    if routing == Verdict.AUTH_ERROR and not channel.auto_disabled:
        channel.auto_disabled = True
        channel.auto_disabled_reason = f"Probe got HTTP {result.status_code} at {now:%Y-%m-%d %H:%M} UTC"
        channel.save(update_fields=["auto_disabled", "auto_disabled_reason", "updated_at"])
        audit_record(actor=None, action="channel.auto_disable", obj=channel, after=details)
    elif routing == Verdict.HEALTHY and channel.auto_disabled:
        reason = channel.auto_disabled_reason
        channel.auto_disabled = False
        channel.auto_disabled_reason = ""
        channel.save(update_fields=["auto_disabled", "auto_disabled_reason", "updated_at"])
        audit_record(
            actor=None, action="channel.auto_reenable", obj=channel, before={"reason": reason}, after=details
        )
    saturation.probe_next_set(channel.id, time.time() + _jittered(probe_interval(channel, routing)))
    return ProbeOutcome(channel=channel, result=result, previous=previous, routing=routing)


def channel_probe(*, channel_id: int) -> ProbeOutcome | None:
    """Probe one channel now and apply the result; None if the channel no longer exists."""
    channel = Channel.objects.filter(pk=channel_id).first()
    if channel is None:
        return None
    result = probe_call(channel)
    outcome = probe_record(channel=channel, result=result)
    log.info("probe %s: %s (routing %s)", channel.name, result.verdict, outcome.routing)
    return outcome


def probeable_channels():
    """Channels the beat probes: enabled, and not auto-disabled unless they may come back."""
    return Channel.objects.filter(enabled=True).filter(Q(auto_disabled=False) | Q(auto_reenable=True))


def probe_due_claim(*, now: float | None = None) -> list[tuple[int, float]]:
    """Channels due for a probe, each claimed until its next interval so it is queued once.

    Returns (channel id, seconds the queued probe stays worth running).
    """
    now = time.time() if now is None else now
    channels = list(probeable_channels().only("id", "probe_interval_s", "auto_disabled"))
    next_at = saturation.probe_next_many([c.id for c in channels])
    verdicts = saturation.channel_states([c.id for c in channels])
    due = []
    for channel in channels:
        if next_at.get(channel.id, 0.0) > now:
            continue
        verdict = (verdicts[channel.id]["verdict"] or {}).get("verdict", Verdict.HEALTHY)
        if channel.auto_disabled:
            verdict = Verdict.AUTH_ERROR
        interval = probe_interval(channel, verdict)
        saturation.probe_next_set(channel.id, now + _jittered(interval))
        due.append((channel.id, interval))
    return due


def channel_health_prune(*, keep_days: int) -> int:
    """Delete probe history older than `keep_days`; returns how many rows went."""
    cutoff = timezone.now() - timedelta(days=keep_days)
    deleted, _ = ChannelHealth.objects.filter(at__lt=cutoff).delete()
    return deleted
