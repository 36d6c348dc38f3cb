"""Celery tasks of the relay: thin, id in → service call."""

from __future__ import annotations

import logging
from datetime import timedelta

import requests
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from groups.urlsafety import safe_session

from . import services
from .selectors import video_job_channel

logger = logging.getLogger("relay")

POLL_EVERY_S = 5


def poll_upstream(job) -> dict | None:
    """GET the upstream job (sync: this runs in a worker)."""
    channel = job.channel
    if channel is None:
        return None
    headers = {"Authorization": f"Bearer {channel.api_key}", "Accept": "application/json"}
    url = f"{channel.base_url.rstrip('/')}/videos/{job.upstream_job_id}"
    try:
        with safe_session(allow_private=channel.allow_private_network) as http:
            resp = http.get(url, headers=headers, timeout=30, allow_redirects=False)
        data = resp.json() if resp.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None
    return data if isinstance(data, dict) else None


@shared_task(bind=True, ignore_result=True)
def video_job_poll(self, job_id: str, seq: int = 0) -> str:
    """Poll one video job; settle it when it ends, release its hold when it times out.

    Safe to run twice (a worker killed mid-poll leaves the message to be redelivered): the
    job settles once under its row lock, and only the poll holding the job's current
    `poll_seq` queues the next one.
    """
    job = video_job_channel(job_id=job_id)
    if job is None or job.settled_at is not None:
        return "done"
    if job.poll_seq != seq:
        return "superseded"
    state = poll_upstream(job)
    if state is not None:
        job = services.video_job_apply_state(job_id=job_id, state=state)
        if job.settled_at is not None:
            return job.status
    if timezone.now() - job.created_at > timedelta(seconds=services.VIDEO_TIMEOUT_S):
        services.video_job_expire(job_id=job_id)
        return "expired"
    if self.request.is_eager:
        return "pending"
    if not services.video_job_poll_claim(job_id=job_id, seq=seq):
        return "superseded"
    self.apply_async((job_id, seq + 1), countdown=POLL_EVERY_S)
    return "pending"


@shared_task(ignore_result=True)
def video_jobs_resume() -> int:
    """Beat: restart polling of unsettled jobs whose poll chain went quiet, so each one ends."""
    restarted = services.video_jobs_restart_stalled(older_than_s=settings.VIDEO_POLL_STALE_AFTER_S)
    for job_id, seq in restarted:
        video_job_poll.apply_async((job_id, seq))
    return len(restarted)
