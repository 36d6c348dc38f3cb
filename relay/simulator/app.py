"""The aiohttp application: named upstreams under /u/<name>/v1/... (OpenAI, Anthropic) and
/u/<name>/v1beta/... (Gemini), control endpoints under /_sim/.

Independent of Django on purpose: it is the upstream in benchmarks and must stay cheap per request.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import orjson
from aiohttp import web

from . import anthropic_api, gemini_api, openai_api, video_api
from .call import BadRequest, Call, StreamCut, StreamFailed
from .config import Behaviour, PromptCache, Stats, parse_rule

log = logging.getLogger(__name__)


class Simulator:
    """All mutable state of one simulator instance."""

    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.stats = Stats()
        self.cache = PromptCache()
        self.videos: dict[str, video_api.Job] = {}
        self.journal: dict[str, deque[dict]] = {}

    def reset(self) -> None:
        self.behaviour.clear()
        self.stats.clear()
        self.cache.clear()
        self.videos.clear()
        self.journal.clear()

    def record(self, call: Call) -> None:
        """Keep what the upstream received (auth redacted) so tests can check what a relay forwarded."""
        request = call.request
        headers = {
            k.lower(): "<redacted>" if k.lower() in _SECRET_HEADERS else v for k, v in request.headers.items()
        }
        journal = self.journal.get(call.upstream)
        if journal is None:
            journal = self.journal[call.upstream] = deque(maxlen=JOURNAL_SIZE)
        journal.append(
            {
                "method": request.method,
                "path": request.path,
                "query": {k: "<redacted>" if k == "key" else v for k, v in request.query.items()},
                "headers": headers,
                "body": call.body,
                "status": call.status,
            }
        )


JOURNAL_SIZE = 100
_SECRET_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")
SIM = web.AppKey("simulator", Simulator)
FORMATS = {"openai": openai_api, "anthropic": anthropic_api, "gemini": gemini_api}

# (method, path) -> (format, handler, body kind); "auto" format is decided by the auth headers.
ROUTES = {
    ("POST", "chat/completions"): ("openai", openai_api.chat_completions, "json"),
    ("POST", "embeddings"): ("openai", openai_api.embeddings, "json"),
    ("POST", "images/generations"): ("openai", openai_api.images_generations, "json"),
    ("POST", "images/edits"): ("openai", openai_api.images_edits, "form"),
    ("POST", "rerank"): ("openai", openai_api.rerank, "json"),
    ("POST", "completions"): ("openai", openai_api.completions, "json"),
    ("POST", "audio/speech"): ("openai", openai_api.audio_speech, "json"),
    ("POST", "audio/transcriptions"): ("openai", openai_api.audio_transcriptions, "form"),
    ("GET", "models"): ("auto", None, None),
    ("POST", "messages"): ("anthropic", anthropic_api.messages, "json"),
    ("POST", "messages/count_tokens"): ("anthropic", anthropic_api.count_tokens_endpoint, "json"),
    ("POST", "videos"): ("openai", video_api.create, "form"),
    ("GET", "videos"): ("openai", video_api.list_videos, None),
}


def _route(method: str, path: str, headers) -> tuple[str, object, str | None, tuple]:
    """Format, handler, body kind and extra handler arguments; handler None means unknown path."""
    found = ROUTES.get((method, path))
    if found:
        fmt, handler, kind = found
        if fmt == "auto":
            anthropic = "anthropic-version" in headers or (
                "x-api-key" in headers and "authorization" not in headers
            )
            fmt = "anthropic" if anthropic else "openai"
            handler = anthropic_api.models if anthropic else openai_api.models
        return fmt, handler, kind, ()
    parts = path.split("/")
    if parts[0] == "videos" and len(parts) in (2, 3) and parts[1]:
        video = {
            ("GET", 2): (video_api.retrieve, None),
            ("DELETE", 2): (video_api.delete, None),
            ("GET", "content"): (video_api.content, None),
            ("POST", "remix"): (video_api.remix, "json"),
        }.get((method, len(parts) if len(parts) == 2 else parts[2]))
        if video:
            return "openai", video[0], video[1], (parts[1],)
    return ("anthropic" if parts[0] == "messages" else "openai"), None, None, ()


def _key(fmt: str, headers, query=None) -> str | None:
    """OpenAI takes `Authorization: Bearer`; Anthropic `x-api-key` (or Bearer, as its SDK now sends);
    Gemini `x-goog-api-key` or `?key=`."""
    if fmt == "gemini":
        return headers.get("x-goog-api-key") or (query or {}).get("key")
    if fmt == "anthropic" and "x-api-key" in headers:
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    scheme, _, key = auth.partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


async def _body(call: Call, kind: str | None) -> dict:
    request = call.request
    if kind is None:
        return {}
    if kind == "form" and request.content_type in (
        "multipart/form-data",
        "application/x-www-form-urlencoded",
    ):
        return await video_api.read_form(request)
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


async def upstream_view(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    upstream = request.match_info["upstream"]
    path = request.match_info["path"].strip("/")
    if request.method == "GET" and path.startswith("files/"):
        return web.Response(body=openai_api.PNG, content_type="image/png")
    fmt, handler, kind, args = _route(request.method, path, request.headers)
    return await _dispatch(request, sim, upstream, fmt, handler, kind, args)


def _gemini_route(method: str, path: str) -> tuple[object, str | None, tuple]:
    """`models/{model}:{action}` (POST) and `models` (GET); handler None means unknown path."""
    if method == "GET" and path == "models":
        return gemini_api.models, None, ()
    name, _, action = path.partition(":")
    if method == "POST" and name.startswith("models/") and action in gemini_api.ACTIONS:
        return gemini_api.ACTIONS[action], "json", (name.removeprefix("models/"),)
    return None, None, ()


async def gemini_view(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM]
    handler, kind, args = _gemini_route(request.method, request.match_info["path"].strip("/"))
    return await _dispatch(request, sim, request.match_info["upstream"], "gemini", handler, kind, args)


async def _dispatch(request, sim, upstream: str, fmt: str, handler, kind, args) -> web.StreamResponse:
    api = FORMATS[fmt]
    call = Call(request, sim, upstream, fmt)
    stats = sim.stats.get(upstream)
    stats.requests += 1
    try:
        return await _serve(call, api, handler, kind, args, stats)
    except StreamCut:
        call.status = "cut"
        call.drop_connection(flush=True)
        assert call.response is not None  # both faults are raised only once a response is started
        return call.response
    except StreamFailed:
        call.status = "stream_error"
        assert call.response is not None
        return call.response
    except ConnectionResetError:
        call.status = "499"
        return call.response or web.Response(status=499)
    finally:
        stats.status[call.status] = stats.status.get(call.status, 0) + 1
        sim.record(call)


async def _serve(call: Call, api, handler, kind, args, stats) -> web.StreamResponse:
    if handler is None:
        return api.not_found(call)
    headers = call.request.headers
    key = _key(call.fmt, headers, call.request.query)
    if key != f"sim-{call.upstream}-key":
        return api.auth_error(call, key)
    try:
        if call.fmt == "anthropic" and not headers.get("anthropic-version"):
            raise BadRequest("anthropic-version: header is required")
        call.body = await _body(call, kind)
    except BadRequest as exc:
        return api.bad_request(call, exc)
    model = args[0] if call.fmt == "gemini" and args else call.body.get("model")
    if call.fmt != "gemini" and args and (job := call.sim.videos.get(args[0])) is not None:
        model = job.model
    call.model = model = model if isinstance(model, str) else ""
    if model:
        stats.models[model] = stats.models.get(model, 0) + 1
    rule = call.rule = call.sim.behaviour.match(call.upstream, model)
    model_scoped = rule.model != "*"
    current = stats.model_in_flight.get(model, 0) if model_scoped else stats.in_flight
    if rule.max_concurrency is not None and current >= rule.max_concurrency:
        return api.rate_limit_error(call, {"Retry-After": str(rule.retry_after_s or 1)}, concurrency=True)
    stats.in_flight += 1
    stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
    stats.model_in_flight[model] = stats.model_in_flight.get(model, 0) + 1
    try:
        if rule.latency_ms:
            await asyncio.sleep(rule.latency_ms / 1000)
        error = rule.error
        if error == "429":
            retry = {"Retry-After": str(rule.retry_after_s)} if rule.retry_after_s is not None else {}
            return api.rate_limit_error(call, retry, concurrency=False)
        if error in ("500", "503", "529"):
            return api.server_error(call, error)
        if error == "401":
            return api.auth_error(call, key)
        if error == "reset":
            call.status = "reset"
            call.drop_connection(flush=False)
            return web.Response(status=500)
        try:
            resp = await handler(call, *args)
        except BadRequest as exc:
            return api.bad_request(call, exc)
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
            if call.response is not None:
                raise
            # A body of the wrong shape deep inside (e.g. a string where an object belongs).
            log.debug("malformed request body", exc_info=True)
            return api.bad_request(call, BadRequest(f"Invalid request body: {type(exc).__name__}: {exc}"))
        if error == "cut_stream" and not resp.prepared:
            await _cut_body(call, resp)
        return resp
    finally:
        stats.in_flight -= 1
        stats.model_in_flight[model] -= 1


async def _cut_body(call: Call, resp: web.Response) -> None:
    """`cut_stream` on a non-stream call: announce the whole body, send half of it, hang up."""
    body = resp.body
    assert isinstance(body, bytes)  # handlers answer with a serialised JSON body
    out = web.StreamResponse(status=resp.status, headers=resp.headers)
    out.content_length = len(body)
    call.response = out
    await out.prepare(call.request)
    await out.write(body[: len(body) // 2])
    raise StreamCut


def _json(payload: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


async def config_get(request: web.Request) -> web.Response:
    return _json({"rules": request.app[SIM].behaviour.as_list()})


async def config_post(request: web.Request) -> web.Response:
    try:
        rule = parse_rule(orjson.loads(await request.read()))
    except orjson.JSONDecodeError:
        return _json({"error": "body must be JSON"}, 400)
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)
    behaviour = request.app[SIM].behaviour
    behaviour.set(rule)
    return _json({"rule": rule.as_dict(), "rules": behaviour.as_list()})


async def reset(request: web.Request) -> web.Response:
    request.app[SIM].reset()
    return _json({"ok": True})


async def stats(request: web.Request) -> web.Response:
    return _json(request.app[SIM].stats.as_dict())


async def journal(request: web.Request) -> web.Response:
    """Requests an upstream received, oldest first (`?upstream=<name>`; all upstreams without it)."""
    journals = request.app[SIM].journal
    name = request.query.get("upstream")
    if name is not None:
        return _json({"requests": list(journals.get(name, ()))})
    return _json({"requests": {n: list(j) for n, j in journals.items()}})


async def health(request: web.Request) -> web.Response:
    return _json({"ok": True})


def build_app() -> web.Application:
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app[SIM] = Simulator()
    app.router.add_get("/_sim/config", config_get)
    app.router.add_post("/_sim/config", config_post)
    app.router.add_post("/_sim/reset", reset)
    app.router.add_get("/_sim/stats", stats)
    app.router.add_get("/_sim/requests", journal)
    app.router.add_get("/_sim/health", health)
    app.router.add_route("*", "/u/{upstream}/v1/{path:.*}", upstream_view)
    app.router.add_route("*", "/u/{upstream}/v1beta/{path:.*}", gemini_view)
    return app
