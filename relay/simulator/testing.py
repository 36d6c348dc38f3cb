"""Run the simulator in a background thread with its own event loop (tests, benchmarks)."""

from __future__ import annotations

import asyncio
import threading
import urllib.parse
import urllib.request

import orjson
from aiohttp import web

from .app import build_app


class RunningSimulator:
    """Handle on a simulator served from a thread; control calls go through its HTTP API."""

    def __init__(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop,
        runner: web.AppRunner,
        thread: threading.Thread,
    ):
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self._loop = loop
        self._runner = runner
        self._thread = thread

    def base_url(self, upstream: str) -> str:
        """What a channel's base URL for `upstream` is (the same as apiyi_admin.demo.sim_base_url)."""
        return f"{self.url}/u/{upstream}/v1"

    def _call(self, method: str, path: str, payload: object = None) -> dict:
        data = orjson.dumps(payload) if payload is not None else None
        headers = {"Content-Type": "application/json"}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - our own local server
                return orjson.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise ValueError(orjson.loads(exc.read()).get("error", str(exc))) from None

    def configure(self, **rule) -> dict:
        """Add or replace a rule, e.g. configure(upstream="claude-aws", error="429", retry_after_s=3)."""
        return self._call("POST", "/_sim/config", rule)["rule"]

    def rules(self) -> list[dict]:
        return self._call("GET", "/_sim/config")["rules"]

    def reset(self) -> None:
        self._call("POST", "/_sim/reset", {})

    def stats(self) -> dict:
        return self._call("GET", "/_sim/stats")

    def requests(self, upstream: str) -> list[dict]:
        """What `upstream` received, oldest first: method, path, query, headers (auth redacted),
        body and the status it answered."""
        return self._call("GET", "/_sim/requests?" + urllib.parse.urlencode({"upstream": upstream}))[
            "requests"
        ]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _shutdown(self) -> None:
        """Stop serving, then cancel what is still running (a slow answer whose client left), so
        no task is destroyed pending when the loop closes."""
        await self._runner.cleanup()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def pending_tasks(self) -> set[asyncio.Task]:
        return {task for task in asyncio.all_tasks(self._loop) if not task.done()}


def start_in_thread(port: int = 0, host: str = "127.0.0.1") -> RunningSimulator:
    """Start serving on `port` (0 picks a free one) and return once it accepts connections."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(build_app(), access_log=None, handle_signals=False)
    ready = threading.Event()
    bound: dict = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, host, port, shutdown_timeout=1.0, backlog=1024)
            loop.run_until_complete(site.start())
            bound["port"] = runner.addresses[0][1]
        except BaseException as exc:  # reported to the starting thread
            bound["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name=f"simulator:{port}", daemon=True)
    thread.start()
    ready.wait(timeout=30)
    if "port" not in bound:
        raise RuntimeError(f"simulator did not start: {bound.get('error')!r}")
    return RunningSimulator(host, bound["port"], loop, runner, thread)
