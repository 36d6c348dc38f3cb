"""Video jobs (OpenAI style): submit with a per-second hold, poll, download; settled once at the end."""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

import aiohttp
import orjson
from django.conf import settings
from django.db import transaction
from django.http import StreamingHttpResponse

from apiyi_admin.db import db_async

from . import services
from .accounting import hold_estimate
from .chat import read_json, require_model, upstream_client_error
from .errors import RelayError, json_response
from .flow import Call
from .models import VideoJob, VideoStatus
from .planner import plan_route
from .selectors import video_job_for_user
from .upstream import headers_for, session, timeout

logger = logging.getLogger("relay")

DEFAULT_SECONDS = 4
POLL_EVERY_S = 5


def video_object(job: VideoJob) -> dict:
    return {
        "id": job.id,
        "object": "video",
        "model": job.model_name,
        "status": job.status,
        "progress": job.progress,
        "seconds": str(job.seconds),
        "size": job.size,
        "prompt": job.prompt,
        "created_at": int(job.created_at.timestamp()),
        "completed_at": int(job.completed_at.timestamp()) if job.completed_at else None,
        "expires_at": None,
        "error": {"code": "video_failed", "message": job.error_message} if job.status == "failed" else None,
        "remixed_from_video_id": None,
    }


def _seconds(body: dict) -> int:
    raw = body.get("seconds", DEFAULT_SECONDS)
    try:
        seconds = int(str(raw))
    except (TypeError, ValueError):
        seconds = 0
    limit = getattr(settings, "RELAY_MAX_VIDEO_SECONDS", 120)
    if not 1 <= seconds <= limit or isinstance(raw, bool):
        raise RelayError(
            "invalid_request", f"'seconds' must be a whole number from 1 to {limit}.", param="seconds"
        )
    return seconds


def _enqueue_poll(job_id: str) -> None:
    from .tasks import video_job_poll

    try:
        video_job_poll.apply_async((job_id,), countdown=POLL_EVERY_S)
    except Exception:
        logger.exception("could not queue polling of video job %s (GET polling still settles it)", job_id)


async def handle_video_create(request, call: Call, body: dict):
    model = require_model(body)
    call.model_name = model
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise RelayError("invalid_request", "'prompt' must be a non-empty string.", param="prompt")
    seconds = _seconds(body)
    size = str(body.get("size") or "")[:32]
    call.plan = plan_route(
        snapshot=call.snapshot, token=call.token, model_name=model, family="videos", api_format="openai"
    )
    estimate = hold_estimate(
        model=call.plan.model,
        billing_mode=call.token.billing_mode,
        multiplier=call.plan.max_multiplier,
        usd_cny_rate=call.snapshot.usd_cny_rate,
        seconds=Decimal(seconds),
    )
    await call.hold(estimate.amount_micro)
    payload = {"prompt": prompt, "seconds": str(seconds)}
    if size:
        payload["size"] = size

    def build(step, channel):
        data = dict(payload, model=channel.upstream_model(model))
        return "/videos", orjson.dumps(data), headers_for(channel)

    served = await call.dispatch(build=build, accept=read_json)
    call.release(served)
    outcome, status, data = served.result
    if outcome == "error":
        raise upstream_client_error(status, data)
    upstream_id = data.get("id")
    if not isinstance(upstream_id, str) or not upstream_id:
        raise RelayError("upstream", "The video upstream answered without a job id; you were not charged.")
    job_id = f"video_{uuid.uuid4().hex}"
    record = {
        **call.base_record(),
        "group_name": served.step.group.name,
        "channel_name": served.channel.name,
        "fallback_used": served.step.fallback,
        "multiplier": served.step.multiplier,
        "ttfb_ms": served.ttfb_ms,
        "http_status": 200,
    }
    fields = {
        "id": job_id,
        "token_id": call.token.id,
        "channel_id": served.channel.id,
        "channel_name": served.channel.name,
        "group_name": served.step.group.name,
        "fallback_used": served.step.fallback,
        "model_name": model,
        "upstream_model": served.channel.upstream_model(model),
        "upstream_job_id": upstream_id,
        "prompt": prompt,
        "seconds": seconds,
        "size": size or str(data.get("size") or ""),
        "status": data.get("status") if data.get("status") in VideoStatus.values else VideoStatus.QUEUED,
        "billing_mode": call.token.billing_mode,
        "multiplier": served.step.multiplier,
        "hold_micro": call.hold_micro,
    }

    def create():
        job = services.video_job_create(
            call_record=record, request_id=call.request_id, user_id=call.token.user_id, fields=fields
        )
        transaction.on_commit(lambda: _enqueue_poll(job.id))
        return job

    job = await db_async(create)()
    call.settled = True  # the job owns the hold from here on; it settles when the job ends
    return json_response(video_object(job))


async def fetch_upstream_state(job: VideoJob, channel) -> dict | None:
    """The upstream's current view of a job, or None when it cannot be reached right now."""
    url = f"{channel.base_url.rstrip('/')}/videos/{job.upstream_job_id}"
    try:
        async with session(allow_private=channel.allow_private_network).get(
            url, headers=headers_for(_channel_info(channel), json_body=False), timeout=timeout(30)
        ) as resp:
            if resp.status != 200:
                return None
            data = orjson.loads(await resp.read())
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _channel_info(channel):
    from groups.routing import ChannelInfo

    return ChannelInfo(
        id=channel.pk,
        name=channel.name,
        kind=channel.kind,
        base_url=channel.base_url,
        api_key=channel.api_key,
        priority=channel.priority,
        weight=channel.weight,
        max_concurrency=channel.max_concurrency,
        allow_private_network=channel.allow_private_network,
    )


def _load_job(job_id: str, user_id: int):
    job = video_job_for_user(job_id=job_id, user_id=user_id)
    if job is None:
        return None, None
    return job, job.channel


async def handle_video_get(request, call: Call, video_id: str):
    job, channel = await db_async(_load_job)(video_id, call.token.user_id)
    if job is None:
        raise RelayError("not_found", f"No video job '{video_id}' for this account.", param="video_id")
    call.model_name = job.model_name
    if job.settled_at is None and channel is not None:
        state = await fetch_upstream_state(job, channel)
        if state is not None:
            job = await db_async(services.video_job_apply_state)(job_id=job.id, state=state)
    return json_response(video_object(job))


async def handle_video_content(request, call: Call, video_id: str):
    job, channel = await db_async(_load_job)(video_id, call.token.user_id)
    if job is None:
        raise RelayError("not_found", f"No video job '{video_id}' for this account.", param="video_id")
    if job.status != VideoStatus.COMPLETED or channel is None:
        raise RelayError(
            "invalid_request", f"Video '{video_id}' is {job.status}; its content is available once completed."
        )
    url = f"{channel.base_url.rstrip('/')}/videos/{job.upstream_job_id}/content"
    try:
        resp = await session(allow_private=channel.allow_private_network).get(
            url, headers=headers_for(_channel_info(channel), json_body=False), timeout=timeout(60)
        )
    except (aiohttp.ClientError, TimeoutError):
        raise RelayError("upstream", "The video upstream could not be reached; try again.") from None
    if resp.status != 200:
        resp.close()
        raise RelayError("upstream", f"The video upstream answered HTTP {resp.status}; try again.")

    async def body():
        try:
            async for chunk in resp.content.iter_chunked(64 * 1024):
                yield chunk
        finally:
            resp.close()

    out = StreamingHttpResponse(body(), content_type=resp.headers.get("Content-Type", "video/mp4"))
    if resp.headers.get("Content-Length"):
        out["Content-Length"] = resp.headers["Content-Length"]
    return out
