"""Relay writes of video jobs; holds, settlements and refusals go through billing.ledger.

Each function is one short transaction called from async code through `sync_to_async`.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from billing.ledger import get_ledger
from billing.models import UsageRecord, UsageStatus
from core.pricing import Usage
from groups.routing import get_snapshot

from .accounting import charge_for
from .convert.shapes import json_object
from .models import VideoJob, VideoStatus

# --- video jobs ---------------------------------------------------------------------------

VIDEO_TIMEOUT_S = 2 * 3600


def video_job_create(*, call_record: dict, request_id: str, user_id: int, fields: dict):
    """Store a submitted job and its pending usage record (the hold is already taken)."""
    with transaction.atomic():
        job = VideoJob.objects.create(request_id=request_id, user_id=user_id, **fields)
        UsageRecord.objects.update_or_create(
            request_id=request_id,
            defaults={**call_record, "user_id": user_id, "status": UsageStatus.PENDING},
        )
    return job


def _video_usage_record(job, *, status: str, http_status: int, usage=None, charge=None, error="") -> dict:
    record = {
        "token_id": job.token_id,
        "model_name": job.model_name,
        "group_name": job.group_name,
        "channel_name": job.channel_name,
        "fallback_used": job.fallback_used,
        "endpoint": "/v1/videos",
        "api_format": "openai",
        "status": status,
        "http_status": http_status,
        "multiplier": job.multiplier,
        "error_message": error[:500],
        "error_code": "video_failed" if error else "",
    }
    if usage is not None:
        record["seconds"] = usage.seconds
    if charge is not None:
        record.update(billing_basis=charge.basis, price_breakdown=charge.as_dict())
    return record


def video_job_apply_state(*, job_id: str, state: dict):
    """Record the upstream's view of a job; settle it once when it completes or fails."""
    from decimal import Decimal

    with transaction.atomic():
        job = VideoJob.objects.select_for_update().get(pk=job_id)
        if job.settled_at is not None:
            return job
        status = state.get("status")
        if status not in VideoStatus.values:
            return job
        job.status = status
        progress = state.get("progress")
        if isinstance(progress, int) and not isinstance(progress, bool):
            job.progress = max(0, min(progress, 100))
        now = timezone.now()
        if status == VideoStatus.COMPLETED:
            seconds = _whole_seconds(state.get("seconds"), job.seconds)
            snapshot = get_snapshot()
            model = snapshot.models.get(job.model_name)
            if model is None:  # priced by the model's current price: without one it stays unsettled
                raise LookupError(f"video job {job.pk}: model {job.model_name!r} is no longer routed")
            usage = Usage(seconds=Decimal(seconds))
            charge = charge_for(
                model=model,
                usage=usage,
                billing_mode=job.billing_mode,
                multiplier=job.multiplier,
                usd_cny_rate=snapshot.usd_cny_rate,
            )
            settlement = get_ledger().settle(
                request_id=job.request_id,
                user_id=job.user_id,
                cost_micro=charge.cost_micro,
                record=_video_usage_record(
                    job, status="success", http_status=200, usage=usage, charge=charge
                ),
            )
            # settled before (the hold sweeper gave up on the job): it shows what was charged
            job.cost_micro = settlement.charged_micro if settlement.already_settled else charge.cost_micro
            job.progress = 100
            job.completed_at = job.settled_at = now
            job.hold_micro = settlement.record.hold_micro
        elif status == VideoStatus.FAILED:
            error = json_object(state.get("error"))
            job.error_message = str(error.get("message") or "The video could not be generated.")[:500]
            _release_video(job, error=job.error_message)
            job.completed_at = job.settled_at = now
        job.save()
        return job


def video_job_expire(*, job_id: str, reason: str = "The video job timed out."):
    """Give up on a job that never finished: release its hold, charge nothing."""
    with transaction.atomic():
        job = VideoJob.objects.select_for_update().get(pk=job_id)
        if job.settled_at is not None:
            return job
        job.status = VideoStatus.FAILED
        job.error_message = reason[:500]
        _release_video(job, error=reason)
        job.completed_at = job.settled_at = timezone.now()
        job.save()
        return job


def video_job_delete(*, job_id: str) -> None:
    """Hide a settled job from its owner; the row stays for billing and audit."""
    VideoJob.objects.filter(pk=job_id, settled_at__isnull=False).update(deleted_at=timezone.now())


def video_job_poll_claim(*, job_id: str, seq: int) -> bool:
    """Hand an unsettled job's poll chain on from `seq` to `seq + 1`; False when it is not ours.

    A poll message a dead worker left unacknowledged comes back with its old `seq` and polls
    again; once one copy has claimed, any other finds the chain moved on and stops, so a job
    never has two chains.
    """
    return bool(
        VideoJob.objects.filter(pk=job_id, poll_seq=seq, settled_at__isnull=True).update(
            poll_seq=seq + 1, polled_at=timezone.now()
        )
    )


def video_jobs_restart_stalled(*, older_than_s: int, limit: int = 500) -> list[tuple[str, int]]:
    """Give a new poll chain to unsettled jobs that no poll touched for `older_than_s`.

    Their chain was lost: a worker died between polls, the broker lost the message, or
    queueing failed at submit. Returns (job id, seq) of each poll to queue; late messages of
    an old chain stop at their stale seq.
    """
    from django.db.models.functions import Coalesce

    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    stalled = (
        VideoJob.objects.filter(settled_at__isnull=True)
        .alias(last_poll=Coalesce("polled_at", "created_at"))
        .filter(last_poll__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", "poll_seq")[:limit]
    )
    return [(job_id, seq + 1) for job_id, seq in stalled if video_job_poll_claim(job_id=job_id, seq=seq)]


def _release_video(job, *, error: str) -> None:
    get_ledger().release(
        request_id=job.request_id,
        user_id=job.user_id,
        record=_video_usage_record(job, status="error", http_status=200, error=error),
    )


def _whole_seconds(value, default: int) -> int:
    try:
        seconds = int(str(value))
    except (TypeError, ValueError):
        return default
    return seconds if seconds > 0 else default
