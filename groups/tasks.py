"""Thin Celery tasks for probing: ids in, services do the work."""

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from . import probes


@shared_task(ignore_result=True)
def probe_tick() -> int:
    """Queue a probe for every channel that is due; each expires before its next turn."""
    due = probes.probe_due_claim()
    for channel_id, interval in due:
        probe_channel.apply_async(args=[channel_id], expires=interval)
    return len(due)


@shared_task(
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=3,
)
def probe_channel(channel_id: int) -> None:
    probes.channel_probe(channel_id=channel_id)


@shared_task(ignore_result=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=3)
def channel_health_prune() -> int:
    return probes.channel_health_prune(keep_days=settings.CHANNEL_HEALTH_KEEP_DAYS)
