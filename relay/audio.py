"""OpenAI audio endpoints: text to speech (JSON in, audio bytes out) and transcriptions (multipart)."""

from __future__ import annotations

import aiohttp
from django.http import HttpResponse

from core.pricing import Usage

from . import multipart
from .convert.transcripts import TEXT_FORMATS, render_transcript
from .endpoints import OpenAISpec
from .errors import RelayError
from .flow import Call, UpstreamRequest
from .multipart import Upload
from .pipeline import Metered, run
from .upstream import headers_for

TRANSCRIPTION_FORMATS = ("json", "verbose_json", *TEXT_FORMATS)


def _text_field(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise RelayError("invalid_request", f"'{name}' must be a non-empty string.", param=name)
    return value


async def read_audio(response: aiohttp.ClientResponse) -> dict:
    """Non-stream accept for speech: the audio bytes and their type."""
    return {"audio": await response.read(), "content_type": response.headers.get("Content-Type")}


def _render_audio(data: dict) -> HttpResponse:
    return HttpResponse(data["audio"], content_type=data["content_type"] or "audio/mpeg")


class SpeechSpec(OpenAISpec):
    """POST /v1/audio/speech: `input` read aloud in `voice`; the audio passes through, billed per call."""

    family = "embeddings"
    path = "/audio/speech"

    def parse(self, call: Call) -> None:
        _text_field(self.body, "input")
        _text_field(self.body, "voice")
        super().parse(call)

    accept = staticmethod(read_audio)

    def respond(self, served):
        return _render_audio(served.result)

    def usage(self, served, reply) -> Metered:
        return Metered(Usage(calls=1))

    async def deliver(self, served, reply) -> HttpResponse:
        return reply


async def handle_speech(request, call: Call, body: dict):
    return await run(call, SpeechSpec(body))


class TranscriptionSpec(OpenAISpec):
    """POST /v1/audio/transcriptions (multipart `file`, `model`) → {"text": …}, billed per call.

    `text`, `srt` and `vtt` are rendered from the upstream's `verbose_json` (timed segments)."""

    family = "embeddings"
    path = "/audio/transcriptions"

    def parse(self, call: Call) -> None:
        form = self.body
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
        self.upload = upload
        self.fields = {k: v for k, v in form.items() if isinstance(v, str)}
        self.text_format = response_format if response_format in TEXT_FORMATS else None
        if self.text_format:
            self.fields["response_format"] = "verbose_json"
        super().parse(call)

    def build(self, step, channel) -> UpstreamRequest:
        fields = dict(self.fields, model=channel.upstream_model(self.fields["model"].strip()))
        raw, content_type = multipart.encode(fields, {"file": self.upload})
        headers = dict(headers_for(channel, json_body=False), **{"Content-Type": content_type})
        return UpstreamRequest(self.path, raw, headers)

    def usage(self, served, reply) -> Metered:
        return Metered(Usage(calls=1))

    async def deliver(self, served, reply) -> HttpResponse:
        if self.text_format is None:
            return await super().deliver(served, reply)
        return HttpResponse(
            render_transcript(reply, self.text_format), content_type="text/plain; charset=utf-8"
        )


async def handle_transcription(request, call: Call, form: dict):
    return await run(call, TranscriptionSpec(form))
