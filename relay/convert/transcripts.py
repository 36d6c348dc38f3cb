"""Whisper transcriptions in OpenAI's text formats, built from a `verbose_json` answer.

The relay asks the upstream for `verbose_json` (text plus timed segments) whenever the client
wants `text`, `srt` or `vtt`, and renders that here, so every upstream that can time its
segments serves all five formats.
"""

from __future__ import annotations

from relay.convert.errors import ConversionError

TEXT_FORMATS = ("text", "srt", "vtt")
"""Answered as `text/plain; charset=utf-8`, like OpenAI."""


def _stamp(seconds: float, separator: str) -> str:
    millis = max(round(seconds * 1000), 0)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cues(verbose: dict) -> list[tuple[float, float, str]]:
    segments = verbose.get("segments")
    if isinstance(segments, list) and segments:
        cues = []
        for segment in segments:
            if not isinstance(segment, dict) or not isinstance(segment.get("text"), str):
                raise ConversionError("upstream transcription segments lack their text")
            start, end = segment.get("start"), segment.get("end")
            if not isinstance(start, int | float) or not isinstance(end, int | float):
                raise ConversionError("upstream transcription segments lack their times")
            cues.append((float(start), float(end), segment["text"].strip()))
        return cues
    duration = verbose.get("duration")
    # no segments (a short clip): one cue for the whole text
    return [(0.0, float(duration) if isinstance(duration, int | float) else 0.0, _text(verbose).strip())]


def _text(verbose: dict) -> str:
    text = verbose.get("text") if isinstance(verbose, dict) else None
    if not isinstance(text, str):
        raise ConversionError("upstream transcription has no text")
    return text


def render_transcript(verbose: dict, fmt: str) -> str:
    """A `verbose_json` transcription as `text`, `srt` or `vtt`, the way OpenAI writes them."""
    if fmt == "text":
        return _text(verbose) + "\n"
    cues = _cues(verbose)
    if fmt == "srt":
        blocks = [
            f"{i}\n{_stamp(start, ',')} --> {_stamp(end, ',')}\n{text}\n"
            for i, (start, end, text) in enumerate(cues, 1)
        ]
        return "\n".join(blocks)
    blocks = [f"{_stamp(start, '.')} --> {_stamp(end, '.')}\n{text}\n" for start, end, text in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)
