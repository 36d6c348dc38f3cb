"""Routing-verdict transitions of `probe_record`: recovery, auto-disable, auto re-enable, audit."""

import pytest
from django.test import override_settings

from accounts.models import AuditLog
from groups import saturation
from groups.models import Channel, ChannelHealth
from groups.probes import ProbeResult, probe_record
from groups.saturation import Verdict

HEALTHY = ProbeResult(Verdict.HEALTHY, 200, 40)
SATURATED = ProbeResult(Verdict.SATURATED, 429, 12, 7.0, "HTTP 429: busy")
FAILING = ProbeResult(Verdict.FAILING, 500, 15, None, "HTTP 500: boom")
AUTH = ProbeResult(Verdict.AUTH_ERROR, 401, 9, None, "HTTP 401: bad key")


@pytest.fixture
def channel(demo):
    return Channel.objects.get(name="claude-official")


def _routing(channel):
    return saturation.verdict_get(channel.id)["verdict"]


def _audits(channel, action):
    return list(AuditLog.objects.filter(action=action, object_id=str(channel.id)).order_by("id"))


@override_settings(PROBE_RECOVERY_SUCCESSES=3)
def test_saturated_blocks_at_once_and_recovers_after_consecutive_successes(channel):
    probe_record(channel=channel, result=HEALTHY)
    assert _routing(channel) == Verdict.HEALTHY
    assert _audits(channel, "channel.verdict") == []

    outcome = probe_record(channel=channel, result=SATURATED)
    assert (outcome.previous, outcome.routing) == (Verdict.HEALTHY, Verdict.SATURATED)
    state = saturation.channel_states([channel.id])[channel.id]
    assert saturation.is_saturated(state, channel.max_concurrency)
    assert saturation.channel_state(channel, state)["cooldown_remaining_s"] > 0  # Retry-After honoured

    assert probe_record(channel=channel, result=HEALTHY).routing == Verdict.SATURATED
    # a relapse resets the count
    assert probe_record(channel=channel, result=FAILING).routing == Verdict.FAILING
    assert probe_record(channel=channel, result=HEALTHY).routing == Verdict.FAILING
    assert probe_record(channel=channel, result=HEALTHY).routing == Verdict.FAILING
    assert probe_record(channel=channel, result=HEALTHY).routing == Verdict.HEALTHY
    assert _routing(channel) == Verdict.HEALTHY

    changes = [(a.before["verdict"], a.after["verdict"]) for a in _audits(channel, "channel.verdict")]
    assert changes == [
        (Verdict.HEALTHY, Verdict.SATURATED),
        (Verdict.SATURATED, Verdict.FAILING),
        (Verdict.FAILING, Verdict.HEALTHY),
    ]
    rows = list(ChannelHealth.objects.filter(channel=channel).order_by("id"))
    assert [r.verdict for r in rows] == [
        "healthy",
        "saturated",
        "healthy",
        "failing",
        "healthy",
        "healthy",
        "healthy",
    ]
    assert [r.routing_verdict for r in rows][-2:] == ["failing", "healthy"]
    assert rows[1].status_code == 429 and rows[1].retry_after_s == 7.0


def test_auth_error_auto_disables_with_reason_and_audit(channel):
    channel.auto_reenable = False
    channel.save()
    probe_record(channel=channel, result=AUTH)
    channel.refresh_from_db()
    assert channel.auto_disabled and not channel.is_active
    assert "401" in channel.auto_disabled_reason
    assert len(_audits(channel, "channel.auto_disable")) == 1

    # not allowed to come back on its own, however healthy it looks
    for _ in range(4):
        assert probe_record(channel=channel, result=HEALTHY).routing == Verdict.AUTH_ERROR
    channel.refresh_from_db()
    assert channel.auto_disabled
    assert _audits(channel, "channel.auto_reenable") == []


@override_settings(PROBE_RECOVERY_SUCCESSES=2)
def test_auto_reenable_honoured_after_consecutive_successes(channel):
    channel.auto_reenable = True
    channel.save()
    probe_record(channel=channel, result=AUTH)
    saturation.cache.clear()  # routing state lost: the database still knows it is disabled
    assert probe_record(channel=channel, result=HEALTHY).routing == Verdict.AUTH_ERROR
    channel.refresh_from_db()
    assert channel.auto_disabled
    assert probe_record(channel=channel, result=HEALTHY).routing == Verdict.HEALTHY
    channel.refresh_from_db()
    assert not channel.auto_disabled and channel.auto_disabled_reason == ""
    assert len(_audits(channel, "channel.auto_reenable")) == 1


def test_operator_disabled_or_manual_reenable_is_not_touched(channel):
    """A channel the operator switched off stays off; the probe only flips auto_disabled."""
    channel.enabled = False
    channel.save()
    probe_record(channel=channel, result=HEALTHY)
    channel.refresh_from_db()
    assert not channel.enabled


def test_auto_disabled_channel_stays_auth_error_whatever_else_it_sees(channel):
    channel.auto_reenable = True
    channel.save()
    probe_record(channel=channel, result=AUTH)
    for result in (FAILING, SATURATED, FAILING):
        assert probe_record(channel=channel, result=result).routing == Verdict.AUTH_ERROR
    assert len(_audits(channel, "channel.verdict")) == 1  # healthy → auth_error, once


def test_operator_reenable_is_trusted_by_the_next_probe(channel):
    from groups.services import channel_set_enabled

    probe_record(channel=channel, result=AUTH)
    channel.refresh_from_db()
    channel_set_enabled(actor=None, channel=channel, enabled=True, reason="key rotated")
    channel.refresh_from_db()
    assert not channel.auto_disabled
    assert saturation.verdict_get(channel.id) is None  # back in rotation at once
    outcome = probe_record(channel=channel, result=HEALTHY)
    assert (outcome.previous, outcome.routing) == (Verdict.HEALTHY, Verdict.HEALTHY)
    assert _routing(channel) == Verdict.HEALTHY
