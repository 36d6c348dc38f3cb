"""Relay reads."""

from __future__ import annotations

from .models import VideoJob


def video_job_for_user(*, job_id: str, user_id: int) -> VideoJob | None:
    """A video job of this user (another user's job is as good as missing)."""
    return VideoJob.objects.filter(pk=job_id, user_id=user_id).first()


def video_job_channel(*, job_id: str):
    """The job and its channel (base URL, key) for polling the upstream."""
    return VideoJob.objects.select_related("channel").filter(pk=job_id).first()
