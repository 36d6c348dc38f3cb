"""A lean ASGI path for views that need none of the console's machinery (the relay's /v1 calls).

Django's `ASGIHandler` costs a relay call more than the relay's own work: a new thread per
request (`ThreadSensitiveContext`), `request_started`/`request_finished` signals, and a
middleware stack whose sync-only parts (WhiteNoise, every `MiddlewareMixin`) push the call
through thread hops. Views marked with `lean` are served here instead:

- the request is built and resolved as Django would, and the view awaited directly;
- a client that disconnects cancels the running view (the relay settles on CancelledError);
- streaming responses are sent part by part as the view yields them;
- the body is read up to the view's size limit only (`RELAY_MAX_BODY_BYTES`): anything
  beyond is not stored, and the view answers 413 from what it got;
- the security headers the full stack would add (SecurityMiddleware, X-Frame-Options,
  CSP, Permissions-Policy) and the ALLOWED_HOSTS check are applied in place, without threads;
- database units (`core.db.db_async`) run on a shared thread pool and give their
  connection back when done, so no connection outlives its unit (no `request_finished`).

Everything else (console, /api, admin, health) goes to Django's own handler unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.core.handlers.exception import response_for_exception
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import Resolver404, resolve

from core.db import pool_db_units

logger = logging.getLogger("django.request")


def lean(view):
    """Mark an async view to be served by `LeanASGIHandler` (no middleware, no thread)."""
    view.lean_asgi = True
    return view


def _unused_get_response(request):  # the middleware below are only used for their hooks
    raise AssertionError("not called")


class LeanASGIHandler:
    """Route lean views past Django's handler; everything else to `fallback`."""

    # Django's own encoding of a response into ASGI messages (streaming or not).
    send_response = ASGIHandler.send_response
    chunk_bytes = ASGIHandler.chunk_bytes

    def __init__(self, fallback, *, on_shutdown=()):
        self.fallback = fallback
        self.on_shutdown = tuple(on_shutdown)
        self.security = SecurityMiddleware(_unused_get_response)
        self.xframe = XFrameOptionsMiddleware(_unused_get_response)
        self.csp = _csp_headers()
        self.permissions_policy = getattr(settings, "PERMISSIONS_POLICY", "")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        match = self._match(scope) if scope["type"] == "http" else None
        if match is None:
            await self.fallback(scope, receive, send)
            return
        body = await _read_body(receive, settings.RELAY_MAX_BODY_BYTES)
        if body is None:
            return  # the client left before its body arrived: nothing was started
        request = ASGIRequest(scope, io.BytesIO(body))
        request.resolver_match = match
        pool_db_units()
        respond = asyncio.ensure_future(self._respond(request, match, send))
        watch = asyncio.ensure_future(_disconnect(receive))
        try:
            await asyncio.wait((respond, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            # A disconnect cancels the view: the relay settles what it had started.
            for task in (watch, respond):
                if not task.done():
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await respond

    async def _lifespan(self, receive, send) -> None:
        """ASGI lifespan (Django's handler has none): at shutdown, run `on_shutdown` so pooled
        upstream sessions close cleanly instead of being torn down with the loop."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self.on_shutdown:
                    try:
                        await hook()
                    except Exception:
                        logger.exception("shutdown hook %s failed", getattr(hook, "__name__", hook))
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    def _match(scope):
        path = scope["path"]
        prefix = get_script_prefix(scope)
        if prefix:
            path = path.removeprefix(prefix)
        try:
            match = resolve(path)
        except Resolver404:
            return None
        return match if getattr(match.func, "lean_asgi", False) else None

    async def _respond(self, request, match, send) -> None:
        try:
            response = self._host_check(request) or self.security.process_request(request)
            if response is None:
                response = await match.func(request, *match.args, **match.kwargs)
        except Exception as exc:  # what the view did not turn into its own error format
            response = await sync_to_async(response_for_exception, thread_sensitive=False)(request, exc)
        self._secure(request, response)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        try:
            # borrowed from ASGIHandler (see the class): its version uses only chunk_bytes of self
            await self.send_response(response, send)  # type: ignore[misc]
        finally:
            if response.streaming:
                # Runs the response's closers (the relay settles a stream never iterated).
                await sync_to_async(response.close, thread_sensitive=False)()

    @staticmethod
    def _host_check(request) -> HttpResponse | None:
        try:
            request.get_host()
        except DisallowedHost as exc:
            logger.warning("%s", exc)
            return HttpResponse("Bad Request (400)", status=400, content_type="text/plain")
        return None

    def _secure(self, request, response) -> None:
        self.security.process_response(request, response)
        self.xframe.process_response(request, response)
        for name, value in self.csp:
            response.headers.setdefault(name, value)
        if self.permissions_policy:
            response.headers.setdefault("Permissions-Policy", self.permissions_policy)


def _csp_headers() -> list[tuple[str, str]]:
    """django-csp's headers for a response that uses no nonce: the same on every relay call."""
    if "csp.middleware.CSPMiddleware" not in settings.MIDDLEWARE:
        return []
    from csp.constants import HEADER, HEADER_REPORT_ONLY
    from csp.utils import build_policy

    headers = [(HEADER, build_policy()), (HEADER_REPORT_ONLY, build_policy(report_only=True))]
    return [(name, value) for name, value in headers if value]


async def _read_body(receive, limit: int) -> bytes | None:
    """The request body, or None if the client disconnected first.

    Stops storing (and reading) once past `limit`: the view sees more than `limit` bytes and
    refuses with 413; the ASGI server discards the rest.
    """
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk:
            chunks.append(chunk)
            size += len(chunk)
        if not message.get("more_body", False) or size > limit:
            return b"".join(chunks)


async def _disconnect(receive) -> None:
    """Return when the client disconnects (body bytes past the limit are drained meanwhile)."""
    while (await receive())["type"] != "http.disconnect":
        pass
