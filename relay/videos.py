"""Video jobs (OpenAI style): submit (text or image-to-video) or remix with a hold, poll, list,
download, delete; each job is settled once, when it ends."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from decimal import Decimal

import aiohttp
import orjson
from django.conf import settings
from django.db import transaction
from django.http import HttpResponse

from core.db import db_async
from groups.routing import ChannelInfo

from . import multipart, services
from .chat import require_model
from .errors import RelayError, json_response
from .flow import Call, HandedOver, Served, UpstreamRequest
from .models import VideoJob, VideoStatus
from .multipart import Upload
from .pipeline import Estimate, Spec, read_json, run
from .planner import Plan
from .selectors import video_job_for_user, video_jobs_for_user
from .tasks import video_job_poll
from .upstream import headers_for, relayed_body, session, timeout

logger = logging.getLogger("relay")

DEFAULT_SECONDS = 4
POLL_EVERY_S = 5
LIST_LIMIT = 20
MAX_LIST_LIMIT = 100
REFERENCE_TYPES = ("image/jpeg", "image/png", "image/webp", "video/mp4")
REFERENCE_KEYS = ("image_url", "file_id")
VARIANTS = ("video", "thumbnail", "spritesheet")
# Fields the relay reads itself; any other field the client sent goes upstream as it came.
OWN_FIELDS = ("model", "prompt", "seconds", "size", "input_reference")


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
        "remixed_from_video_id": job.remixed_from_id,
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
    try:
        video_job_poll.apply_async((job_id,), countdown=POLL_EVERY_S)
    except Exception:
        logger.exception("could not queue polling of video job %s (GET polling still settles it)", job_id)


def _prompt(body: dict) -> str:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise RelayError("invalid_request", "'prompt' must be a non-empty string.", param="prompt")
    return prompt


def _input_reference(body: dict) -> Upload | dict | None:
    """The image (or video) to start from: an uploaded file, or {image_url} / {file_id} as OpenAI takes."""
    nested = {k: body[f"input_reference[{k}]"] for k in REFERENCE_KEYS if f"input_reference[{k}]" in body}
    ref = body.get("input_reference", nested or None)
    if ref is None:
        return None
    if isinstance(ref, Upload):
        if ref.content_type not in REFERENCE_TYPES or not ref.data:
            raise RelayError(
                "invalid_request",
                f"'input_reference' must be a non-empty file of type {', '.join(REFERENCE_TYPES)}; "
                f"got {ref.content_type}.",
                param="input_reference",
            )
        return ref
    if (
        isinstance(ref, dict)
        and ref
        and set(ref) <= set(REFERENCE_KEYS)
        and all(isinstance(v, str) and v for v in ref.values())
    ):
        return ref
    raise RelayError(
        "invalid_request",
        "'input_reference' must be a file upload (multipart/form-data), or an object with "
        "'image_url' or 'file_id'.",
        param="input_reference",
    )


class VideoSpec(Spec[dict, str]):
    """POST /v1/videos: hold the job's seconds, submit it to the first channel that takes it and
    store it; the job then owns the hold and settles it when it ends (`services.video_job_apply_state`)."""

    family = "videos"

    def __init__(self, body: dict):
        self.body = body
        self.remixed_from_id: str | None = None

    def parse(self, call: Call) -> None:
        body = self.body
        self.model = call.model_name = require_model(body)
        self.prompt = _prompt(body)
        self.seconds = _seconds(body)
        self.size = str(body.get("size") or "")[:32]
        self.reference = _input_reference(body)
        extra = {
            k: v
            for k, v in body.items()
            if k not in OWN_FIELDS and not k.startswith("input_reference[") and not isinstance(v, Upload)
        }
        payload = {**extra, "prompt": self.prompt, "seconds": str(self.seconds)}
        if self.size:
            payload["size"] = self.size
        if isinstance(self.reference, dict):
            payload["input_reference"] = self.reference
        self.payload = payload

    def estimate(self) -> Estimate:
        return Estimate(seconds=Decimal(self.seconds))

    def build(self, step, channel) -> UpstreamRequest:
        data = dict(self.payload, model=channel.upstream_model(self.model))
        if isinstance(self.reference, Upload):
            form = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in data.items()}
            raw, content_type = multipart.encode(form, {"input_reference": self.reference})
            headers = dict(headers_for(channel, json_body=False), **{"Content-Type": content_type})
            return UpstreamRequest("/videos", raw, headers)
        return UpstreamRequest("/videos", orjson.dumps(data), headers_for(channel))

    accept = staticmethod(read_json)

    def respond(self, served: Served[dict]) -> str:
        """The upstream's job id: without one there is no job to settle later."""
        upstream_id = served.result.get("id")
        if not isinstance(upstream_id, str) or not upstream_id:
            raise RelayError(
                "upstream", "The video upstream answered without a job id; you were not charged."
            )
        return upstream_id

    async def settle(self, call: Call, served: Served[dict], reply: str) -> None:
        """Store the job with its pending usage record and hand the hold over to it."""
        data = served.result
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
            "id": f"video_{uuid.uuid4().hex}",
            "token_id": call.token.id,
            "channel_id": served.channel.id,
            "channel_name": served.channel.name,
            "group_name": served.step.group.name,
            "fallback_used": served.step.fallback,
            "model_name": self.model,
            "upstream_model": served.channel.upstream_model(self.model),
            "upstream_job_id": reply,
            "prompt": self.prompt,
            "seconds": self.seconds,
            "size": self.size or str(data.get("size") or ""),
            "status": data.get("status") if data.get("status") in VideoStatus.values else VideoStatus.QUEUED,
            "billing_mode": call.token.billing_mode,
            "multiplier": served.step.multiplier,
            "hold_micro": call.hold_micro,
            "remixed_from_id": self.remixed_from_id,
        }

        def create():
            job = services.video_job_create(
                call_record=record, request_id=call.request_id, user_id=call.token.user_id, fields=fields
            )
            transaction.on_commit(lambda: _enqueue_poll(job.id))
            return job

        self.job = await db_async(create)()
        await call.finish(HandedOver())

    async def deliver(self, served, reply) -> HttpResponse:
        return json_response(video_object(self.job))


async def handle_video_create(request, call: Call, body: dict):
    return await run(call, VideoSpec(body))


class RemixSpec(VideoSpec):
    """A new job from a completed one and a new prompt, on the channel that holds the source."""

    def __init__(self, source: VideoJob, body: dict):
        super().__init__(body)
        self.source = source
        self.model = source.model_name
        self.seconds = source.seconds
        self.size = source.size
        self.remixed_from_id = source.id

    def parse(self, call: Call) -> None:
        source, body = self.source, self.body
        self.prompt = _prompt(body)
        unknown = sorted(set(body) - {"prompt"})
        if unknown:
            raise RelayError(
                "invalid_request",
                f"A remix takes only 'prompt'; '{unknown[0]}' is not supported.",
                param=unknown[0],
            )
        if source.status != VideoStatus.COMPLETED:
            raise RelayError(
                "invalid_request",
                f"Video '{source.id}' is {source.status}; only a completed video can be remixed.",
                param="video_id",
            )

    def route(self, call: Call) -> Plan:
        plan = super().route(call)
        narrowed = [
            replace(step, channels=tuple(c for c in step.channels if c.id == self.source.channel_id))
            for step in plan.steps
        ]
        steps = tuple(step for step in narrowed if step.channels)
        if not steps:
            raise RelayError(
                "unavailable",
                f"The channel that made video '{self.source.id}' no longer serves {self.model} for this "
                "token's groups, so it cannot be remixed.",
            )
        return replace(plan, steps=steps)

    def build(self, step, channel) -> UpstreamRequest:
        path = f"/videos/{self.source.upstream_job_id}/remix"
        return UpstreamRequest(path, orjson.dumps({"prompt": self.prompt}), headers_for(channel))


async def handle_video_remix(request, call: Call, video_id: str, body: dict):
    source, _ = await db_async(_load_job)(video_id, call.token.user_id)
    if source is None:
        raise RelayError("not_found", f"No video job '{video_id}' for this account.", param="video_id")
    call.model_name = source.model_name
    return await run(call, RemixSpec(source, body))


def _list_limit(raw: str | None) -> int:
    if raw is None:
        return LIST_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST_LIMIT:
        raise RelayError(
            "invalid_request", f"'limit' must be a whole number from 1 to {MAX_LIST_LIMIT}.", param="limit"
        )
    return int(raw)


async def handle_video_list(request, call: Call):
    """This account's videos, newest first (or `order=asc`), a page of `limit` after the `after` id."""
    limit = _list_limit(request.GET.get("limit"))
    order = request.GET.get("order", "desc")
    if order not in ("asc", "desc"):
        raise RelayError("invalid_request", "'order' must be 'asc' or 'desc'.", param="order")
    after = request.GET.get("after") or None
    jobs = await db_async(video_jobs_for_user)(
        user_id=call.token.user_id, after=after, limit=limit, ascending=order == "asc"
    )
    if jobs is None:
        raise RelayError("not_found", f"No video job '{after}' for this account.", param="after")
    data = [video_object(job) for job in jobs[:limit]]
    return json_response(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(jobs) > limit,
        }
    )


async def handle_video_delete(request, call: Call, video_id: str):
    """Delete a finished video upstream, then hide it from its owner (its usage record stays)."""
    job, channel = await db_async(_load_job)(video_id, call.token.user_id)
    if job is None:
        raise RelayError("not_found", f"No video job '{video_id}' for this account.", param="video_id")
    call.model_name = job.model_name
    if job.settled_at is None:
        raise RelayError(
            "invalid_request",
            f"Video '{video_id}' is {job.status}; it can be deleted once it has completed or failed.",
            param="video_id",
        )
    if channel is not None:
        url = f"{channel.base_url.rstrip('/')}/videos/{job.upstream_job_id}"
        try:
            async with session(allow_private=channel.allow_private_network).delete(
                url, headers=headers_for(_channel_info(channel), json_body=False), timeout=timeout(30)
            ) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        if status not in (200, 204, 404):  # 404: the upstream already let it go
            raise RelayError("upstream", "The video upstream could not delete the video; try again.")
    await db_async(services.video_job_delete)(job_id=job.id)
    return json_response({"id": job.id, "object": "video.deleted", "deleted": True})


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
    """The video, or its `thumbnail` / `spritesheet` preview (`?variant=`), streamed from the upstream."""
    variant = request.GET.get("variant", "video")
    if variant not in VARIANTS:
        raise RelayError(
            "invalid_request", f"'variant' must be one of {', '.join(VARIANTS)}.", param="variant"
        )
    job, channel = await db_async(_load_job)(video_id, call.token.user_id)
    if job is None:
        raise RelayError("not_found", f"No video job '{video_id}' for this account.", param="video_id")
    if job.status != VideoStatus.COMPLETED or channel is None:
        raise RelayError(
            "invalid_request", f"Video '{video_id}' is {job.status}; its content is available once completed."
        )
    url = f"{channel.base_url.rstrip('/')}/videos/{job.upstream_job_id}/content?variant={variant}"
    try:
        resp = await session(allow_private=channel.allow_private_network).get(
            url, headers=headers_for(_channel_info(channel), json_body=False), timeout=timeout(60)
        )
    except (aiohttp.ClientError, TimeoutError):
        raise RelayError("upstream", "The video upstream could not be reached; try again.") from None
    if resp.status != 200:
        resp.close()
        raise RelayError("upstream", f"The video upstream answered HTTP {resp.status}; try again.")
    return relayed_body(resp, "video/mp4")
