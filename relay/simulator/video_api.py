"""OpenAI-style video jobs: submit (text or image-to-video), poll, list, remix, download, delete."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from . import openai_api
from .call import BadRequest, Call
from .openai_api import PNG
from .textgen import new_id

QUEUED_SHARE = 0.1
EXPIRES_S = 3600
MAX_LIST = 100
REFERENCE_TYPES = ("image/jpeg", "image/png", "image/webp", "video/mp4")
# The content variants and what each one is served as (previews are images).
VARIANTS = {"video": "video/mp4", "thumbnail": "image/webp", "spritesheet": "image/jpeg"}
# A tiny but well-formed MP4: an ftyp box and an mdat box.
MP4 = (
    b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    + (8 + 64).to_bytes(4, "big")
    + b"mdat"
    + bytes(range(64))
)


@dataclass(slots=True)
class Job:
    id: str
    upstream: str
    model: str
    prompt: str
    seconds: str
    size: str
    created_at: int
    started: float
    duration_s: float
    fail: bool
    remixed_from: str | None = None

    def state(self) -> dict:
        share = (time.monotonic() - self.started) / self.duration_s if self.duration_s else 1.0
        out = {
            "id": self.id,
            "object": "video",
            "model": self.model,
            "prompt": self.prompt,
            "seconds": self.seconds,
            "size": self.size,
            "created_at": self.created_at,
            "completed_at": None,
            "expires_at": None,
            "error": None,
            "remixed_from_video_id": self.remixed_from,
        }
        if share < QUEUED_SHARE:
            return dict(out, status="queued", progress=0)
        if share < 1:
            return dict(out, status="in_progress", progress=min(int(share * 100), 99))
        done = self.created_at + round(self.duration_s)
        if self.fail:
            return dict(
                out,
                status="failed",
                progress=100,
                completed_at=done,
                error={"code": "video_generation_failed", "message": "The video could not be generated."},
            )
        return dict(out, status="completed", progress=100, completed_at=done, expires_at=done + EXPIRES_S)


async def read_form(request: web.Request) -> dict:
    """The SDK posts multipart/form-data; plain JSON is accepted too.

    An uploaded file becomes a description of what arrived (name, type, size, first bytes),
    so the journal shows that a relay forwarded it intact."""
    form = await request.post()
    out: dict = {}
    for key, value in form.items():
        if isinstance(value, str):
            out[key] = value
            continue
        if not isinstance(value, web.FileField):
            raise BadRequest(f"Form field '{key}' is neither text nor a file.", param=key)
        data = value.file.read()
        upload = {
            "filename": value.filename,
            "content_type": value.content_type,
            "size": len(data),
            "head": data[:16].hex(),
        }
        if key in out:  # a repeated file field (OpenAI's `image[]`) becomes a list
            out[key] = [*(out[key] if isinstance(out[key], list) else [out[key]]), upload]
        else:
            out[key] = upload
    reference = {
        name: out.pop(f"input_reference[{name}]")
        for name in ("image_url", "file_id")
        if f"input_reference[{name}]" in out
    }
    if reference:
        out["input_reference"] = reference
    return out


def _input_reference(body: dict) -> None:
    """Accept an uploaded image/video, or {image_url} / {file_id}, as OpenAI does; else a 400."""
    ref = body.get("input_reference")
    if ref is None:
        return None
    if isinstance(ref, dict) and "size" in ref:
        if ref.get("content_type") not in REFERENCE_TYPES or not ref["size"]:
            raise BadRequest(
                f"Invalid 'input_reference': expected one of {', '.join(REFERENCE_TYPES)}, "
                f"got {ref.get('content_type')!r}.",
                param="input_reference",
            )
        return
    if isinstance(ref, dict) and (
        isinstance(ref.get("image_url"), str) or isinstance(ref.get("file_id"), str)
    ):
        return
    raise BadRequest(
        "Invalid 'input_reference': expected a file upload, or an object with 'image_url' or 'file_id'.",
        param="input_reference",
    )


def job_for(call: Call, video_id: str) -> Job:
    job = call.sim.videos.get(video_id)
    if job is None or job.upstream != call.upstream:
        raise BadRequest(
            f"Video with id '{video_id}' not found.", param="video_id", status=404, code="video_not_found"
        )
    return job


async def create(call: Call) -> web.Response:
    body = call.body
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("'prompt' must be a non-empty string.", param="prompt")
    seconds = str(body.get("seconds") or "4")
    if not seconds.isdigit() or not 0 < int(seconds) <= 60:
        raise BadRequest(
            "Invalid 'seconds': expected a whole number of seconds between 1 and 60.", param="seconds"
        )
    size = str(body.get("size") or "720x1280")
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise BadRequest("Invalid 'size': expected WIDTHxHEIGHT, e.g. 720x1280.", param="size")
    _input_reference(body)
    job = _start(call, model=call.model or "sora-2", prompt=prompt, seconds=seconds, size=size)
    return call.json(job.state(), headers=openai_api.headers())


def _start(call: Call, *, model: str, prompt: str, seconds: str, size: str) -> Job:
    job = Job(
        id=new_id("video_", 32),
        upstream=call.upstream,
        model=model,
        prompt=prompt,
        seconds=seconds,
        size=size,
        created_at=int(time.time()),
        started=time.monotonic(),
        duration_s=call.rule.video_ms / 1000,
        fail=call.rule.error == "video_failed",
    )
    call.sim.videos[job.id] = job
    return job


async def remix(call: Call, video_id: str) -> web.Response:
    """A new job from a completed one and a new prompt, with the source's model, length and size."""
    source = job_for(call, video_id)
    prompt = call.body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("'prompt' must be a non-empty string.", param="prompt")
    if source.state()["status"] != "completed":
        raise BadRequest(
            f"Video '{video_id}' must be completed before it can be remixed.",
            param="video_id",
            code="video_not_ready",
        )
    job = _start(call, model=source.model, prompt=prompt, seconds=source.seconds, size=source.size)
    job.remixed_from = source.id
    return call.json(job.state(), headers=openai_api.headers())


async def list_videos(call: Call) -> web.Response:
    """This upstream's jobs, newest first unless `order=asc`, after the `after` id, `limit` at most."""
    query = call.request.query
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIST:
        raise BadRequest(f"Invalid 'limit': expected 1 to {MAX_LIST}.", param="limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise BadRequest("Invalid 'order': expected 'asc' or 'desc'.", param="order")
    jobs = [job for job in call.sim.videos.values() if job.upstream == call.upstream]
    if order == "desc":
        jobs.reverse()
    after = query.get("after")
    if after:
        ids = [job.id for job in jobs]
        if after not in ids:
            raise BadRequest(f"Video with id '{after}' not found.", param="after", status=404)
        jobs = jobs[ids.index(after) + 1 :]
    page = [job.state() for job in jobs[:limit]]
    payload = {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(jobs) > limit,
    }
    return call.json(payload, headers=openai_api.headers())


async def delete(call: Call, video_id: str) -> web.Response:
    job_for(call, video_id)
    del call.sim.videos[video_id]
    return call.json(
        {"id": video_id, "object": "video.deleted", "deleted": True}, headers=openai_api.headers()
    )


async def retrieve(call: Call, video_id: str) -> web.Response:
    return call.json(job_for(call, video_id).state(), headers=openai_api.headers())


async def content(call: Call, video_id: str) -> web.Response:
    variant = call.request.query.get("variant", "video")
    if variant not in VARIANTS:
        raise BadRequest(f"Invalid 'variant': expected one of {', '.join(VARIANTS)}.", param="variant")
    state = job_for(call, video_id).state()
    if state["status"] != "completed":
        raise BadRequest(
            f"Video '{video_id}' is {state['status']}; content is available once it is completed.",
            param="video_id",
            code="video_not_ready",
        )
    call.status = "200"
    body = MP4 if variant == "video" else PNG
    return web.Response(body=body, content_type=VARIANTS[variant], headers=openai_api.headers())
