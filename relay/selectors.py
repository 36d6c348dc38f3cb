"""Relay reads."""

from __future__ import annotations

from django.db.models import Q

from .models import VideoJob


def video_job_for_user(*, job_id: str, user_id: int) -> VideoJob | None:
    """A video job of this user (another user's job is as good as missing)."""
    return VideoJob.objects.filter(pk=job_id, user_id=user_id, deleted_at__isnull=True).first()


def video_jobs_for_user(
    *, user_id: int, after: str | None, limit: int, ascending: bool
) -> list[VideoJob] | None:
    """One page (`limit` + 1 rows, to tell whether more follow) of a user's videos, after a cursor id.

    None when the cursor is not one of the user's videos."""
    jobs = VideoJob.objects.filter(user_id=user_id, deleted_at__isnull=True)
    order = ("created_at", "id") if ascending else ("-created_at", "-id")
    if after:
        cursor = jobs.filter(pk=after).values_list("created_at", "id").first()
        if cursor is None:
            return None
        created_at, job_id = cursor
        later = Q(created_at__gt=created_at) | Q(created_at=created_at, id__gt=job_id)
        earlier = Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=job_id)
        jobs = jobs.filter(later if ascending else earlier)
    return list(jobs.order_by(*order)[: limit + 1])


def video_job_channel(*, job_id: str):
    """The job and its channel (base URL, key) for polling the upstream."""
    return VideoJob.objects.select_related("channel").filter(pk=job_id).first()
