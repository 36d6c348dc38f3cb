"""Beat "due" selection, the tick task and history pruning."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from groups import saturation, tasks
from groups.models import Channel, ChannelHealth
from groups.probes import ProbeResult, channel_health_prune, probe_due_claim, probe_record
from groups.saturation import Verdict

NOW = 1_800_000_000.0


@pytest.fixture
def channels(demo):
    Channel.objects.update(probe_interval_s=30)
    return {c.name: c for c in Channel.objects.all()}


def _ids(due):
    return {cid for cid, _ in due}


def test_every_channel_due_once_then_again_after_its_interval(channels):
    first = probe_due_claim(now=NOW)
    assert _ids(first) == {c.id for c in channels.values()}
    assert {interval for _, interval in first} == {30.0}
    # claimed: the next ticks within the interval queue nothing again
    assert probe_due_claim(now=NOW + 1) == []
    assert probe_due_claim(now=NOW + 26) == []  # jitter is at most 10 %
    assert _ids(probe_due_claim(now=NOW + 34)) == {c.id for c in channels.values()}


def test_disabled_channels_are_skipped_and_auto_disabled_only_if_allowed_back(channels):
    off, auto_no, auto_yes = channels["sora"], channels["wan"], channels["seedance"]
    Channel.objects.filter(pk=off.pk).update(enabled=False)
    Channel.objects.filter(pk=auto_no.pk).update(auto_disabled=True, auto_reenable=False)
    Channel.objects.filter(pk=auto_yes.pk).update(auto_disabled=True, auto_reenable=True)
    due = dict(probe_due_claim(now=NOW))
    assert off.id not in due and auto_no.id not in due
    assert due[auto_yes.id] == 10.0  # recovering channels are re-probed on a shorter interval


def test_blocked_channels_use_the_shorter_recovery_interval(channels):
    busy = channels["claude-official"]
    probe_record(channel=busy, result=ProbeResult(Verdict.SATURATED, 429, 5))
    saturation.cache.delete(saturation._probe_next_key(busy.id))
    due = dict(probe_due_claim(now=NOW))
    assert due[busy.id] == 10.0
    assert due[channels["claude-aws"].id] == 30.0


def test_probe_sets_next_due_time_from_its_verdict(channels):
    busy = channels["claude-official"]
    probe_record(channel=busy, result=ProbeResult(Verdict.FAILING, 500, 5))
    next_at = saturation.probe_next_many([busy.id])[busy.id]
    assert 8 <= next_at - time.time() <= 11.5


def test_tick_enqueues_due_channels_with_expiry(channels, monkeypatch):
    sent = []
    monkeypatch.setattr(
        tasks.probe_channel, "apply_async", lambda args, expires: sent.append((args, expires))
    )
    assert tasks.probe_tick() == len(channels)
    assert sorted(a[0] for a, _ in sent) == sorted(c.id for c in channels.values())
    assert all(expires == 30.0 for _, expires in sent)
    sent.clear()
    assert tasks.probe_tick() == 0 and sent == []


def test_prune_keeps_recent_history(channels):
    channel = channels["claude-official"]
    now = timezone.now()
    old = ChannelHealth.objects.create(
        channel=channel, at=now - timedelta(days=8), verdict="healthy", routing_verdict="healthy"
    )
    recent = ChannelHealth.objects.create(
        channel=channel, at=now - timedelta(days=6), verdict="healthy", routing_verdict="healthy"
    )
    assert channel_health_prune(keep_days=7) == 1
    assert list(ChannelHealth.objects.values_list("id", flat=True)) == [recent.id]
    assert not ChannelHealth.objects.filter(pk=old.pk).exists()
