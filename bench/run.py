"""Side-by-side benchmark: the direct upstream, our relay and a LiteLLM proxy, in one run.

`make bench` runs it. It starts on loopback (free ports) the minimal upstream
(bench/upstream.py), the relay under uvicorn with BENCH_WORKERS workers (PostgreSQL database
`bench` and Redis db 9 when they answer, else SQLite and local memory) with billing and usage
records on, and a LiteLLM proxy with the same worker count from bench/.venv-litellm, pointed at
the same upstream. Then, alternating between targets in every round:

1. sequential latency (one connection) and what each proxy adds over the direct upstream;
2. throughput and latency at BENCH_CONNECTIONS concurrent connections, non-streaming, first
   all on one token, then spread over BENCH_SPREAD_TOKENS tokens of as many users (no shared
   token or wallet row);
3. streaming: time to first byte, and BENCH_STREAMS concurrent slow streams held by ONE
   proxy process (resident memory per stream, errors);
4. failover: the token's select group is saturated (its upstream answers 429) and a fallback
   group serves the call; what that adds over a normal call.

Around phases 1 and 2 it also measures, for the relay: CPU per call of every server process
(/proc utime + stime of the process tree, and of the PostgreSQL backends of database `bench`),
and the money path's cost per call from PostgreSQL's own counters (`pg_stat_database`
transactions, `pg_stat_user_tables` rows written; read once the backends have flushed them)
and, when `billing.ledger.batch_stats` exists, the ledger's batch counters, which relay
processes write to the bench's temp dir through bench/hooks/sitecustomize.py. When
bench/.venv-granian exists (`make bench` creates it; BENCH_GRANIAN=0 skips it) the relay also
runs under granian beside uvicorn in phases 1 and 2, for an ASGI server comparison.

Load: wrk (C, epoll; a Lua script posts the body) for phases 1, 2 and 4 because it costs far
less CPU per request than any Python client on this 2-core machine; a Python aiohttp generator
in its own process for streaming (wrk cannot see a first byte) and as wrk's stand-in when wrk
is missing. Prints a table with ratios, writes bench/results/latest.json and latest.md, and
refreshes the README's Performance section (BENCH_README=0 to skip).

Durations and sizes come from BENCH_* environment variables (see `Config`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
LITELLM_VENV = BENCH / ".venv-litellm"
GRANIAN_VENV = BENCH / ".venv-granian"
HOOKS = BENCH / "hooks"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
README = ROOT / "README.md"
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
MODEL = "bench-model"
SLOW_MODEL = "bench-slow"


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass
class Config:
    workers: int = field(default_factory=lambda: _env_int("BENCH_WORKERS", 2))
    rounds: int = field(default_factory=lambda: _env_int("BENCH_ROUNDS", 2))
    warmup_s: float = field(default_factory=lambda: _env_float("BENCH_WARMUP_SECONDS", 2))
    sequential_s: float = field(default_factory=lambda: _env_float("BENCH_SEQ_SECONDS", 5))
    load_s: float = field(default_factory=lambda: _env_float("BENCH_LOAD_SECONDS", 8))
    connections: int = field(default_factory=lambda: _env_int("BENCH_CONNECTIONS", 50))
    spread_tokens: int = field(default_factory=lambda: _env_int("BENCH_SPREAD_TOKENS", 50))
    ttfb_requests: int = field(default_factory=lambda: _env_int("BENCH_TTFB_REQUESTS", 200))
    streams: int = field(default_factory=lambda: _env_int("BENCH_STREAMS", 1000))
    stream_chunks: int = field(default_factory=lambda: _env_int("BENCH_STREAM_CHUNKS", 20))
    slow_chunks: int = field(default_factory=lambda: _env_int("BENCH_SLOW_CHUNKS", 10))
    slow_delay_ms: int = field(default_factory=lambda: _env_int("BENCH_SLOW_DELAY_MS", 600))
    failover_s: float = field(default_factory=lambda: _env_float("BENCH_FAILOVER_SECONDS", 4))
    backend: str = field(default_factory=lambda: os.environ.get("BENCH_BACKEND", "auto"))
    loadgen: str = field(default_factory=lambda: os.environ.get("BENCH_LOADGEN", "auto"))
    litellm: bool = field(default_factory=lambda: os.environ.get("BENCH_LITELLM", "1") != "0")
    litellm_streams: bool = field(default_factory=lambda: os.environ.get("BENCH_LITELLM_STREAMS", "1") != "0")
    granian: bool = field(default_factory=lambda: os.environ.get("BENCH_GRANIAN", "1") != "0")
    # PostgreSQL backends flush their counters at most once a second, and an idle one up to
    # 10 s after its last transaction: counters are read this long after the last relay call.
    pg_settle_s: float = field(default_factory=lambda: _env_float("BENCH_PG_SETTLE_SECONDS", 10.5))
    # statements and round trips counted on the wire (bench/pgwire.py), per phase kind
    wire: bool = field(default_factory=lambda: os.environ.get("BENCH_PGWIRE", "1") != "0")
    wire_s: float = field(default_factory=lambda: _env_float("BENCH_PGWIRE_SECONDS", 3))
    database_url: str = field(
        default_factory=lambda: os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench"
        )
    )
    redis_url: str = field(
        default_factory=lambda: os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    )
    out: str = field(
        default_factory=lambda: os.environ.get("BENCH_OUT", str(BENCH / "results" / "latest.json"))
    )
    readme: bool = field(default_factory=lambda: os.environ.get("BENCH_README", "1") != "0")


def niced(cmd: list[str]) -> list[str]:
    """BENCH_NICE=-10 (root) shields every measured process alike from other load on the machine."""
    nice = int(os.environ.get("BENCH_NICE", "0"))
    return ["nice", "-n", str(nice), *cmd] if nice else cmd


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout=10):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback only
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- processes -------------------------------------------------------------------------


class Service:
    """A server process started (and always stopped) by the benchmark, in its own process group."""

    def __init__(self, name: str, cmd: list[str], *, port: int, health: str, env: dict, log_dir: Path):
        self.name = name
        self.cmd = cmd
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.health = health
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Service:
        log(f"starting {self.name} on :{self.port}")
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            niced(self.cmd),
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited ({self.proc.returncode}); see {self.log_path}:\n{self.tail()}"
                )
            try:
                status, _ = http("GET", self.url + self.health, timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass
        self._log.close()

    def rss_bytes(self) -> int:
        """Resident memory of the process and all its descendants."""
        return sum(_rss(pid) for pid in _tree(self.proc.pid))

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of the process and all its descendants (workers)."""
        return sum(cpu_seconds(_tree(self.proc.pid)).values())


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids) -> dict[int, float]:
    """utime + stime of each process still alive (fields 14 and 15 of /proc/PID/stat)."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Samples a service's resident memory every 50 ms; keeps the peak."""

    def __init__(self, service: Service):
        super().__init__(daemon=True)
        self.service = service
        self.peak = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, self.service.rss_bytes())
            self._halt.wait(0.05)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


# --- backends --------------------------------------------------------------------------


def detect_backend(cfg: Config) -> dict:
    """PostgreSQL `bench` and Redis db 9 when they answer (creating the database), else embedded."""
    if cfg.backend == "embedded":
        return {}
    env = {}
    try:
        import psycopg
        from psycopg import sql

        target = urllib.parse.urlsplit(cfg.database_url)
        dbname = target.path.lstrip("/")
        admin = cfg.database_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, connect_timeout=3, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        env["DATABASE_URL"] = cfg.database_url
    except Exception as exc:
        if cfg.backend == "services":
            raise RuntimeError(f"PostgreSQL unreachable at {cfg.database_url}: {exc}") from exc
        log(f"PostgreSQL not reachable ({type(exc).__name__}): using SQLite")
    try:
        import redis

        redis.Redis.from_url(cfg.redis_url, socket_connect_timeout=2).ping()
        env["REDIS_URL"] = cfg.redis_url
    except Exception as exc:
        if cfg.backend == "services":
            raise RuntimeError(f"Redis unreachable at {cfg.redis_url}: {exc}") from exc
        log(f"Redis not reachable ({type(exc).__name__}): using local memory")
    return env


# --- the money path's counters ---------------------------------------------------------

# tables whose rows a relay call writes: usage record, token, wallet, ledger lines
MONEY_TABLES = {
    "billing_usagerecord": "usage_record",
    "tokens_token": "token",
    "billing_wallet": "wallet",
    "billing_ledgerentry": "ledger_line",
}


class MoneyMeter:
    """What the relay's calls cost PostgreSQL between two snapshots, per call.

    Server side (always): transactions (`pg_stat_database` of database `bench`, read over a
    connection to another database so these reads do not count), rows inserted/updated/deleted
    (`pg_stat_user_tables`), CPU of the backends connected to `bench`; calls are the usage
    records created in between. Relay side, when the ledger keeps batch counters: the sum of
    what every relay process wrote under `stats_dir` (bench/hooks/sitecustomize.py).
    PostgreSQL flushes a backend's counters up to 10 s after its last transaction, so a
    snapshot waits `settle_s` after the last relay call (`touched`).
    """

    def __init__(self, database_url: str, stats_dir: Path, settle_s: float):
        import psycopg

        self.dbname = urllib.parse.urlsplit(database_url).path.lstrip("/")
        self.admin = psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True)
        self.db = psycopg.connect(database_url, autocommit=True)
        self.stats_dir = stats_dir
        self.settle_s = settle_s
        self.last_call = time.monotonic()
        self._snap: dict | None = None

    def touched(self) -> None:
        self.last_call = time.monotonic()
        self._snap = None

    def close(self) -> None:
        self.admin.close()
        self.db.close()

    def snapshot(self) -> dict:
        if self._snap is not None:
            return self._snap
        wait = self.last_call + self.settle_s - time.monotonic()
        if wait > 0:
            log(f"waiting {wait:.1f}s for PostgreSQL to flush its counters")
            time.sleep(wait)
        db = self.admin.execute(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = %s",
            (self.dbname,),
        ).fetchone()
        tables = {
            name: (ins, upd, dele)
            for name, ins, upd, dele in self.db.execute(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables"
            )
        }
        pids = [
            row[0]
            for row in self.admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                (self.dbname, self.db.info.backend_pid),
            )
        ]
        self._snap = {
            "at": self.now(),
            "xacts": db[0] + db[1],
            "rollbacks": db[1],
            "tables": tables,
            "backend_cpu": cpu_seconds(pids),
            "ledger": ledger_counters(self.stats_dir),
        }
        return self._snap

    def now(self):
        return self.db.execute("SELECT now()").fetchone()[0]

    def calls_between(self, start, end) -> int:
        """Relay calls served in between: every call writes one usage record."""
        return self.db.execute(
            "SELECT count(*) FROM billing_usagerecord WHERE created_at >= %s AND created_at < %s",
            (start, end),
        ).fetchone()[0]

    def quiet(self, timeout: float = 30) -> None:
        """Wait until the relay has finished the calls a load generator cut at its end (at 50
        connections they can take a second or more): no new usage record for 0.5 s."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            newest = self.db.execute("SELECT max(id) FROM billing_usagerecord").fetchone()[0]
            if newest == last:
                return
            last = newest
            time.sleep(0.5)

    def per_call(self, before: dict, after: dict) -> dict:
        calls = self.calls_between(before["at"], after["at"])

        def each(value):
            return round(value / calls, 3) if calls else None

        written = {}
        for table, (ins, upd, dele) in after["tables"].items():
            b_ins, b_upd, b_del = before["tables"].get(table, (0, 0, 0))
            written[table] = (ins - b_ins, upd - b_upd, dele - b_del)
        money = {MONEY_TABLES[k]: v for k, v in written.items() if k in MONEY_TABLES}
        backend_cpu = sum(
            cpu - before["backend_cpu"].get(pid, 0) for pid, cpu in after["backend_cpu"].items()
        )
        out = {
            "calls": calls,
            "transactions_per_call": each(after["xacts"] - before["xacts"]),
            "rollbacks_per_call": each(after["rollbacks"] - before["rollbacks"]),
            "rows_written_per_call": each(sum(sum(v) for v in written.values())),
            "wallet_updates_per_call": each(money.get("wallet", (0, 0, 0))[1]),
            "token_updates_per_call": each(money.get("token", (0, 0, 0))[1]),
            "ledger_lines_per_call": each(money.get("ledger_line", (0, 0, 0))[0]),
            "usage_record_writes_per_call": each(sum(money.get("usage_record", (0, 0, 0)))),
            "pg_cpu_ms_per_call": each(backend_cpu * 1000),
            "ledger": None,
        }
        out["ledger"] = ledger_delta(before["ledger"], after["ledger"])
        return out


def ledger_counters(stats_dir: Path) -> dict | None:
    """The relay processes' `batch_stats()` summed (None: no process has the function)."""
    total: dict[str, float] = {}
    errors = []
    for path in stats_dir.glob("ledger-*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if "error" in data:
            errors.append(data["error"])
        for key, value in (data.get("stats") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
    if errors and not total:
        log(f"billing.ledger.batch_stats() failed in the relay: {errors[0]}")
    return total or None


def ledger_delta(before: dict | None, after: dict | None) -> dict | None:
    """What the ledger counted between two sums of `batch_stats()`: per key, calls per batch,
    and every other key per ledger call."""
    if not after:
        return None
    delta = {k: v - (before or {}).get(k, 0) for k, v in after.items()}
    calls = delta.get("calls") or 0
    return {
        "delta": delta,
        "calls_per_batch": _ratio(calls, delta.get("batches")),
        "per_call": {k: round(v / calls, 3) for k, v in delta.items() if k != "calls" and calls},
    }


# --- load generation -------------------------------------------------------------------


def chat_body(model: str, *, stream: bool = False) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":"))


@dataclass
class Target:
    name: str
    url: str
    auth: str = ""
    failover: dict[str, tuple[str, str]] = field(default_factory=dict)  # variant → (auth, model)
    spread: list[str] = field(default_factory=list)  # Authorization values for the spread phase
    service: Service | None = None  # whose CPU time a round of this target is charged
    database: bool = False  # its calls write to the bench database (the money meter's)

    def headers(self, auth: str | None = None) -> dict:
        auth = self.auth if auth is None else auth
        return {"Content-Type": "application/json", **({"Authorization": auth} if auth else {})}


class Load:
    def __init__(self, cfg: Config):
        wrk = shutil.which("wrk")
        if cfg.loadgen == "wrk" and not wrk:
            raise RuntimeError("BENCH_LOADGEN=wrk but wrk is not installed (apt-get install wrk)")
        self.wrk = wrk if cfg.loadgen in ("auto", "wrk") else None
        self.name = "wrk" if self.wrk else "python (aiohttp)"

    def closed(
        self, target: Target, *, connections: int, seconds: float, auth=None, model=MODEL, auths=()
    ) -> dict:
        """`auths`: several Authorization values, used in turn (wrk: per request, Python: per
        connection), instead of the target's own."""
        body = chat_body(model)
        if self.wrk:
            return self._wrk(
                target, body, target.headers(auth).get("Authorization", ""), connections, seconds, auths
            )
        extra = ["--connections", str(connections), "--seconds", str(seconds)]
        for value in auths:
            extra += ["--auth", value]
        return loadgen("closed", target, body, auth, extra, timeout=seconds + 60)

    def _wrk(self, target: Target, body: str, auth: str, connections: int, seconds: float, auths=()) -> dict:
        env = {**os.environ, "BENCH_BODY": body, "BENCH_AUTH": auth, "BENCH_AUTHS": ",".join(auths)}
        cmd = [
            self.wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(seconds, 1):.0f}s",
            "--timeout",
            "30s",
            "-s",
            str(BENCH / "wrk_post.lua"),
            target.url + "/v1/chat/completions",
        ]
        out = subprocess.run(
            niced(cmd), env=env, capture_output=True, text=True, timeout=seconds + 60, check=True
        )  # noqa: S603
        line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
        raw = json.loads(line[len("BENCH_JSON ") :])
        errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
        done = raw["requests"] > 0
        return {
            "requests": raw["requests"],
            # answers other than 2xx/3xx are errors, not throughput
            "rps": round((raw["requests"] - raw["status_errors"]) / (raw["duration_us"] / 1e6), 1),
            "status_errors": raw["status_errors"],
            "other_errors": errors,
            "p50_ms": raw["p50_us"] / 1000 if done else None,
            "p90_ms": raw["p90_us"] / 1000 if done else None,
            "p99_ms": raw["p99_us"] / 1000 if done else None,
            "max_ms": raw["max_us"] / 1000 if done else None,
        }


def loadgen(mode: str, target: Target, body: str, auth, extra: list[str], timeout: float) -> dict:
    cmd = [PY, str(BENCH / "loadgen.py"), mode, "--url", target.url + "/v1/chat/completions", "--body", body]
    for name, value in target.headers(auth).items():
        cmd += ["--header", f"{name}: {value}"]
    out = subprocess.run(niced(cmd + extra), capture_output=True, text=True, timeout=timeout, check=True)  # noqa: S603
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_answer(target: Target) -> None:
    """One real request first: a target that answers wrongly must not be timed."""
    status, body = http(
        "POST", target.url + "/v1/chat/completions", chat_body(MODEL).encode(), target.headers()
    )
    if status != 200 or b'"choices"' not in body:
        raise RuntimeError(f"{target.name} answered {status}: {body[:500]!r}")


# --- the run ---------------------------------------------------------------------------


def median_of(rounds: list[dict]) -> dict:
    """Median of each measure over the rounds (a round that completed nothing has None)."""
    keys = [k for k, v in rounds[0].items() if v is None or isinstance(v, int | float)]
    out = {}
    for k in keys:
        values = [r[k] for r in rounds if r[k] is not None]
        out[k] = round(statistics.median(values), 3) if values else None
    for k in ("requests", "status_errors", "other_errors", "errors", "upstream_429s"):
        if k in rounds[0]:
            out[k] = sum(r[k] for r in rounds)
    out["rounds"] = rounds
    return out


class Bench:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.services: list[Service] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="apiyi-bench-"))
        self.load = Load(cfg)
        self.results: dict = {}
        self.started = datetime.now(UTC)
        self.litellm_key = "sk-bench-master-" + secrets.token_urlsafe(24)
        self.meter: MoneyMeter | None = None
        self.granian: Service | None = None

    def service(self, *args, **kwargs) -> Service:
        svc = Service(*args, **kwargs, log_dir=self.tmp)
        self.services.append(svc)
        return svc.start()

    def stop_all(self) -> None:
        for svc in reversed(self.services):
            svc.stop()
        if self.meter:
            self.meter.close()

    # setup

    def start(self) -> None:
        cfg = self.cfg
        port = free_port()
        self.upstream = self.service(
            "upstream",
            [
                PY,
                str(BENCH / "upstream.py"),
                "--port",
                str(port),
                "--chunks",
                str(cfg.stream_chunks),
                "--slow-chunks",
                str(cfg.slow_chunks),
                "--slow-delay-ms",
                str(cfg.slow_delay_ms),
            ],
            port=port,
            health="/_stats",
            env=os.environ.copy(),
        )
        backend_env = detect_backend(cfg)
        self.django_env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
            **backend_env,
            "VAR_DIR": str(self.tmp / "var"),
            "SECRET_KEY": "bench-" + secrets.token_urlsafe(40),
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "apiyi_admin.settings",
        }
        self.upstream.wait_ready()
        log("migrating and seeding the bench user, groups, channels and tokens")
        setup = self.django("setup", "--upstream", self.upstream.url)
        self.keys = setup["keys"]
        self.backend = {"database": setup["database"], "cache": setup["cache"]}
        log(f"relay backend: {self.backend['database']} + {self.backend['cache']}")
        stats_dir = self.tmp / "ledger-stats"
        stats_dir.mkdir()
        self.relay_env = {
            **self.django_env,
            "PYTHONPATH": os.pathsep.join([str(HOOKS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "BENCH_LEDGER_STATS_DIR": str(stats_dir),
        }
        if self.backend["database"] == "postgresql":
            self.meter = MoneyMeter(self.django_env["DATABASE_URL"], stats_dir, cfg.pg_settle_s)
        self.relay = self.start_relay(cfg.workers, "relay")
        if cfg.granian and (GRANIAN_VENV / "bin" / "granian").exists():
            self.granian = self.start_relay(cfg.workers, "granian", server="granian")
        elif cfg.granian:
            log(f"{GRANIAN_VENV} missing (`make bench` creates it): no granian comparison")
        self.litellm = None
        if cfg.litellm:
            self.litellm = self.start_litellm(cfg.workers, "litellm")
        self.relay.wait_ready()
        if self.granian:
            self.granian.wait_ready()
        if self.litellm:
            self.litellm.wait_ready(timeout=240)
        auth = {name: f"Bearer {key}" for name, key in self.keys.items()}
        spread = [f"Bearer {key}" for key in setup["spread_keys"]]
        self.targets = [
            Target("direct", self.upstream.url, service=self.upstream),
            Target(
                "relay",
                self.relay.url,
                auth["main"],
                {
                    "normal": (auth["main"], MODEL),
                    "busy": (auth["busy"], MODEL),
                    "cooling": (auth["cooling"], MODEL),
                },
                spread=spread,
                service=self.relay,
                database=True,
            ),
        ]
        if self.granian:
            self.targets.append(
                Target(
                    "granian",
                    self.granian.url,
                    auth["main"],
                    spread=spread,
                    service=self.granian,
                    database=True,
                )
            )
        if self.litellm:
            master = f"Bearer {self.litellm_key}"
            self.targets.append(
                Target(
                    "litellm",
                    self.litellm.url,
                    master,
                    {
                        "normal": (master, MODEL),
                        "busy": (master, "bench-busy"),
                        "cooling": (master, "bench-cooling"),
                    },
                    service=self.litellm,
                )
            )
        for target in self.targets:
            check_answer(target)

    def start_relay(self, workers: int, name: str, server: str = "uvicorn", env=None) -> Service:
        """The relay as production runs it: uvicorn, uvloop, httptools, no access log; or the
        same under granian (its bench venv sees the project's packages), HTTP/1, no lifespan."""
        port = free_port()
        if server == "granian":
            cmd = [
                str(GRANIAN_VENV / "bin" / "granian"),
                "--interface",
                "asginl",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--loop",
                "uvloop",
                "--http",
                "1",
                "--no-ws",
                "--no-access-log",
                "--log-level",
                "warning",
                "--backlog",
                "4096",
                "apiyi_admin.asgi:application",
            ]
            return self.service(name, cmd, port=port, health="/healthz", env=env or self.relay_env)
        cmd = [
            PY,
            "-m",
            "uvicorn",
            "apiyi_admin.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "warning",
            "--backlog",
            "4096",
            "--timeout-worker-healthcheck",
            "60",
        ]
        return self.service(name, cmd, port=port, health="/healthz", env=env or self.relay_env)

    def start_litellm(self, workers: int, name: str) -> Service:
        exe = LITELLM_VENV / "bin" / "litellm"
        if not exe.exists():
            raise RuntimeError(
                f"{exe} is missing: run `make bench` (it installs LiteLLM there) or BENCH_LITELLM=0"
            )
        config = self.tmp / "litellm.yaml"
        config.write_text(litellm_config(self.upstream.url))
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
            "LITELLM_MASTER_KEY": self.litellm_key,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "NO_DOCS": "True",
        }
        cmd = [
            str(exe),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            str(workers),
            "--timeout_worker_healthcheck",
            "120",
        ]
        return self.service(name, cmd, port=port, health="/health/liveliness", env=env)

    def django(self, *args: str) -> dict:
        out = subprocess.run(  # noqa: S603
            [PY, str(BENCH / "django_side.py"), *args],
            env=self.django_env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=ROOT,
        )
        if out.returncode:
            raise RuntimeError(f"django_side {args[0]} failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    # phases

    def run(self) -> dict:
        cfg = self.cfg
        for target in self.targets:
            log(f"warm-up {target.name}")
            self.load.closed(target, connections=cfg.connections, seconds=cfg.warmup_s)
            if target.spread:
                self.load.closed(
                    target, connections=cfg.connections, seconds=cfg.warmup_s, auths=target.spread
                )
            if target.database and self.meter:
                self.meter.touched()
        self.results["sequential"] = self.alternate(
            "sequential (1 connection)",
            lambda t: self.load.closed(t, connections=1, seconds=cfg.sequential_s),
            money="sequential",
        )
        self.results["concurrent"] = self.alternate(
            f"concurrent ({cfg.connections} connections)",
            lambda t: self.load.closed(t, connections=cfg.connections, seconds=cfg.load_s),
            money="concurrent",
        )
        spread = cfg.spread_tokens
        self.results["spread"] = self.alternate(
            f"concurrent ({cfg.connections} connections, {spread} tokens of {spread} users)",
            lambda t: self.load.closed(t, connections=cfg.connections, seconds=cfg.load_s, auths=t.spread),
            targets=[t for t in self.targets if t.name != "direct"],
            money="spread",
        )
        per_round = max(cfg.ttfb_requests // cfg.rounds, 1)
        self.results["stream_ttfb"] = self.alternate(
            "streaming time to first byte",
            lambda t: loadgen(
                "ttfb", t, chat_body(MODEL, stream=True), None, ["--count", str(per_round)], 300
            ),
        )
        self.results["streams"] = self.held_streams()
        self.results["failover"] = self.failover()
        if self.meter and cfg.wire:
            self.wire_counts()
        return self.results

    def wire_counts(self) -> None:
        """Statements and round trips per call, counted on the wire: a relay of its own (same
        workers) reaches PostgreSQL through bench/pgwire.py, under each kind of load in turn."""
        from pgwire import PgWireCounter

        cfg = self.cfg
        database = urllib.parse.urlsplit(self.django_env["DATABASE_URL"])
        proxy = PgWireCounter(database.hostname or "127.0.0.1", database.port or 5432, free_port())
        query = "&".join(filter(None, [database.query, "sslmode=disable&gssencmode=disable"]))
        netloc = database.netloc.rsplit("@", 1)[0] + "@" if "@" in database.netloc else ""
        url = database._replace(netloc=f"{netloc}127.0.0.1:{proxy.port}", query=query).geturl()
        svc = self.start_relay(cfg.workers, "relay-wire", env={**self.relay_env, "DATABASE_URL": url})
        try:
            svc.wait_ready()
            relay = next(t for t in self.targets if t.name == "relay")
            target = Target("relay-wire", svc.url, relay.auth, spread=relay.spread)
            check_answer(target)
            for auths in ((), target.spread):
                self.load.closed(target, connections=cfg.connections, seconds=cfg.warmup_s, auths=auths)
            for phase, connections, auths in (
                ("sequential", 1, ()),
                ("concurrent", cfg.connections, ()),
                ("spread", cfg.connections, target.spread),
            ):
                log(f"statements on the wire: {phase}, {connections} connection(s)")
                self.meter.quiet()
                start, before = self.meter.now(), proxy.counts.snapshot()
                self.load.closed(target, connections=connections, seconds=cfg.wire_s, auths=auths)
                self.meter.quiet()
                end, after = self.meter.now(), proxy.counts.snapshot()
                calls = self.meter.calls_between(start, end)
                delta = {k: v - before.get(k, 0) for k, v in after.items()}
                self.results.setdefault("money", {}).setdefault(phase, {})["wire"] = {
                    "calls": calls,
                    "delta": delta,
                    "per_call": {k: round(v / calls, 3) for k, v in delta.items() if calls},
                }
        finally:
            svc.stop()
            self.services.remove(svc)
            proxy.close()
            self.meter.touched()

    def alternate(self, title: str, measure, targets=None, money: str | None = None) -> dict:
        """Rounds of `measure` over the targets in turn, each with the CPU its server used;
        `money`: also the money path's counters over the whole phase, under that name."""
        targets = targets or self.targets
        before = self.meter.snapshot() if money and self.meter else None
        rounds: dict[str, list[dict]] = {t.name: [] for t in targets}
        for r in range(self.cfg.rounds):
            for target in targets:
                log(f"{title}: {target.name}, round {r + 1}/{self.cfg.rounds}")
                cpu = target.service.cpu_seconds() if target.service else 0.0
                began = time.monotonic()
                result = measure(target)
                if target.service:
                    used = target.service.cpu_seconds() - cpu
                    result["cpu_ms_per_call"] = (
                        round(used * 1000 / result["requests"], 3) if result.get("requests") else None
                    )
                    result["cpu_cores"] = round(used / (time.monotonic() - began), 3)
                if target.database and self.meter:
                    self.meter.touched()
                rounds[target.name].append(result)
        if before is not None:
            money_results = self.results.setdefault("money", {})
            money_results[money] = self.meter.per_call(before, self.meter.snapshot())
        return {name: median_of(values) for name, values in rounds.items()}

    def held_streams(self) -> dict:
        """BENCH_STREAMS slow streams at once through ONE process of each proxy; its memory."""
        cfg = self.cfg
        out = {}
        # With one worker the main service already is one process: reuse it (and keep it).
        single = cfg.workers == 1
        singles = [("relay", lambda: self.relay if single else self.start_relay(1, "relay-1"))]
        if self.litellm and cfg.litellm_streams:
            singles.append(
                ("litellm", lambda: self.litellm if single else self.start_litellm(1, "litellm-1"))
            )
        stream_body = chat_body(SLOW_MODEL, stream=True)
        for name, starter in singles:
            svc = starter()
            svc.wait_ready(timeout=240)
            target = Target(name, svc.url, next(t.auth for t in self.targets if t.name == name))
            log(f"{cfg.streams} concurrent slow streams through one {name} process")
            loadgen(
                "streams",
                target,
                stream_body,
                None,
                ["--count", "20", "--expect-chunks", str(cfg.slow_chunks)],
                300,
            )
            time.sleep(0.5)
            base = svc.rss_bytes()
            sampler = RssSampler(svc)
            sampler.start()
            result = loadgen(
                "streams",
                target,
                stream_body,
                None,
                ["--count", str(cfg.streams), "--expect-chunks", str(cfg.slow_chunks)],
                600,
            )
            peak = sampler.stop()
            result.update(
                rss_base_mb=round(base / 2**20, 1),
                rss_peak_mb=round(peak / 2**20, 1),
                rss_per_stream_kb=round((peak - base) / max(cfg.streams, 1) / 1024, 1),
                processes=len(_tree(svc.proc.pid)),
            )
            out[name] = result
            if not single:
                svc.stop()
        return out

    def failover(self) -> dict:
        """Sequential calls whose select group is saturated, alternating with normal calls."""
        cfg = self.cfg
        out: dict[str, dict[str, list[dict]]] = {}
        proxies = [t for t in self.targets if t.failover]
        for r in range(cfg.rounds):
            for target in proxies:
                for variant, (auth, model) in target.failover.items():
                    log(f"failover ({variant}): {target.name}, round {r + 1}/{cfg.rounds}")
                    http("POST", self.upstream.url + "/_stats/reset")
                    result = self.load.closed(
                        target, connections=1, seconds=cfg.failover_s, auth=auth, model=model
                    )
                    stats = json.loads(http("GET", self.upstream.url + "/_stats")[1])
                    result["upstream_429s"] = stats["r429"]
                    out.setdefault(target.name, {}).setdefault(variant, []).append(result)
        return {name: {v: median_of(rs) for v, rs in variants.items()} for name, variants in out.items()}

    def billing(self) -> dict:
        stats = self.django("stats", "--since", self.started.isoformat())
        phases = ("sequential", "concurrent", "spread")
        relay_requests = sum(
            self.results[p][name]["requests"]
            for p in phases
            for name in ("relay", "granian")
            if name in self.results[p]
        )
        relay_requests += sum(v["requests"] for v in self.results["failover"]["relay"].values())
        return {**stats, "relay_requests_timed": relay_requests}


def litellm_config(upstream: str) -> str:
    """LiteLLM at its lightest: master key only (no database), no retries; fallbacks for failover."""
    entries = [
        ("bench-model", "openai/bench-model", "/v1"),
        ("bench-slow", "openai/bench-slow", "/v1"),
        ("bench-busy", "openai/bench-model", "/r429/0.001/v1"),
        ("bench-cooling", "openai/bench-model", "/r429/60/v1"),
    ]
    lines = ["model_list:"]
    for name, model, path in entries:
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            f"      model: {model}",
            f"      api_base: {upstream}{path}",
            "      api_key: sk-bench-upstream",
            "      max_retries: 0",
        ]
    lines += [
        "router_settings:",
        "  num_retries: 0",
        '  fallbacks: [{"bench-busy": ["bench-model"]}, {"bench-cooling": ["bench-model"]}]',
        "litellm_settings:",
        "  num_retries: 0",
        "  request_timeout: 60",
        "  telemetry: false",
        "  drop_params: true",
    ]
    return "\n".join(lines) + "\n"


# --- report ----------------------------------------------------------------------------


def _get(results: dict, *path):
    node = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _sub(a, b):
    return None if a is None or b is None else round(a - b, 3)


def _ratio(a, b):
    return None if a is None or b in (None, 0) else round(a / b, 3)


def build_rows(res: dict) -> list[dict]:
    rows = []

    def row(metric: str, unit: str, direct=None, relay=None, litellm=None, better: str = "lower"):
        rows.append(
            {
                "metric": metric,
                "unit": unit,
                "direct": direct,
                "relay": relay,
                "litellm": litellm,
                "relay_vs_litellm": _ratio(relay, litellm),
                "relay_vs_direct": _ratio(relay, direct),
                "better": better,
            }
        )

    def trio(*path):
        return {t: _get(res, path[0], t, *path[1:]) for t in ("direct", "relay", "litellm")}

    for pct in ("p50", "p99"):
        v = trio("sequential", f"{pct}_ms")
        row(f"sequential latency {pct}", "ms", **v)
    for pct in ("p50", "p99"):
        v = trio("sequential", f"{pct}_ms")
        row(
            f"sequential added {pct} (over direct)",
            "ms",
            None,
            _sub(v["relay"], v["direct"]),
            _sub(v["litellm"], v["direct"]),
        )
    row("throughput at N connections", "req/s", **trio("concurrent", "rps"), better="higher")
    row("latency p50 at N connections", "ms", **trio("concurrent", "p50_ms"))
    row("latency p99 at N connections", "ms", **trio("concurrent", "p99_ms"))
    row("errors at N connections", "count", **_errors(res, "concurrent"))
    row("CPU per call, sequential", "ms", **trio("sequential", "cpu_ms_per_call"))
    row("CPU per call at N connections", "ms", **trio("concurrent", "cpu_ms_per_call"))
    # The direct upstream has no tokens: its figure is the one-token phase's.
    spread = trio("spread", "rps") | {"direct": _get(res, "concurrent", "direct", "rps")}
    row("throughput at N connections, N tokens of N users", "req/s", **spread, better="higher")
    row("latency p50 at N connections, N tokens", "ms", **trio("spread", "p50_ms"))
    row("latency p99 at N connections, N tokens", "ms", **trio("spread", "p99_ms"))
    row("errors at N connections, N tokens", "count", **_errors(res, "spread"))
    row("CPU per call at N connections, N tokens", "ms", **trio("spread", "cpu_ms_per_call"))
    v = trio("stream_ttfb", "ttfb_p50_ms")
    row("stream time to first byte p50", "ms", **v)
    row(
        "stream TTFB added p50 (over direct)",
        "ms",
        None,
        _sub(v["relay"], v["direct"]),
        _sub(v["litellm"], v["direct"]),
    )
    for key, label, unit in (
        ("rss_peak_mb", "held streams: peak RSS of one process", "MB"),
        ("rss_per_stream_kb", "held streams: RSS per stream", "KB"),
        ("max_concurrent", "held streams: open at once", "count"),
        ("errors", "held streams: errors", "count"),
    ):
        row(
            label,
            unit,
            None,
            _get(res, "streams", "relay", key),
            _get(res, "streams", "litellm", key),
            "higher" if key == "max_concurrent" else "lower",
        )
    for variant, label in (("busy", "upstream answers 429"), ("cooling", "select group cooling down")):
        normal = {t: _get(res, "failover", t, "normal", "p50_ms") for t in ("relay", "litellm")}
        fail = {t: _get(res, "failover", t, variant, "p50_ms") for t in ("relay", "litellm")}
        met = {
            t: _ratio(
                _get(res, "failover", t, variant, "upstream_429s"),
                _get(res, "failover", t, variant, "requests"),
            )
            for t in ("relay", "litellm")
        }
        row(f"failover: upstream 429s per call, {label}", "count", None, met["relay"], met["litellm"])
        row(f"failover p50, {label}", "ms", None, fail["relay"], fail["litellm"])
        row(
            f"failover added p50, {label}",
            "ms",
            None,
            _sub(fail["relay"], normal["relay"]),
            _sub(fail["litellm"], normal["litellm"]),
        )
    return rows


def _error_count(res: dict, phase: str, name: str) -> int | None:
    node = _get(res, phase, name)
    return (node.get("status_errors") or 0) + (node.get("other_errors") or 0) if node else None


def _errors(res: dict, phase: str) -> dict:
    return {name: _error_count(res, phase, name) for name in ("direct", "relay", "litellm")}


def build_targets(res: dict, rows: list[dict], cfg: Config) -> list[dict]:
    by = {r["metric"]: r for r in rows}
    checks = []

    def check(name: str, value, goal: str, met):
        checks.append({"target": name, "value": value, "goal": goal, "met": met})

    tput = by["throughput at N connections"]
    check(
        "throughput at N connections ≥ 4× LiteLLM",
        tput["relay_vs_litellm"],
        "≥ 4.0",
        None if tput["relay_vs_litellm"] is None else tput["relay_vs_litellm"] >= 4,
    )
    added = by["sequential added p50 (over direct)"]
    check(
        "sequential added p50 ≤ ¼ of LiteLLM's",
        added["relay_vs_litellm"],
        "≤ 0.25",
        None if added["relay_vs_litellm"] is None else added["relay_vs_litellm"] <= 0.25,
    )
    peak = _get(res, "streams", "relay", "rss_peak_mb")
    ok = _get(res, "streams", "relay", "ok")
    check(
        f"{cfg.streams} concurrent streams in one process < 300 MB RSS, no errors",
        peak,
        "< 300 MB",
        None if peak is None else peak < 300 and ok == cfg.streams,
    )
    round_trip = _get(res, "sequential", "direct", "p50_ms")
    fail = by["failover added p50, upstream answers 429"]["relay"]
    budget = None if round_trip is None else round(round_trip + 5, 3)
    check(
        "failover adds < one upstream round trip + 5 ms",
        fail,
        f"< {budget} ms",
        None if fail is None or budget is None else fail < budget,
    )
    for metric in ("throughput at N connections, N tokens of N users",):
        ratio = by[metric]["relay_vs_litellm"]
        check(
            "throughput at N connections, N tokens of N users ≥ 4× LiteLLM",
            ratio,
            "≥ 4.0",
            None if ratio is None else ratio >= 4,
        )
    share = tput["relay_vs_direct"]
    check(
        "throughput at N connections ≥ 2% of the direct upstream's",
        share,
        "≥ 0.02",
        None if share is None else share >= 0.02,
    )
    return checks


MONEY_ROWS = (
    ("calls", "calls measured (usage records written)", "count"),
    ("transactions_per_call", "PostgreSQL transactions per call", "count"),
    ("rollbacks_per_call", "PostgreSQL rollbacks per call", "count"),
    ("rows_written_per_call", "rows inserted/updated/deleted per call", "count"),
    ("wallet_updates_per_call", "wallet row updates per call", "count"),
    ("token_updates_per_call", "token row updates per call", "count"),
    ("ledger_lines_per_call", "ledger lines per call", "count"),
    ("usage_record_writes_per_call", "usage record writes per call", "count"),
    ("pg_cpu_ms_per_call", "PostgreSQL backend CPU per call", "ms"),
)
MONEY_PHASES = (
    ("sequential", "sequential"),
    ("concurrent", "N conn., 1 token"),
    ("spread", "N conn., N tokens"),
)


def _statement_label(key: str) -> str:
    word = key.removeprefix("statements_")
    if word == "empty":
        return "empty queries per call (wire: the pool's connection checks)"
    return f"{word.upper()} statements per call (wire)"


def build_money(res: dict) -> list[dict]:
    """The money path per call in each phase (relay calls, under every ASGI server measured)."""
    money = res.get("money") or {}
    if not money:
        return []
    rows = [
        {"metric": label, "unit": unit, **{p: _get(money, p, key) for p, _ in MONEY_PHASES}}
        for key, label, unit in MONEY_ROWS
    ]
    wire = {p: _get(money, p, "wire") for p, _ in MONEY_PHASES}
    if any(wire.values()):
        statements = sorted(
            {k for v in wire.values() if v for k in v["per_call"] if k.startswith("statements_")}
        )
        for key, label in (
            ("calls", "calls counted on the wire (relay of its own through bench/pgwire.py)"),
            ("statements", "statements per call (wire)"),
            ("round_trips", "round trips per call (wire: Query or Sync)"),
            *((k, _statement_label(k)) for k in statements),
            ("parses", "statements parsed per call (wire)"),
            ("connections", "new connections per call (wire)"),
        ):
            rows.append(
                {
                    "metric": label,
                    "unit": "count",
                    **{
                        p: (v["calls"] if key == "calls" else v["per_call"].get(key, 0)) if v else None
                        for p, v in wire.items()
                    },
                }
            )
    ledger = {p: _get(money, p, "ledger") for p, _ in MONEY_PHASES}
    if any(ledger.values()):
        rows.append(
            {
                "metric": "ledger calls per batch (batch_stats)",
                "unit": "count",
                **{p: _get(v, "calls_per_batch") for p, v in ledger.items()},
            }
        )
        keys = sorted({k for v in ledger.values() if v for k in v["delta"]})
        for key in keys:
            rows.append(
                {
                    "metric": f"ledger {key} per relay call (batch_stats)",
                    "unit": "count",
                    **{p: _ratio(_get(v, "delta", key), _get(money, p, "calls")) for p, v in ledger.items()},
                }
            )
    return rows


ASGI_ROWS = (
    ("sequential latency p50", "ms", ("sequential", "p50_ms")),
    ("throughput at N connections", "req/s", ("concurrent", "rps")),
    ("latency p99 at N connections", "ms", ("concurrent", "p99_ms")),
    ("throughput at N connections, N tokens", "req/s", ("spread", "rps")),
    ("latency p99 at N connections, N tokens", "ms", ("spread", "p99_ms")),
    ("CPU per call, sequential", "ms", ("sequential", "cpu_ms_per_call")),
    ("CPU per call at N connections", "ms", ("concurrent", "cpu_ms_per_call")),
    ("CPU per call at N connections, N tokens", "ms", ("spread", "cpu_ms_per_call")),
    ("stream time to first byte p50", "ms", ("stream_ttfb", "ttfb_p50_ms")),
)


def build_asgi(res: dict) -> list[dict]:
    """The relay under uvicorn and under granian, when granian was measured."""
    if not _get(res, "sequential", "granian"):
        return []
    rows = []
    for metric, unit, (phase, key) in ASGI_ROWS:
        uvicorn, granian = _get(res, phase, "relay", key), _get(res, phase, "granian", key)
        rows.append(
            {
                "metric": metric,
                "unit": unit,
                "uvicorn": uvicorn,
                "granian": granian,
                "granian_vs_uvicorn": _ratio(granian, uvicorn),
            }
        )
    for phase, metric in (("concurrent", "errors at N connections"), ("spread", "errors, N tokens")):
        rows.append(
            {
                "metric": metric,
                "unit": "count",
                "uvicorn": _error_count(res, phase, "relay"),
                "granian": _error_count(res, phase, "granian"),
                "granian_vs_uvicorn": None,
            }
        )
    return rows


def build_limits(res: dict, cfg: Config, cores: int) -> list[str]:
    """What bounds the measured figures in this run, from its own CPU and lock evidence."""
    notes = []
    budget = cores * 1000  # CPU ms per second on this machine
    upstream = _get(res, "concurrent", "direct", "cpu_ms_per_call")
    litellm_rps = _get(res, "concurrent", "litellm", "rps")
    for phase, label in (("concurrent", "1 token"), ("spread", f"{cfg.spread_tokens} tokens")):
        relay = _get(res, phase, "relay", "cpu_ms_per_call")
        pg = _get(res, "money", phase, "pg_cpu_ms_per_call")
        rps = _get(res, phase, "relay", "rps")
        if relay is None or rps is None:
            continue
        total = relay + (pg or 0) + (upstream or 0)
        note = (
            f"{cfg.connections} conn., {label}: a relay call costs {relay:.2f} ms of relay CPU"
            f" + {pg or 0:.2f} ms of PostgreSQL backends + {upstream or 0:.2f} ms of the upstream"
            f" = {total:.2f} ms; {cores} cores (shared with Redis and the load generator) allow at"
            f" most {budget / total:,.0f} req/s, measured {rps:,.0f}"
            f" ({rps * total / budget:.0%} of that CPU bound)"
        )
        lite = _get(res, phase, "litellm", "rps")
        if lite:
            note += (
                f"; 4× LiteLLM's {lite:,.0f} req/s needs ≤ {budget / (4 * lite):.2f} ms of CPU"
                " per call in all"
            )
        notes.append(note + ".")
    sequential = _sequential_limit(res, cores)
    if sequential:
        notes.append(sequential)
    one, spread = _get(res, "concurrent", "relay", "rps"), _get(res, "spread", "relay", "rps")
    if one and spread:
        verdict = (
            "calls of one token queue on its token and wallet rows"
            if spread > 1.15 * one
            else "per-token row locks are not what bounds it"
        )
        notes.append(
            f"One token vs {cfg.spread_tokens} tokens of as many users: {one:,.0f} vs {spread:,.0f}"
            f" req/s ({spread / one:.2f}×): {verdict}."
        )
    money = _get(res, "money", "concurrent")
    if money:
        batch = _get(money, "ledger", "calls_per_batch")
        notes.append(
            f"Money path at {cfg.connections} conn., 1 token: {money['transactions_per_call']}"
            f" PostgreSQL transactions and {money['wallet_updates_per_call']} wallet row updates"
            " per call"
            + (f", {batch} ledger calls per batch" if batch else " (no ledger batch counters)")
            + "."
        )
    lite = _get(res, "concurrent", "litellm", "cpu_ms_per_call")
    if litellm_rps and lite:
        notes.append(
            f"LiteLLM: {lite:.2f} ms of CPU per call at {cfg.connections} conn., {litellm_rps:,.0f} req/s."
        )
    direct = _get(res, "concurrent", "direct", "rps")
    if direct:
        notes.append(
            f"2% of the direct upstream's {direct:,.0f} req/s is {direct * 0.02:,.0f} req/s, i.e."
            f" ≤ {budget / (direct * 0.02):.2f} ms of CPU per relay call in all."
        )
    return notes


def _sequential_limit(res: dict, cores: int) -> str | None:
    """What one sequential call's added latency is made of: the CPU it costs the relay and
    PostgreSQL, spent one after the other (the call waits for each), against the time added."""
    direct = _get(res, "sequential", "direct", "p50_ms")
    relay = _get(res, "sequential", "relay", "p50_ms")
    relay_cpu = _get(res, "sequential", "relay", "cpu_ms_per_call")
    if direct is None or relay is None or relay_cpu is None:
        return None
    added = relay - direct
    pg = _get(res, "money", "sequential", "pg_cpu_ms_per_call") or 0
    trips = _get(res, "money", "sequential", "wire", "per_call", "round_trips")
    on_path = relay_cpu + pg
    note = (
        f"Sequential (one connection): the relay adds {added:.2f} ms p50 to the direct upstream;"
        f" a call costs {relay_cpu:.2f} ms of relay CPU + {pg:.2f} ms of PostgreSQL backends"
        + (f" ({trips:g} round trips to PostgreSQL, 3 to Redis)" if trips is not None else "")
        + f" = {on_path:.2f} ms, {on_path / added:.0%} of the time added: CPU spent in turn, not"
        f" waiting, on {cores} cores shared with the load generator, Redis and the upstream"
    )
    litellm = _get(res, "sequential", "litellm", "p50_ms")
    if litellm is not None:
        quarter = (litellm - direct) / 4
        verdict = "met" if added <= quarter else f"{added - quarter:.2f} ms short"
        note += f"; ¼ of LiteLLM's {litellm - direct:.2f} ms is {quarter:.2f} ms ({verdict})"
    return note + "."


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer() or unit in ("ms",):
        return f"{value:,.2f}"
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def fmt_ratio(value) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _label(text: str, cfg: dict) -> str:
    text = text.replace("N connections", f"{cfg['connections']} conn.")
    text = text.replace("N conn.", f"{cfg['connections']} conn.")
    text = text.replace("N tokens", f"{cfg['spread_tokens']} tokens")
    text = text.replace("N users", f"{cfg['spread_tokens']} users")
    return text.replace("held streams", f"{cfg['streams']} streams")


def _table(header: list[str], body: list[list[str]], *, markdown: bool) -> list[str]:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return lines + ["| " + " | ".join(row) + " |" for row in body]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False))
    return [line, "-" * len(line)] + [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False))
        )
        for row in body
    ]


def render(report: dict, *, markdown: bool) -> str:
    cfg = report["config"]
    header = ["metric", "unit", "direct", "relay", "LiteLLM", "relay ÷ LiteLLM", "relay ÷ direct"]
    body = [
        [
            _label(r["metric"], cfg),
            r["unit"],
            fmt(r["direct"], r["unit"]),
            fmt(r["relay"], r["unit"]),
            fmt(r["litellm"], r["unit"]),
            fmt_ratio(r["relay_vs_litellm"]),
            fmt_ratio(r["relay_vs_direct"]),
        ]
        for r in report["rows"]
    ]
    targets = [
        [
            _label(t["target"], cfg),
            fmt(t["value"]),
            t["goal"],
            {True: "met", False: "NOT met", None: "—"}[t["met"]],
        ]
        for t in report["targets"]
    ]
    m = report["machine"]
    about = (
        f"Machine: {m['cpu']} ({m['cores']} cores), {m['memory_gb']} GB RAM, {m['os']}, "
        f"Python {m['python']}; load average at start {m['load_start']}. "
        f"Relay: {cfg['workers']} uvicorn workers, "
        f"{report['backend']['database']} + {report['backend']['cache']}, billing and usage records on. "
        f"LiteLLM {report.get('litellm_version') or '—'}: {cfg['workers']} workers, no database, no retries. "
        f"Load generator: {report['loadgen']}. {cfg['rounds']} alternating rounds per phase; "
        f"nice {report['nice']}; "
        f"run {report['started']}. CPU per call: user + system time of the server's processes "
        "(the relay's or LiteLLM's workers, the upstream's for direct) ÷ calls."
    )
    lines = [about, ""]
    lines += _table(header, body, markdown=markdown)
    lines += [""]
    if markdown:
        lines += _table(["target", "reached", "goal", ""], targets, markdown=True)
    else:
        lines += ["targets:"] + [f"  {t[0]}: {t[1]} (goal {t[2]}) — {t[3]}" for t in targets]
    if report.get("limits"):
        lines += ["", "What limits them in this run:" if markdown else "limits:"]
        lines += [f"- {_label(note, cfg)}" for note in report["limits"]]
    if report.get("money"):
        phases = [_label(label, cfg) for _, label in MONEY_PHASES]
        money_body = [
            [_label(r["metric"], cfg), r["unit"], *(fmt(r[p], r["unit"]) for p, _ in MONEY_PHASES)]
            for r in report["money"]
        ]
        lines += [
            "",
            "Money path of the relay, per call (PostgreSQL's counters for database `bench`; "
            "ledger batch counters when the relay keeps them):",
            "",
        ]
        lines += _table(["money path", "unit", *phases], money_body, markdown=markdown)
    if report.get("asgi"):
        asgi_body = [
            [
                _label(r["metric"], cfg),
                r["unit"],
                fmt(r["uvicorn"], r["unit"]),
                fmt(r["granian"], r["unit"]),
                fmt_ratio(r["granian_vs_uvicorn"]),
            ]
            for r in report["asgi"]
        ]
        lines += [
            "",
            f"ASGI server for the relay, same run: uvicorn {report.get('uvicorn_version') or '—'} "
            f"vs granian {report.get('granian_version') or '—'} ({cfg['workers']} workers each, "
            "uvloop, HTTP/1):",
            "",
        ]
        lines += _table(
            ["relay", "unit", "uvicorn", "granian", "granian ÷ uvicorn"], asgi_body, markdown=markdown
        )
    billing = report.get("billing") or {}
    if billing and markdown:
        lines += [
            "",
            f"Billing check: {billing.get('usage_records')} usage records written for "
            f"{billing.get('relay_requests_timed')} timed relay requests (plus warm-up and streams).",
        ]
    return "\n".join(lines) + "\n"


def machine_info() -> dict:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_start": round(os.getloadavg()[0], 2),
    }


def package_version(package: str, venv: Path | None = None) -> str | None:
    python = venv / "bin" / "python" if venv else Path(PY)
    if not python.exists():
        return None
    out = subprocess.run(  # noqa: S603
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip() or None


def update_readme(markdown: str) -> bool:
    text = README.read_text()
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    README.write_text(head + README_START + "\n" + markdown + README_END + tail)
    return True


def _interrupted(*_) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Relay vs LiteLLM vs direct upstream benchmark.")
    parser.add_argument(
        "--skip-litellm", action="store_true", help="measure the direct upstream and relay only"
    )
    parser.add_argument("--out", help="JSON output path (default bench/results/latest.json)")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    args = parser.parse_args(argv)
    cfg = Config()
    if args.skip_litellm:
        cfg.litellm = False
    if args.out:
        cfg.out = args.out
    if args.no_readme:
        cfg.readme = False
    machine = machine_info()
    bench = Bench(cfg)
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        bench.start()
        results = bench.run()
        billing = bench.billing()
    except Exception:
        for svc in bench.services:
            log(f"{svc.name} log tail:\n{svc.tail()}")
        raise
    finally:
        bench.stop_all()
        shutil.rmtree(bench.tmp, ignore_errors=True)
    machine["load_end"] = round(os.getloadavg()[0], 2)
    rows = build_rows(results)
    report = {
        "started": bench.started.isoformat(timespec="seconds"),
        "machine": machine,
        "config": asdict(cfg) | {"database_url": None, "redis_url": None},
        "backend": bench.backend,
        "loadgen": bench.load.name,
        "nice": int(os.environ.get("BENCH_NICE", "0")),
        "litellm_version": package_version("litellm", LITELLM_VENV) if cfg.litellm else None,
        "uvicorn_version": package_version("uvicorn"),
        "granian_version": package_version("granian", GRANIAN_VENV) if bench.granian else None,
        "results": results,
        "billing": billing,
        "rows": rows,
    }
    report["targets"] = build_targets(results, rows, cfg)
    report["limits"] = build_limits(results, cfg, machine["cores"])
    report["money"] = build_money(results)
    report["asgi"] = build_asgi(results)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    markdown = render(report, markdown=True)
    out.with_suffix(".md").write_text(markdown)
    print(render(report, markdown=False))
    log(f"wrote {out} and {out.with_suffix('.md')}")
    if cfg.readme and update_readme(markdown):
        log("README.md Performance section updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
