"""Multipart bodies for upstreams: files the client uploaded go on intact, built once per call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings

from .errors import RelayError


@dataclass(frozen=True)
class Upload:
    """One file from the client's multipart request, read into memory."""

    filename: str
    content_type: str
    data: bytes


def upload_of(field: str, uploaded) -> Upload:
    """An uploaded file as an `Upload`, refused with a 413 past the relay's body limit."""
    if uploaded.size > settings.RELAY_MAX_BODY_BYTES:
        raise RelayError(
            "too_large", f"'{field}' is larger than {settings.RELAY_MAX_BODY_BYTES} bytes.", param=field
        )
    return Upload(
        filename=uploaded.name or field,
        content_type=uploaded.content_type or "application/octet-stream",
        data=uploaded.read(),
    )


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")


def encode(fields: dict[str, str], files: dict[str, Upload | list[Upload]]) -> tuple[bytes, str]:
    """(body, Content-Type) of a multipart/form-data request with these fields and files;
    a list of uploads repeats its field, as OpenAI's `image[]` does."""
    boundary = f"apiyi-{uuid.uuid4().hex}"
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'.encode()
            + str(value).encode()
            + b"\r\n"
        )
    pairs = [(n, u) for n, value in files.items() for u in (value if isinstance(value, list) else [value])]
    for name, upload in pairs:
        head = (
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{_quoted(name)}"; filename="{_quoted(upload.filename)}"\r\n'
            f"Content-Type: {upload.content_type}\r\n\r\n"
        )
        parts.append(head.encode() + upload.data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def read_form(request) -> dict:
    """A multipart or urlencoded request's fields (strings) and files (`Upload`s; a list when a
    field is repeated, like `image[]`)."""
    try:
        fields = {k: v for k, v in request.POST.items()}
        files = {}
        for k, values in request.FILES.lists():
            uploads = [upload_of(k, v) for v in values]
            files[k] = uploads[0] if len(uploads) == 1 else uploads
    except RelayError:
        raise
    except Exception:
        raise RelayError("invalid_request", "Could not read the form body.") from None
    return {**fields, **files}
