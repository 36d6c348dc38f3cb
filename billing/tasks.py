"""Thin Celery tasks for billing: read settings, call a service."""

from celery import shared_task
from django.conf import settings

from . import sweeper


@shared_task(name="billing.tasks.holds_release_stale", ignore_result=True)
def holds_release_stale() -> int:
    """Beat, every few minutes: give back holds whose relay process died before settling."""
    return sweeper.holds_release_stale(
        older_than_s=settings.BILLING_HOLD_STALE_AFTER_S,
        video_older_than_s=settings.BILLING_VIDEO_HOLD_STALE_AFTER_S,
    )
