"""Smoke test of `make bench`: a one-second run against the direct upstream and the relay.

No timing assertions: it checks that the harness starts everything, measures every phase
without errors, bills every relay call, and writes a well-formed table (JSON and Markdown).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.live
def test_bench_quick_run_writes_a_well_formed_table(tmp_path):
    out = tmp_path / "result.json"
    env = {**os.environ, **QUICK}
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--skip-litellm", "--no-readme", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(out.read_text())
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
