"""/healthz, /readyz and /metrics."""

import socket

import pytest
from django.core.cache import cache
from django.test import override_settings

from groups import saturation
from groups.models import Channel
from groups.probes import ProbeResult, probe_record
from groups.saturation import Verdict


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz_needs_no_database(client):
    # no django_db mark: any database access would raise
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_ok_on_embedded_defaults(client):
    body = client.get("/readyz").json()
    assert body == {"status": "ok", "checks": {"database": "ok", "cache": "ok", "broker": "ok"}}


@pytest.mark.django_db
def test_readyz_degraded_while_redis_is_down_and_cache_keeps_working(client):
    down = f"redis://127.0.0.1:{_closed_port()}/0"
    caches = {
        "default": {
            "BACKEND": "core.cache.FallbackRedisCache",
            "LOCATION": down,
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    with override_settings(CACHES=caches, CELERY_BROKER_URL=down):
        # the relay's calls keep working on per-process local state
        assert saturation.inflight_acquire(1, 2) is True
        assert saturation.inflight(1) == 1
        cache.set("k", "v")
        assert cache.get("k") == "v"
        response = client.get("/readyz")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded"
        assert body["checks"]["database"] == "ok"
        assert "Redis unreachable" in body["checks"]["cache"]
        assert body["checks"]["broker"] != "ok"
        assert "local state" in body["note"]
        assert "apiyi_cache_degraded 1.0" in client.get("/metrics").content.decode()


@pytest.mark.redis
@pytest.mark.django_db
def test_readyz_ok_with_real_redis(client):
    body = client.get("/readyz").json()
    assert body["status"] == "ok", body


def test_metrics_export_channel_state_from_the_shared_cache(client, demo):
    busy = Channel.objects.get(name="claude-official")
    calm = Channel.objects.get(name="claude-aws")
    probe_record(channel=busy, result=ProbeResult(Verdict.SATURATED, 429, 35, 3.0, "HTTP 429"))
    probe_record(channel=calm, result=ProbeResult(Verdict.HEALTHY, 200, 120))
    saturation.inflight_acquire(calm.id, 0)
    saturation.inflight_acquire(calm.id, 0)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'apiyi_channel_verdict{channel="claude-official",verdict="saturated"} 1.0' in text
    assert 'apiyi_channel_verdict{channel="claude-official",verdict="healthy"} 0.0' in text
    assert 'apiyi_channel_verdict{channel="claude-aws",verdict="healthy"} 1.0' in text
    assert 'apiyi_channel_inflight{channel="claude-aws"} 2.0' in text
    assert 'apiyi_channel_upstream_429_total{channel="claude-official"} 1.0' in text
    assert 'apiyi_channel_probes_total{channel="claude-official",verdict="saturated"} 1.0' in text
    assert 'apiyi_channel_probe_latency_ms{channel="claude-aws"} 120.0' in text
    assert "sim-" not in text  # no upstream key anywhere


def test_health_endpoints_refuse_writes(client):
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_metrics_token_when_configured(client, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert ok.status_code == 200 and b"apiyi_rpm_limited_total" in ok.content
