"""Python load generator, run in its own process so it never shares a CPU budget with a target.

Modes (each prints one JSON line on stdout):
- `closed`: N keep-alive connections send the same POST back to back for D seconds; latency
  percentiles and errors (the stand-in for wrk where wrk is not installed). With `--auth`
  given several times, connection i sends the i-th Authorization value (round robin).
- `ttfb`: N sequential streaming requests; time to the first body byte and to the end.
- `streams`: N concurrent streaming requests held open at once; how many completed with a
  `[DONE]` and the expected number of content chunks, and the peak number open together.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import aiohttp
import orjson


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary_ms(values: list[float], prefix: str = "") -> dict:
    if not values:
        return {f"{prefix}{pct}_ms": None for pct in ("p50", "p90", "p99", "max")}
    return {
        f"{prefix}p50_ms": round(percentile(values, 50) * 1000, 3),
        f"{prefix}p90_ms": round(percentile(values, 90) * 1000, 3),
        f"{prefix}p99_ms": round(percentile(values, 99) * 1000, 3),
        f"{prefix}max_ms": round(max(values) * 1000, 3),
    }


def _session(connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=0, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120))


async def closed_loop(
    url: str, body: bytes, headers: dict, connections: int, seconds: float, auths: list[str]
) -> dict:
    latencies: list[float] = []
    errors = {"status": 0, "other": 0}
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession, number: int) -> None:
        sent = {**headers, "Authorization": auths[number % len(auths)]} if auths else headers
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=sent) as response:
                    await response.read()
                    if response.status != 200:
                        errors["status"] += 1
                        continue
            except (aiohttp.ClientError, TimeoutError):
                errors["other"] += 1
                continue
            latencies.append(time.perf_counter() - started)

    async with _session(connections) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session, n) for n in range(connections)))
        elapsed = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "status_errors": errors["status"],
        "other_errors": errors["other"],
        **summary_ms(latencies),
    }


async def read_stream(response: aiohttp.ClientResponse, started: float) -> tuple[float, int, bool]:
    """(seconds to the first body byte, content chunks seen, saw [DONE])."""
    first = None
    chunks = 0
    done = False
    buffer = b""
    async for data in response.content.iter_any():
        if first is None:
            first = time.perf_counter() - started
        buffer += data
        *events, buffer = buffer.split(b"\n\n")
        for event in events:
            if event == b"data: [DONE]":
                done = True
            elif b'"content"' in event:
                chunks += 1
    return (first if first is not None else time.perf_counter() - started), chunks, done


async def ttfb(url: str, body: bytes, headers: dict, count: int) -> dict:
    firsts: list[float] = []
    totals: list[float] = []
    errors = 0
    async with _session(1) as session:
        for _ in range(count):
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    if response.status != 200:
                        await response.read()
                        errors += 1
                        continue
                    first, _, done = await read_stream(response, started)
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
                continue
            if not done:
                errors += 1
                continue
            firsts.append(first)
            totals.append(time.perf_counter() - started)
    return {
        "requests": len(firsts),
        "errors": errors,
        **summary_ms(firsts, "ttfb_"),
        **summary_ms(totals, "total_"),
    }


async def streams(url: str, body: bytes, headers: dict, count: int, expect_chunks: int) -> dict:
    state = {"open": 0, "max_open": 0, "ok": 0, "errors": 0, "short": 0}
    error_kinds: dict[str, int] = {}
    durations: list[float] = []

    async def one(session: aiohttp.ClientSession) -> None:
        started = time.perf_counter()
        opened = False
        try:
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    await response.read()
                    error_kinds[str(response.status)] = error_kinds.get(str(response.status), 0) + 1
                    state["errors"] += 1
                    return
                opened = True
                state["open"] += 1
                state["max_open"] = max(state["max_open"], state["open"])
                _, chunks, done = await read_stream(response, started)
        except (aiohttp.ClientError, TimeoutError) as exc:
            error_kinds[type(exc).__name__] = error_kinds.get(type(exc).__name__, 0) + 1
            state["errors"] += 1
            return
        finally:
            if opened:
                state["open"] -= 1
        if done and chunks >= expect_chunks:
            state["ok"] += 1
            durations.append(time.perf_counter() - started)
        else:
            state["short"] += 1

    async with _session(0) as session:
        await asyncio.gather(*(one(session) for _ in range(count)))
    return {
        "streams": count,
        "ok": state["ok"],
        "errors": state["errors"] + state["short"],
        "error_kinds": error_kinds,
        "incomplete": state["short"],
        "max_concurrent": state["max_open"],
        **summary_ms(durations, "duration_"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["closed", "ttfb", "streams"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="JSON request body")
    parser.add_argument("--header", action="append", default=[], help="Name: value")
    parser.add_argument("--auth", action="append", default=[], help="Authorization, per connection")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--expect-chunks", type=int, default=1)
    args = parser.parse_args()
    headers = {"Content-Type": "application/json"}
    for item in args.header:
        name, _, value = item.partition(":")
        headers[name.strip()] = value.strip()
    body = args.body.encode()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if args.mode == "closed":
        result = asyncio.run(closed_loop(args.url, body, headers, args.connections, args.seconds, args.auth))
    elif args.mode == "ttfb":
        result = asyncio.run(ttfb(args.url, body, headers, args.count))
    else:
        result = asyncio.run(streams(args.url, body, headers, args.count, args.expect_chunks))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
