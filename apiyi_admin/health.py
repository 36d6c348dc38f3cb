"""Endpoints for load balancers and monitoring.

- `/healthz`: the process answers (no database, no cache) — liveness.
- `/readyz`: database, cache and broker reachable. A missing database makes the node
  unready (503): it cannot authenticate keys. Redis or the broker being down leaves it
  serving on local state, so it stays ready but reports `degraded` with the reason.
- `/metrics`: Prometheus text, computed at scrape time from the shared cache, so every
  relay process reports the same cluster-wide numbers (multi-process safe by design).
"""

from __future__ import annotations

import hmac
import logging
import os
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from groups.models import Channel
from groups.saturation import Verdict, metrics_snapshot
from relay.ratelimit import RATE_LIMITED_COUNT_KEY

READY_CACHE_KEY = "health:ready"
log = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not reachable"; details go to the log only
        log.warning("readyz: database unreachable: %s", exc)
        return f"database unreachable ({type(exc).__name__})"
    return ""


def _check_cache() -> str:
    ping = getattr(cache, "ping", None)
    if ping is not None:
        return ping()
    try:
        cache.set(READY_CACHE_KEY, 1, 10)
        return "" if cache.get(READY_CACHE_KEY) == 1 else "cache did not keep a value"
    except Exception as exc:
        return f"cache unreachable ({type(exc).__name__})"


def _check_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in", "")
        return "" if folder and _writable(folder) else f"broker folder {folder} is not writable"
    try:
        if url.startswith(("redis://", "rediss://")):
            import redis

            with redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1) as client:
                client.ping()
        else:
            from kombu import Connection

            with Connection(url, connect_timeout=1) as conn:
                conn.connect()
    except Exception as exc:  # unreachable for whatever reason
        return f"broker unreachable ({type(exc).__name__})"
    return ""


def _writable(folder: str) -> bool:
    return os.path.isdir(folder) and os.access(folder, os.W_OK)


@never_cache
@require_GET
def readyz(request):
    """200 ok / 200 degraded (serving on local state) / 503 (cannot serve)."""
    checks = {"database": _check_database(), "cache": _check_cache(), "broker": _check_broker()}
    status = "ok"
    if any(checks.values()):
        status = "degraded"
    if checks["database"]:
        status = "unavailable"
    body = {
        "status": status,
        "checks": {name: reason or "ok" for name, reason in checks.items()},
    }
    if checks["cache"]:
        body["note"] = "shared routing state unavailable; this node routes on its own local state"
    return JsonResponse(body, status=503 if status == "unavailable" else 200)


class ChannelCollector:
    """Per-channel saturation state from the shared cache, read at scrape time."""

    def collect(self):
        channels = list(
            Channel.objects.values_list("id", "name", "max_concurrency", "enabled", "auto_disabled")
        )
        states = metrics_snapshot([c[0] for c in channels]) if channels else {}
        now = time.time()
        inflight = GaugeMetricFamily(
            "apiyi_channel_inflight", "Calls in flight per channel", labels=["channel"]
        )
        capacity = GaugeMetricFamily(
            "apiyi_channel_max_concurrency", "Configured max concurrency (0 = unlimited)", labels=["channel"]
        )
        active = GaugeMetricFamily(
            "apiyi_channel_active", "1 if enabled and not auto-disabled", labels=["channel"]
        )
        cooldown = GaugeMetricFamily(
            "apiyi_channel_cooldown_seconds", "Seconds left in a 429 cool-down", labels=["channel"]
        )
        verdict = GaugeMetricFamily(
            "apiyi_channel_verdict",
            "Routing verdict from the probes (1 = current)",
            labels=["channel", "verdict"],
        )
        latency = GaugeMetricFamily(
            "apiyi_channel_probe_latency_ms", "Latency of the latest probe", labels=["channel"]
        )
        upstream_429 = CounterMetricFamily(
            "apiyi_channel_upstream_429", "Upstream 429 responses seen (relay and probes)", labels=["channel"]
        )
        probes = CounterMetricFamily(
            "apiyi_channel_probes", "Probes by observed verdict", labels=["channel", "verdict"]
        )
        for cid, name, max_conc, enabled, auto_disabled in channels:
            state = states[cid]
            inflight.add_metric([name], int(state["inflight"] or 0))
            capacity.add_metric([name], max_conc)
            active.add_metric([name], int(enabled and not auto_disabled))
            until = state["cooldown_until"]
            cooldown.add_metric([name], max(float(until) - now, 0.0) if until else 0.0)
            current = (state["verdict"] or {}).get("verdict")
            for v in Verdict.ALL:
                verdict.add_metric([name, v], int(v == current))
            last = (state["verdict"] or {}).get("latency_ms")
            if last is not None:
                latency.add_metric([name], last)
            upstream_429.add_metric([name], state["upstream_429"])
            for v, count in state["probes"].items():
                probes.add_metric([name, v], count)
        yield from (inflight, capacity, active, cooldown, verdict, latency, upstream_429, probes)


class RelayCollector:
    def collect(self):
        refused = CounterMetricFamily("apiyi_rpm_limited", "Requests refused by an operator RPM limit")
        refused.add_metric([], int(cache.get(RATE_LIMITED_COUNT_KEY) or 0))
        degraded = GaugeMetricFamily(
            "apiyi_cache_degraded", "1 while this process runs on local state because Redis is down"
        )
        status = getattr(cache, "status", None)
        degraded.add_metric([], int(bool(status and status()["degraded"])))
        yield from (refused, degraded)


@never_cache
@require_GET
def metrics(request):
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            response = HttpResponse("metrics need the bearer token (METRICS_TOKEN)\n", status=401)
            response["WWW-Authenticate"] = "Bearer"
            return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ChannelCollector())
    registry.register(RelayCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
