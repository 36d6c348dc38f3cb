"""Thin Celery tasks for billing: read settings, call a service."""

from celery import shared_task
from django.conf import settings

from . import spool, sweeper


@shared_task(name="billing.tasks.holds_release_stale", ignore_result=True)
def holds_release_stale() -> int:
    """Beat, every few minutes: give back holds whose relay process died before settling."""
    return sweeper.holds_release_stale(
        older_than_s=settings.BILLING_HOLD_STALE_AFTER_S,
        video_older_than_s=settings.BILLING_VIDEO_HOLD_STALE_AFTER_S,
    )


@shared_task(name="billing.tasks.spool_replay", ignore_result=True)
def spool_replay() -> int:
    """Beat, every minute: replay settlements spooled by relay processes that died (or by
    one whose own replay has not run yet); a file a live process holds is left to it."""
    return spool.replay().replayed
