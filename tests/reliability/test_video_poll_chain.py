"""A video job has one poll chain: a redelivered poll stops, a lost chain is restarted by beat.

The queueing of the next poll is recorded instead of sent, so each step can be run by hand;
tests/reliability/test_worker_killed.py shows the same with real worker processes.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apiyi_admin.demo import USD_CNY_RATE as RATE
from billing.models import LedgerEntry
from relay.models import VideoJob
from relay.tasks import video_job_poll, video_jobs_resume

SORA_4S = int(Decimal("0.4") * RATE * 1_000_000)  # sora-2, 4 s × $0.10 × rate

pytestmark = [pytest.mark.live]


@pytest.fixture
def queued(monkeypatch):
    """Polls the code under test queues, as (job id, seq)."""
    sent = []
    monkeypatch.setattr(video_job_poll, "apply_async", lambda args, **options: sent.append(tuple(args)))
    return sent


def _submit(live, video_ms: int) -> VideoJob:
    live.sim.configure(upstream="sora", video_ms=video_ms)
    key = live.make_key(select="Sora2Official")
    video = live.openai(key=key).videos.create(model="sora-2", prompt="waves", seconds="4")
    return VideoJob.objects.get(pk=video.id)


def _upstream_calls(live) -> int:
    return live.sim.stats()["sora"]["requests"]


def test_a_redelivered_poll_stops_instead_of_starting_a_second_chain(live, queued, reconciled):
    job = _submit(live, video_ms=600_000)
    assert queued == [(job.pk,)]  # the relay queues the chain's first poll (seq 0) at submit
    queued.clear()

    assert video_job_poll(job.pk, 0) == "pending"  # a worker's poll: hands the chain on
    assert queued == [(job.pk, 1)]
    job.refresh_from_db()
    assert job.poll_seq == 1 and job.polled_at is not None

    calls = _upstream_calls(live)
    assert video_job_poll(job.pk, 0) == "superseded"  # the same message, redelivered
    assert queued == [(job.pk, 1)] and _upstream_calls(live) == calls  # no second chain, no GET

    assert video_job_poll(job.pk, 1) == "pending"
    assert queued == [(job.pk, 1), (job.pk, 2)]


def test_beat_restarts_a_lost_chain_and_the_job_settles_once(live, queued, reconciled, settings):
    settings.VIDEO_POLL_STALE_AFTER_S = 300
    job = _submit(live, video_ms=0)  # done at once upstream
    fresh = _submit(live, video_ms=600_000)
    queued.clear()
    assert video_jobs_resume() == 0  # nothing stalled yet

    # The poll chain of `job` was lost (a worker died between polls) ten minutes ago.
    VideoJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    assert video_jobs_resume() == 1
    assert queued == [(job.pk, 1)]
    assert video_jobs_resume() == 0  # restarted once: it counts as polled now

    assert video_job_poll(job.pk, 1) == "completed"
    assert video_job_poll(job.pk, 0) == "done"  # a late message of the old chain
    job.refresh_from_db()
    assert job.status == "completed" and job.cost_micro == SORA_4S
    kinds = sorted(LedgerEntry.objects.filter(request_id=job.request_id).values_list("kind", flat=True))
    assert kinds == ["charge", "hold", "release"]

    # A settled job is never restarted, however old; an unsettled one is, until it ends.
    VideoJob.objects.update(polled_at=timezone.now() - timedelta(hours=1))
    assert video_jobs_resume() == 1
    assert queued[-1] == (fresh.pk, 1)


def test_a_job_whose_hold_the_sweeper_released_is_not_shown_as_charged(live, queued, reconciled):
    """Workers and beat down for two days: the hold sweeper releases the job's hold first, then
    polling resumes and finds the video done. Nothing is charged, and the job says so."""
    from billing.sweeper import holds_release_stale

    job = _submit(live, video_ms=0)  # done at once upstream
    two_days_ago = timezone.now() - timedelta(days=2, minutes=1)
    LedgerEntry.objects.filter(request_id=job.request_id).update(created_at=two_days_ago)
    VideoJob.objects.filter(pk=job.pk).update(created_at=two_days_ago)
    assert holds_release_stale(older_than_s=3600, video_older_than_s=2 * 86400) == 1

    assert video_job_poll(job.pk, 0) == "completed"
    job.refresh_from_db()
    assert job.settled_at is not None and job.cost_micro == 0
    assert not LedgerEntry.objects.filter(request_id=job.request_id, kind="charge").exists()
    assert video_job_poll(job.pk, 0) == "done"
