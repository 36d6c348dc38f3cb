"""OpenAI-style asynchronous video jobs: submit, poll (queued → in_progress → completed/failed), download."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from . import openai_api
from .call import BadRequest, Call
from .textgen import new_id

QUEUED_SHARE = 0.1
EXPIRES_S = 3600
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
            "remixed_from_video_id": None,
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
    """The SDK posts multipart/form-data; plain JSON is accepted too."""
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


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
    job = Job(
        id=new_id("video_", 32),
        upstream=call.upstream,
        model=call.model or "sora-2",
        prompt=prompt,
        seconds=seconds,
        size=size,
        created_at=int(time.time()),
        started=time.monotonic(),
        duration_s=call.rule.video_ms / 1000,
        fail=call.rule.error == "video_failed",
    )
    call.sim.videos[job.id] = job
    return call.json(job.state(), headers=openai_api.headers())


async def retrieve(call: Call, video_id: str) -> web.Response:
    return call.json(job_for(call, video_id).state(), headers=openai_api.headers())


async def content(call: Call, video_id: str) -> web.Response:
    state = job_for(call, video_id).state()
    if state["status"] != "completed":
        raise BadRequest(
            f"Video '{video_id}' is {state['status']}; content is available once it is completed.",
            param="video_id",
            code="video_not_ready",
        )
    call.status = "200"
    return web.Response(body=MP4, content_type="video/mp4", headers=openai_api.headers())
