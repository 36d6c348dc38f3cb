"""Smoke test of `make bench`: a one-second run against the direct upstream and the relay.

No timing assertions: it checks that the harness starts everything, measures every phase
without errors, bills every relay call, and writes a well-formed table (JSON and Markdown);
on PostgreSQL + Redis also the money path's counters, CPU per call, the phase spread over
several tokens, and (when bench/.venv-granian exists) the relay under granian.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
QUICK = {
    "BENCH_BACKEND": "embedded",
    "BENCH_WORKERS": "1",
    "BENCH_ROUNDS": "1",
    "BENCH_WARMUP_SECONDS": "0.5",
    "BENCH_SEQ_SECONDS": "1",
    "BENCH_LOAD_SECONDS": "1",
    "BENCH_CONNECTIONS": "5",
    "BENCH_TTFB_REQUESTS": "5",
    "BENCH_STREAMS": "20",
    "BENCH_SLOW_CHUNKS": "2",
    "BENCH_SLOW_DELAY_MS": "200",
    "BENCH_FAILOVER_SECONDS": "1",
}


def quick_run(out: Path, **env) -> tuple[subprocess.CompletedProcess, dict]:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--skip-litellm", "--no-readme", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, **QUICK, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return run, json.loads(out.read_text())


@pytest.mark.live
def test_bench_quick_run_writes_a_well_formed_table(tmp_path):
    out = tmp_path / "result.json"
    run, report = quick_run(out, BENCH_GRANIAN="0", BENCH_SPREAD_TOKENS="3")
    assert report["backend"] == {"database": "sqlite", "cache": "local memory"}
    rows = {row["metric"]: row for row in report["rows"]}
    for metric in (
        "sequential latency p50",
        "sequential added p50 (over direct)",
        "throughput at N connections",
        "stream time to first byte p50",
        "held streams: peak RSS of one process",
        "failover added p50, upstream answers 429",
    ):
        assert rows[metric]["relay"] is not None, metric
        assert rows[metric]["litellm"] is None, metric
    assert rows["throughput at N connections"]["direct"] > 0
    assert rows["throughput at N connections"]["relay"] > 0
    assert rows["throughput at N connections"]["relay_vs_direct"] > 0
    assert rows["errors at N connections"]["relay"] == 0
    results = report["results"]
    assert results["streams"]["relay"]["ok"] == 20
    assert results["streams"]["relay"]["max_concurrent"] >= 1
    assert results["stream_ttfb"]["relay"]["errors"] == 0
    busy = results["failover"]["relay"]["busy"]
    assert busy["status_errors"] == 0 and busy["upstream_429s"] >= 1
    assert report["billing"]["usage_records"] >= report["billing"]["relay_requests_timed"] > 0
    assert [t["met"] for t in report["targets"]][:2] == [None, None]  # no LiteLLM, no ratio
    table = out.with_suffix(".md").read_text()
    assert "| metric | unit | direct | relay | LiteLLM | relay ÷ LiteLLM | relay ÷ direct |" in table
    assert "sequential latency p50" in run.stdout
    assert rows["throughput at N connections, N tokens of N users"]["relay"] > 0
    assert rows["errors at N connections, N tokens"]["relay"] == 0
    assert rows["CPU per call at N connections"]["relay"] > 0
    assert rows["CPU per call at N connections"]["direct"] > 0
    assert report["money"] == [] and report["asgi"] == []  # SQLite: no server counters
    share = next(t for t in report["targets"] if "direct upstream" in t["target"])
    assert share["value"] == rows["throughput at N connections"]["relay_vs_direct"]
    assert share["met"] is (share["value"] >= 0.02)
    assert "| throughput at 5 conn., 3 tokens of 3 users | req/s |" in table


@pytest.mark.live
@pytest.mark.postgres
@pytest.mark.redis
def test_bench_on_postgres_measures_the_money_path_and_cpu(transactional_db, tmp_path):
    """The bench on the test database and this run's Redis db, its counters read soon after."""
    db = connection.settings_dict
    url = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )
    granian = (ROOT / "bench" / ".venv-granian" / "bin" / "granian").exists()
    out = tmp_path / "result.json"
    _, report = quick_run(
        out,
        BENCH_BACKEND="services",
        BENCH_DATABASE_URL=url,
        BENCH_REDIS_URL=settings.REDIS_URL,
        BENCH_PG_SETTLE_SECONDS="1.5",
        BENCH_SPREAD_TOKENS="4",
        BENCH_GRANIAN="1",
        BENCH_PGWIRE_SECONDS="1",
    )
    assert report["backend"] == {"database": "postgresql", "cache": "redis"}
    money = report["results"]["money"]
    assert set(money) == {"sequential", "concurrent", "spread"}
    for phase in money.values():
        assert phase["calls"] > 0
        # after 1.5 s PostgreSQL has flushed some of the phase's counters, not all (10.5 s in a run)
        assert phase["usage_record_writes_per_call"] > 0
        assert phase["transactions_per_call"] > 0
        assert phase["pg_cpu_ms_per_call"] > 0
        wire = phase["wire"]  # the relay of its own behind bench/pgwire.py
        assert wire["calls"] > 0
        assert wire["per_call"]["statements"] > 0 and wire["per_call"]["round_trips"] > 0
    rows = {r["metric"]: r for r in report["money"]}
    assert (
        rows["statements per call (wire)"]["sequential"]
        == money["sequential"]["wire"]["per_call"]["statements"]
    )
    assert rows["calls measured (usage records written)"]["spread"] == money["spread"]["calls"]
    results = report["results"]
    assert results["spread"]["relay"]["requests"] > 0
    assert results["spread"]["relay"]["status_errors"] == 0
    assert results["concurrent"]["relay"]["cpu_ms_per_call"] > 0
    limits = "\n".join(report["limits"])
    assert "ms of relay CPU" in limits and "One token vs 4 tokens" in limits
    table = out.with_suffix(".md").read_text()
    assert "| money path | unit | sequential | 5 conn., 1 token | 5 conn., 4 tokens |" in table
    if granian:
        assert results["spread"]["granian"]["status_errors"] == 0
        assert results["concurrent"]["granian"]["requests"] > 0
        asgi = {r["metric"]: r for r in report["asgi"]}
        assert asgi["throughput at N connections"]["granian"] > 0
        assert "| relay | unit | uvicorn | granian | granian ÷ uvicorn |" in table
    else:
        assert report["asgi"] == []


def _bench_module():
    """bench/run.py as a module (dataclasses need it registered in sys.modules)."""
    if "bench_run" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_run"] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_run"]


FAKE_RELAY = (
    "import sys, time, types\n"
    "ledger = types.ModuleType('billing.ledger')\n"
    "ledger.batch_stats = lambda: {'calls': 12, 'batches': 3, 'statements': 6}\n"
    "sys.modules['billing.ledger'] = ledger\n"
    "time.sleep(0.8)\n"
)


def test_ledger_counters_reach_the_bench_through_the_hook(tmp_path):
    """bench/hooks/sitecustomize.py writes a relay process's batch counters; the bench sums them,
    and only processes started with BENCH_LEDGER_STATS_DIR write any."""
    run = _bench_module()
    env = {**os.environ, "PYTHONPATH": str(run.HOOKS), "BENCH_LEDGER_STATS_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", FAKE_RELAY], env=env, check=True, timeout=30)
    without = {**os.environ, "PYTHONPATH": str(run.HOOKS)}
    subprocess.run([sys.executable, "-c", FAKE_RELAY], env=without, check=True, timeout=30)
    assert len(list(tmp_path.glob("ledger-*.json"))) == 2
    after = run.ledger_counters(tmp_path)
    assert after == {"calls": 24, "batches": 6, "statements": 12}
    delta = run.ledger_delta({"calls": 4, "batches": 2, "statements": 4}, after)
    assert delta["delta"] == {"calls": 20, "batches": 4, "statements": 8}
    assert delta["calls_per_batch"] == 5
    assert delta["per_call"] == {"batches": 0.2, "statements": 0.4}


def test_hook_writes_nothing_without_batch_stats(tmp_path):
    run = _bench_module()
    env = {**os.environ, "PYTHONPATH": str(run.HOOKS), "BENCH_LEDGER_STATS_DIR": str(tmp_path)}
    no_counters = FAKE_RELAY.replace("ledger.batch_stats = ", "unused = ")
    subprocess.run([sys.executable, "-c", no_counters], env=env, check=True, timeout=30)
    assert list(tmp_path.iterdir()) == []
    assert run.ledger_counters(tmp_path) is None
    assert run.ledger_delta(None, None) is None
