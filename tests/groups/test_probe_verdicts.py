"""Probe verdicts against the simulated upstreams (real HTTP calls)."""

import threading

import pytest
import requests
from django.test import override_settings

from accounts.models import AuditLog
from groups import saturation
from groups.models import Channel, ChannelHealth
from groups.probes import channel_probe, probe_call, probe_request
from groups.saturation import Verdict


@pytest.fixture
def anthropic_channel(demo, simulator):
    return Channel.objects.get(name="claude-official")


@pytest.fixture
def openai_channel(demo, simulator):
    return Channel.objects.get(name="domestic")


def _requests(simulator, upstream):
    return simulator.stats().get(upstream, {}).get("requests", 0)


def test_healthy_with_the_cheapest_real_call_per_kind(demo, simulator):
    anthropic = Channel.objects.get(name="claude-official")
    openai = Channel.objects.get(name="domestic")
    video = Channel.objects.get(name="sora")
    method, url, headers, body = probe_request(anthropic)
    assert (method, url.rsplit("/", 1)[1], body["max_tokens"], body["model"]) == (
        "POST",
        "messages",
        1,
        "claude-sonnet-4-5",
    )
    assert headers["anthropic-version"] and headers["x-api-key"] == "sim-claude-official-key"
    method, url, _, body = probe_request(openai)
    assert (method, url.rsplit("/", 1)[1], body["model"]) == ("POST", "completions", "deepseek-v4")
    assert probe_request(video)[:2] == ("GET", simulator.base_url("sora") + "/models")
    for channel in (anthropic, openai, video):
        result = probe_call(channel)
        assert (result.verdict, result.status_code, result.error) == (Verdict.HEALTHY, 200, "")
        assert result.latency_ms is not None
    assert simulator.stats()["claude-official"]["models"] == {"claude-sonnet-4-5": 1}


def test_a_gemini_channel_is_probed_with_a_one_token_generate_content(demo, simulator):
    gemini = Channel.objects.get(name="gemini-official")
    method, url, headers, body = probe_request(gemini)
    assert (method, url) == (
        "POST",
        f"{simulator.url}/u/gemini-official/v1beta/models/gemini-2.5-flash:generateContent",
    )
    assert headers == {"x-goog-api-key": "sim-gemini-official-key"}
    assert body["generationConfig"] == {"maxOutputTokens": 1}
    assert probe_call(gemini).verdict == Verdict.HEALTHY
    simulator.configure(upstream="gemini-official", error="429", retry_after_s=4)
    result = probe_call(gemini)
    assert (result.verdict, result.status_code, result.retry_after_s) == (Verdict.SATURATED, 429, 4.0)
    simulator.configure(upstream="gemini-official", error="401")
    assert probe_call(gemini).verdict == Verdict.AUTH_ERROR


def test_429_is_saturated_with_retry_after(anthropic_channel, simulator):
    simulator.configure(upstream="claude-official", error="429", retry_after_s=7)
    outcome = channel_probe(channel_id=anthropic_channel.id)
    assert outcome.result.verdict == Verdict.SATURATED
    assert (outcome.result.status_code, outcome.result.retry_after_s) == (429, 7.0)
    assert outcome.routing == Verdict.SATURATED
    assert saturation.verdict_get(anthropic_channel.id)["verdict"] == Verdict.SATURATED
    state = saturation.channel_states([anthropic_channel.id])[anthropic_channel.id]
    assert 5 < saturation.channel_state(anthropic_channel, state)["cooldown_remaining_s"] <= 7
    row = ChannelHealth.objects.get(channel=anthropic_channel)
    assert (row.verdict, row.status_code, row.retry_after_s) == ("saturated", 429, 7.0)
    audit = AuditLog.objects.get(action="channel.verdict", object_id=str(anthropic_channel.id))
    assert audit.after["verdict"] == "saturated" and audit.actor_name == "system"


def test_upstream_concurrency_limit_is_saturated(openai_channel, simulator):
    simulator.configure(upstream="domestic", max_concurrency=1, latency_ms=1500)

    def occupy():  # a customer call holding the upstream's only slot
        requests.post(
            simulator.base_url("domestic") + "/chat/completions",
            json={"model": "glm-5.1", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer sim-domestic-key"},
            timeout=10,
        )

    busy = threading.Thread(target=occupy)
    busy.start()
    try:
        for _ in range(100):  # wait until the first call is in flight upstream
            if simulator.stats().get("domestic", {}).get("in_flight"):
                break
            threading.Event().wait(0.02)
        result = probe_call(openai_channel)
    finally:
        busy.join()
    assert (result.verdict, result.status_code) == (Verdict.SATURATED, 429)


def test_slow_answer_is_saturated(openai_channel, simulator):
    openai_channel.latency_threshold_ms = 100
    simulator.configure(upstream="domestic", latency_ms=300)
    result = probe_call(openai_channel)
    assert (result.verdict, result.status_code) == (Verdict.SATURATED, 200)
    assert result.latency_ms >= 300 and "above threshold 100 ms" in result.error


@pytest.mark.parametrize("error", ["500", "503", "reset"])
def test_server_errors_and_resets_are_failing(openai_channel, simulator, error):
    simulator.configure(upstream="domestic", error=error)
    result = probe_call(openai_channel)
    assert result.verdict == Verdict.FAILING
    assert result.status_code == (None if error == "reset" else int(error))
    assert result.error


def test_timeout_is_failing(openai_channel, simulator):
    simulator.configure(upstream="domestic", latency_ms=2000)
    result = probe_call(openai_channel, timeout_s=0.3)
    assert (result.verdict, result.error) == (Verdict.FAILING, "timed out after 0.3s")


def test_overloaded_529_is_saturated(anthropic_channel, simulator):
    simulator.configure(upstream="claude-official", error="529")
    assert probe_call(anthropic_channel).verdict == Verdict.SATURATED


def test_in_flight_at_capacity_is_saturated_without_calling_upstream(openai_channel, simulator):
    openai_channel.max_concurrency = 2
    assert saturation.inflight_acquire(openai_channel.id, 2)
    assert saturation.inflight_acquire(openai_channel.id, 2)
    result = probe_call(openai_channel)
    assert result.verdict == Verdict.SATURATED and "in-flight at capacity (2/2)" in result.error
    assert _requests(simulator, "domestic") == 0


def test_401_is_auth_error_and_auto_disables_without_leaking_the_key(openai_channel, simulator):
    simulator.configure(upstream="domestic", error="401")
    outcome = channel_probe(channel_id=openai_channel.id)
    assert outcome.result.verdict == Verdict.AUTH_ERROR and outcome.result.status_code == 401
    openai_channel.refresh_from_db()
    assert openai_channel.auto_disabled and "HTTP 401" in openai_channel.auto_disabled_reason
    key = "sim-domestic-key"
    texts = [openai_channel.auto_disabled_reason, outcome.result.error]
    texts += [str(a.before) + str(a.after) for a in AuditLog.objects.filter(object_id=str(openai_channel.id))]
    texts += list(ChannelHealth.objects.values_list("error", flat=True))
    assert texts and not any(key in text for text in texts)


def test_wrong_key_is_auth_error(openai_channel, simulator):
    openai_channel.api_key = "sim-wrong-key"
    assert probe_call(openai_channel).verdict == Verdict.AUTH_ERROR


@override_settings(PROBE_RECOVERY_SUCCESSES=2)
def test_recovery_after_consecutive_successes(anthropic_channel, simulator):
    simulator.configure(upstream="claude-official", error="500")
    assert channel_probe(channel_id=anthropic_channel.id).routing == Verdict.FAILING
    simulator.reset()
    first = channel_probe(channel_id=anthropic_channel.id)
    assert (first.result.verdict, first.routing) == (Verdict.HEALTHY, Verdict.FAILING)
    assert channel_probe(channel_id=anthropic_channel.id).routing == Verdict.HEALTHY


@override_settings(PROBE_RECOVERY_SUCCESSES=1)
@pytest.mark.parametrize("allowed", [True, False])
def test_auto_reenable_is_honoured(openai_channel, simulator, allowed):
    Channel.objects.filter(pk=openai_channel.pk).update(auto_reenable=allowed)
    simulator.configure(upstream="domestic", error="401")
    channel_probe(channel_id=openai_channel.id)
    simulator.reset()
    outcome = channel_probe(channel_id=openai_channel.id)
    openai_channel.refresh_from_db()
    assert openai_channel.auto_disabled is not allowed
    assert outcome.routing == (Verdict.HEALTHY if allowed else Verdict.AUTH_ERROR)


def test_private_upstream_refused_unless_allowed(openai_channel, simulator):
    openai_channel.allow_private_network = False
    result = probe_call(openai_channel)
    assert result.verdict == Verdict.FAILING and "SSRF" in result.error
    assert _requests(simulator, "domestic") == 0
