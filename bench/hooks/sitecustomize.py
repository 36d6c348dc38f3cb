"""Bench-only: dump the ledger's batch counters of this process to a file, for bench/run.py.

bench/run.py puts this directory on PYTHONPATH of the relay processes it starts (and of no
other process), with BENCH_LEDGER_STATS_DIR set; Python imports `sitecustomize` at start-up.
A daemon thread then writes `billing.ledger.batch_stats()` to DIR/ledger-<pid>.json every
0.25 s once the relay has imported billing.ledger, and nothing when the function does not
exist. The relay's code has no hook of its own, so nothing of this is reachable in production.
"""

import json
import os
import sys
import threading
import time
from pathlib import Path

_DIR = os.environ.get("BENCH_LEDGER_STATS_DIR")


def _dump(path: Path) -> None:
    while True:
        time.sleep(0.25)
        stats = getattr(sys.modules.get("billing.ledger"), "batch_stats", None)
        if stats is None:
            continue
        try:
            data = json.dumps({"pid": os.getpid(), "stats": dict(stats())})
        except Exception as exc:  # noqa: BLE001 - the bench reports it, the relay must not care
            data = json.dumps({"pid": os.getpid(), "error": repr(exc)})
        tmp = path.with_suffix(".tmp")
        tmp.write_text(data)
        tmp.replace(path)


if _DIR:
    threading.Thread(target=_dump, args=(Path(_DIR) / f"ledger-{os.getpid()}.json",), daemon=True).start()
