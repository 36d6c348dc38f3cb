"""`make soak`: mixed traffic against two relay processes, then prove nothing was lost.

Two uvicorn relays share one PostgreSQL database and one Redis; the simulated upstreams run in
this process. For SOAK_SECONDS the driver sends stream/non-stream, OpenAI/Anthropic calls,
with ~10% of time slices under an upstream fault, ~5% of calls dropped by their client mid-stream,
and saturation flipping on and off every 10 s (claude-official alone, or the whole Claude group).
Afterwards it prints the figures and exits non-zero on any gateway-made 5xx, any call without
exactly one settled usage record, any unreconciled wallet or outstanding hold, any traceback in a
relay's log, or memory that is not flat.

Memory is flat when, for each relay, the median RSS of the second half of the run exceeds the
median of the first half by at most SOAK_RSS_GROWTH_MB (sampled every 5 s after a warm-up):
medians ignore transient peaks, and a steady leak of 1.5 KB per call at ~55 calls/s would
add ~25 MB between the halves of a 10-minute run.

Settings (environment): SOAK_SECONDS (600), SOAK_DATABASE_URL (postgres://postgres@127.0.0.1:5432/soak,
dropped and recreated), SOAK_REDIS_URL (redis://127.0.0.1:6379/5, flushed; "" for local memory),
SOAK_CONCURRENCY (16), SOAK_RSS_GROWTH_MB (25), SOAK_SEED (1). Relay logs go to VAR_DIR
(/tmp/var-soak). The relays die with the driver (SIGTERM/SIGINT, or its death: PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ["reset", "500", "503", "429", "garbage", "cut_stream", "stream_error"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database(url: str) -> None:
    import psycopg

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"relay exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url + "/healthz", timeout=2)  # noqa: S310 - our own local relay
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.3)
    raise SystemExit(f"relay at {url} did not start")


async def chaos(sim, stop: asyncio.Event, rng: random.Random, log: collections.Counter) -> None:
    """Every 2 s: 10% of slices an upstream-wide fault. Every 10 s saturation flips: on, it caps
    claude-official (calls fail over to claude-aws) or, every fourth time, both Claude channels (the
    group is saturated: clients get 429 upstream_saturated)."""
    saturated: tuple[str, ...] = ()
    tick = 0
    while not stop.is_set():
        await asyncio.to_thread(sim.reset)
        if tick % 5 == 0:
            if saturated:
                saturated = ()
            else:
                whole_group = (tick // 5) % 8 == 6  # every fourth time on
                saturated = ("claude-official", "claude-aws") if whole_group else ("claude-official",)
                log["saturation_on:" + ("group" if whole_group else "claude-official")] += 1
        for upstream in saturated:
            await asyncio.to_thread(sim.configure, upstream=upstream, max_concurrency=2, latency_ms=200)
        if rng.random() < 0.10:
            fault = rng.choice(FAULTS)
            rule = {"upstream": "*", "error": fault}
            if fault == "429" and rng.random() < 0.5:
                rule["retry_after_s"] = 1
            await asyncio.to_thread(sim.configure, **rule)
            log[f"fault_slice:{fault}"] += 1
        tick += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=2)
    await asyncio.to_thread(sim.reset)


async def traffic(urls, key, seconds, concurrency, seed):
    from soak.traffic import fire

    results = []
    deadline = time.monotonic() + seconds
    batch = 0
    while time.monotonic() < deadline:
        results += await fire(
            url=urls,
            key=key,
            count=concurrency * 4,
            concurrency=concurrency,
            models=("claude-sonnet-4-5", "qwen3.5-max", "claude-sonnet-4-5"),
            disconnect_rate=0.125,  # of streams (half the calls, ~80% answered 200): ~5% of all calls
            timeout_s=120,
            seed=seed + batch,
            first=batch,
        )
        batch += 1
    return results


async def sample_rss(pids: list[int], stop: asyncio.Event, samples: list[list[tuple[float, float]]]) -> None:
    """Every 5 s, each relay's resident memory: (seconds since the start, MB)."""
    started = time.monotonic()
    while not stop.is_set():
        for pid, series in zip(pids, samples, strict=True):
            series.append((time.monotonic() - started, rss_mb(pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=5)


def rss_growth(series: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(median MB of the first half, of the second half, growth between them)."""
    if len(series) < 2:
        return 0.0, 0.0, 0.0
    middle = series[-1][0] / 2
    first = [mb for t, mb in series if t < middle] or [series[0][1]]
    second = [mb for t, mb in series if t >= middle]
    a, b = statistics.median(first), statistics.median(second)
    return a, b, b - a


def tracebacks(log: Path) -> list[str]:
    """The first line after each traceback in a relay log: unhandled exceptions."""
    lines = log.read_text(errors="replace").splitlines()
    return [
        next((x for x in lines[i + 1 :] if not x.startswith(" ")), "?")
        for i, line in enumerate(lines)
        if line.startswith("Traceback (most recent call last)")
    ]


def die_with_parent():
    """For Popen: the relay gets SIGTERM when the driver dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    return lambda: libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    seconds = int(os.environ.get("SOAK_SECONDS", "600"))
    concurrency = int(os.environ.get("SOAK_CONCURRENCY", "16"))
    growth_bound = float(os.environ.get("SOAK_RSS_GROWTH_MB", "25"))
    seed = int(os.environ.get("SOAK_SEED", "1"))
    database_url = os.environ.get("SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/soak")
    redis_url = os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/5")

    from relay.simulator.testing import start_in_thread

    sim = start_in_thread()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SIM_PORT": str(sim.port),
        "VAR_DIR": os.environ.get("VAR_DIR", "/tmp/var-soak"),  # noqa: S108 - the soak's own scratch
        "DJANGO_SETTINGS_MODULE": "apiyi_admin.settings",
        "RELAY_UPSTREAM_READ_TIMEOUT": "20",
    }
    os.environ.update(env)
    fresh_database(database_url)
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )

    import django

    django.setup()
    from accounts.services import user_create
    from apiyi_admin.demo import seed_demo
    from billing.services import wallet_recharge
    from groups.models import TokenGroup, UserGroup
    from soak.ledger import wait_for_ledger
    from soak.traffic import gateway_failures
    from tokens.services import token_create

    seed_demo()
    user = user_create(
        username="soaker", user_group=UserGroup.objects.get(name="default"), user_group_pinned=True
    )
    wallet_recharge(user=user, amount_micro=10_000 * 1_000_000, payment_ref="soak")
    _, key = token_create(user=user, name="soak", select_group=TokenGroup.objects.get(name="ClaudeCode"))

    relays = []
    logs = Path(env["VAR_DIR"])
    logs.mkdir(parents=True, exist_ok=True)
    log_files = [logs / f"soak-relay-{i + 1}.log" for i in range(2)]

    def stop_on_signal(signum, frame):
        raise SystemExit(f"soak: stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stop_on_signal)
    for log_file in log_files:
        port = free_port()
        cmd = [sys.executable, "-m", "uvicorn", "apiyi_admin.asgi:application", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--log-level", "warning", "--lifespan", "off", "--no-access-log"]
        log = log_file.open("w")
        proc = subprocess.Popen(  # noqa: S603 - fixed command
            cmd,
            cwd=ROOT,
            env=env,
            stderr=log,
            stdout=log,
            preexec_fn=die_with_parent(),
        )
        relays.append((f"http://127.0.0.1:{port}", proc))
    failed: list[str] = []
    try:
        for url, proc in relays:
            wait_ready(url, proc)
        urls = [url for url, _ in relays]
        from soak.traffic import fire

        asyncio.run(fire(url=urls, key=key, count=40, concurrency=8))  # warm-up, not counted
        rss_start = [rss_mb(proc.pid) for _, proc in relays]
        samples: list[list[tuple[float, float]]] = [[] for _ in relays]

        async def soak():
            stop = asyncio.Event()
            slices: collections.Counter = collections.Counter()
            chaos_task = asyncio.create_task(chaos(sim, stop, random.Random(seed), slices))
            rss_task = asyncio.create_task(sample_rss([proc.pid for _, proc in relays], stop, samples))
            try:
                return await traffic(urls, key, seconds, concurrency, seed), slices
            finally:
                stop.set()
                await chaos_task
                await rss_task

        started = time.monotonic()
        results, slices = asyncio.run(soak())
        elapsed = time.monotonic() - started
        rss_end = [rss_mb(proc.pid) for _, proc in relays]
        request_ids = {r.request_id for r in results if r.request_id}
        refused = sum(r.status == 503 for r in results)
        warmup = 40
        problems = wait_for_ledger(
            request_ids, calls=range(warmup + len(results) - refused, warmup + len(results) + 1), timeout=90
        )
    finally:
        for _, proc in relays:
            proc.terminate()
        for _, proc in relays:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)
        sim.stop()

    causes = collections.Counter(r.cause for r in results)
    answered = [r.elapsed_s * 1000 for r in results if r.status]
    ok_latency = [r.elapsed_s * 1000 for r in results if r.cause == "ok"]
    database = urlparse(database_url).path[1:]
    kinds = dict(collections.Counter(r.kind for r in results))
    print(f"soak: {elapsed:.0f} s, 2 relays, concurrency {concurrency}, database {database}")
    print(f"relay logs: {', '.join(str(f) for f in log_files)}")
    print(f"requests: {len(results)} ({len(results) / elapsed:.1f}/s); by kind: {kinds}")
    print("outcomes by cause:")
    for cause, n in sorted(causes.items(), key=lambda item: -item[1]):
        print(f"  {cause:<40} {n:>7}  {100 * n / len(results):5.1f}%")
    print(f"chaos: {dict(sorted(slices.items()))}")
    for label, values in (("successful calls", ok_latency), ("every answered call", answered)):
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        print(f"latency of {label}: p50 {p50:.0f} ms, p99 {p99:.0f} ms")
    for i, (start, end, series) in enumerate(zip(rss_start, rss_end, samples, strict=True)):
        first, second, growth = rss_growth(series)
        peak = max((mb for _, mb in series), default=end)
        print(
            f"relay {i + 1} RSS: start {start:.1f} MB, end {end:.1f} MB, peak {peak:.1f} MB; "
            f"median first half {first:.1f} MB, second half {second:.1f} MB ({growth:+.1f} MB, "
            f"bound {growth_bound:.0f} MB, {len(series)} samples)"
        )
        if growth > growth_bound:
            failed.append(f"relay {i + 1} memory not flat: second half {growth:+.1f} MB over the first")
    gateway = gateway_failures(results)
    if gateway:
        failed.append(f"{len(gateway)} gateway 5xx: {collections.Counter(r.cause for r in gateway)}")
    failed += problems
    for log_file in log_files:
        crashes = tracebacks(log_file)
        if crashes:
            common = collections.Counter(crashes).most_common(3)
            failed.append(f"{len(crashes)} tracebacks in {log_file}: {common}")
    if not problems:
        print(f"ledger: {len(request_ids)} calls each settled once, no hold outstanding, wallets reconcile")
    for problem in failed:
        print(f"FAIL: {problem}")
    print("soak: PASS" if not failed else "soak: FAIL")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
