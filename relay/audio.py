"""OpenAI audio endpoints: text to speech (JSON in, audio bytes out) and transcriptions (multipart)."""

from __future__ import annotations

import aiohttp
from django.http import HttpResponse

from billing.pricing import Usage

from . import multipart
from .convert.transcripts import TEXT_FORMATS, render_transcript
from .endpoints import _relay_openai_json
from .errors import RelayError
from .flow import Call
from .multipart import Upload
from .upstream import headers_for

TRANSCRIPTION_FORMATS = ("json", "verbose_json", *TEXT_FORMATS)


def _per_call(data):
    return Usage(calls=1), False


def _text_field(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise RelayError("invalid_request", f"'{name}' must be a non-empty string.", param=name)
    return value


async def read_audio(response: aiohttp.ClientResponse):
    """Non-stream accept for speech: the audio bytes and their type, or the upstream's error."""
    raw = await response.read()
    if response.status >= 400:
        return ("error", response.status, raw)
    return ("ok", response.status, {"audio": raw, "content_type": response.headers.get("Content-Type")})


def _render_audio(data: dict) -> HttpResponse:
    return HttpResponse(data["audio"], content_type=data["content_type"] or "audio/mpeg")


async def handle_speech(request, call: Call, body: dict):
    """POST /v1/audio/speech: `input` read aloud in `voice`; the audio passes through, billed per call."""
    _text_field(body, "input")
    _text_field(body, "voice")
    return await _relay_openai_json(
        call,
        body,
        path="/audio/speech",
        family="embeddings",
        usage_of=_per_call,
        render=_render_audio,
        accept=read_audio,
        max_tokens=None,
    )


async def handle_transcription(request, call: Call, form: dict):
    """POST /v1/audio/transcriptions (multipart `file`, `model`) → {"text": …}, billed per call.

    `text`, `srt` and `vtt` are rendered from the upstream's `verbose_json` (timed segments)."""
    upload = form.get("file")
    if not isinstance(upload, Upload) or not upload.data:
        raise RelayError("invalid_request", "'file' must be a non-empty file upload.", param="file")
    response_format = form.get("response_format") or "json"
    if response_format not in TRANSCRIPTION_FORMATS:
        raise RelayError(
            "invalid_request",
            f"'response_format' must be one of {', '.join(TRANSCRIPTION_FORMATS)} on this gateway.",
            param="response_format",
        )
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    render = None
    if response_format in TEXT_FORMATS:
        fields["response_format"] = "verbose_json"

        def render(data: dict) -> HttpResponse:
            return HttpResponse(
                render_transcript(data, response_format), content_type="text/plain; charset=utf-8"
            )

    def build(step, channel):
        raw, content_type = multipart.encode(
            dict(fields, model=channel.upstream_model(fields["model"].strip())), {"file": upload}
        )
        headers = dict(headers_for(channel, json_body=False), **{"Content-Type": content_type})
        return "/audio/transcriptions", raw, headers

    return await _relay_openai_json(
        call,
        form,
        path="/audio/transcriptions",
        family="embeddings",
        usage_of=_per_call,
        build=build,
        render=render,
        max_tokens=None,
    )
