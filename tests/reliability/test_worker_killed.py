"""A Celery worker SIGKILLed mid-task: the work resumes on a new worker and money moves once.

Real worker processes (prefork, as deployed) and beat on the Redis broker, the PostgreSQL test
database, the in-process relay and the simulated upstreams. Each worker runs in its own process
group, so SIGKILL takes it down with its pool children at once, as a crashed machine would.
Polls for conditions with generous timeouts; nothing here measures time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction

from apiyi_admin.demo import USD_CNY_RATE as RATE
from billing.models import LedgerEntry, UsageRecord, Wallet
from groups import saturation
from groups.models import Channel, ChannelHealth
from relay.models import VideoJob
from relay.tasks import video_job_poll

SORA_4S = int(Decimal("0.4") * RATE * 1_000_000)  # sora-2, 4 s × $0.10 × rate

pytestmark = [pytest.mark.live, pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[2]
VISIBILITY_S = 12  # a dead worker's unacknowledged messages go to the next worker after this
SLOW_MS = 600_000  # an upstream that never answers while the worker is alive
START_S = 90
SETTLE_S = 90
BROKER_KEYS = ("celery", "unacked", "unacked_index", "unacked_mutex")


def _wait(what: str, check, timeout: float, procs=()):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args[3:5]} exited with {proc.returncode} waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


class Cluster:
    """Worker and beat processes on the test database and this test's Redis db."""

    def __init__(self, tmp_path: Path, **env):
        db = connection.settings_dict
        self.tmp_path = tmp_path
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "apiyi_admin.settings",
            "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}",
            "REDIS_URL": settings.REDIS_URL,
            "SECRET_KEY": settings.SECRET_KEY,
            "KEY_HASH_SECRET": settings.KEY_HASH_SECRET,
            "FERNET_KEYS": ",".join(settings.FERNET_KEYS),
            "VAR_DIR": str(tmp_path / "var"),
            "CELERY_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S),
            "DB_POOL_MIN": "1",
            "DB_POOL_MAX": "4",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.env.pop("CACHE_KEY_PREFIX", None)
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = self.tmp_path / f"{name}-{len(self.logs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "apiyi_admin", *args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killpg reaches the pool children
            )
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def worker(self) -> subprocess.Popen:
        """A prefork worker (the deployed pool), returned once it consumes."""
        name = f"w{len(self.logs)}@%h"
        proc = self._start("worker", ["worker", "-c", "2", "--loglevel", "info", "-n", name])
        log = self.logs[-1]
        _wait("the worker to be ready", lambda: b" ready." in log.read_bytes(), START_S, [proc])
        return proc

    def beat(self) -> subprocess.Popen:
        return self._start("beat", ["beat", "--loglevel", "info", "-s", str(self.tmp_path / "beat-schedule")])

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """The whole worker, pool children included."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    @staticmethod
    def kill_pool(proc: subprocess.Popen) -> None:
        """Only the pool children (as the OOM killer might); the worker itself lives on."""
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert children, "the prefork worker has no pool children"
        for pid in children:
            os.kill(int(pid), signal.SIGKILL)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def dump_logs(self) -> None:
        for log in self.logs:
            print(f"--- {log.name} ---\n{log.read_text(errors='replace')[-4000:]}")


def _broker_clear() -> None:
    """Drop Celery's queue and unacknowledged messages on this run's own Redis db only."""
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(*BROKER_KEYS)


@pytest.fixture
def cluster(live, tmp_path, request):
    """The live relay queues real poll messages (not eager) for workers started by the test."""
    from apiyi_admin.celery import app

    app.conf.task_always_eager = False  # the live fixture restores its own setting afterwards
    _broker_clear()
    procs = Cluster(tmp_path, **getattr(request, "param", {}))
    try:
        yield procs
    finally:
        procs.stop()
        _broker_clear()


def _upstream_in_flight(sim, upstream: str) -> int:
    return sim.stats().get(upstream, {}).get("in_flight", 0)


@pytest.mark.parametrize(
    ("outcome", "killed"), [("completed", "worker"), ("failed", "worker"), ("completed", "pool")]
)
def test_video_job_settles_once_after_its_worker_is_killed_mid_poll(live, cluster, outcome, killed):
    """The poll is acknowledged only when done, so the killed worker's message runs again: on a
    new worker after the visibility timeout when the whole worker died, at once on a fresh pool
    child when only the children did. The job is charged (or its hold released on an upstream
    failure) exactly once."""
    failed = outcome == "failed"
    rule = {"upstream": "sora", "video_ms": 2000, "error": "video_failed" if failed else None}
    live.sim.configure(**rule)
    key = live.make_key(select="Sora2Official")
    user_id = live.token_of(key).user_id
    start = Wallet.objects.get(user_id=user_id).balance_micro
    worker = cluster.worker()

    video = live.openai(key=key).videos.create(model="sora-2", prompt="a slow lighthouse", seconds="4")
    live.sim.configure(**rule, latency_ms=SLOW_MS)  # the status GET now hangs
    job = VideoJob.objects.get(pk=video.id)
    try:
        _wait("the poll GET", lambda: _upstream_in_flight(live.sim, "sora") >= 1, START_S, [worker])
        job.refresh_from_db()
        assert job.settled_at is None and job.status == "queued"
        assert Wallet.objects.get(user_id=user_id).held_micro == job.hold_micro > 0
        live.sim.configure(**rule)  # the next GET is answered at once

        if killed == "worker":
            cluster.kill(worker)
            worker = cluster.worker()
        else:
            cluster.kill_pool(worker)
        _wait(
            "the job to settle after the kill",
            lambda: VideoJob.objects.filter(pk=job.pk, settled_at__isnull=False).exists(),
            SETTLE_S,
            [worker],
        )
    except BaseException:
        cluster.dump_logs()
        raise

    job.refresh_from_db()
    assert job.status == outcome
    assert job.poll_seq == 0  # settled by the redelivered first poll, not by a restarted chain
    assert live.sim.stats()["sora"]["requests"] >= 3  # submit, the killed poll's GET, the redelivered one's

    # Asking again (the client's GET, a stray poll) changes nothing.
    assert live.openai(key=key).videos.retrieve(video.id).status == outcome
    assert video_job_poll.apply(args=(job.pk, 0)).result == "done"

    rid = job.request_id
    assert UsageRecord.objects.filter(request_id=rid).count() == 1
    record = UsageRecord.objects.get(request_id=rid)
    kinds = sorted(LedgerEntry.objects.filter(request_id=rid).values_list("kind", flat=True))
    wallet = Wallet.objects.get(user_id=user_id)
    if failed:
        assert (record.status, record.cost_micro, job.cost_micro) == ("error", 0, 0)
        assert kinds == ["hold", "release"]
        assert wallet.balance_micro == start
    else:
        assert record.status == "success" and record.cost_micro == job.cost_micro == SORA_4S
        assert kinds == ["charge", "hold", "release"]
        assert wallet.balance_micro == start - SORA_4S
    assert wallet.held_micro == 0
    call_command("reconcile")  # raises CommandError when a wallet is out of balance


@pytest.mark.parametrize("cluster", [{"PROBE_TICK_S": "1", "PROBE_TIMEOUT_S": "300"}], indirect=True)
def test_probing_resumes_after_the_worker_is_killed_mid_probe(live, cluster):
    """A probe hangs on a slow upstream when its worker dies: beat keeps ticking, a new worker
    probes again, verdicts are written and the shared routing state agrees with them."""
    channel = Channel.objects.get(name="claude-official")
    Channel.objects.exclude(pk=channel.pk).update(enabled=False)
    Channel.objects.filter(pk=channel.pk).update(probe_interval_s=3)
    live.sim.configure(upstream="claude-official", latency_ms=SLOW_MS)
    procs = [cluster.beat(), first := cluster.worker()]
    try:
        _wait("a probe in flight", lambda: _upstream_in_flight(live.sim, channel.name) >= 1, START_S, procs)
        cluster.kill(first)
        assert not ChannelHealth.objects.filter(channel=channel).exists()  # it died mid-call

        live.sim.configure(upstream="claude-official", latency_ms=0)
        procs = [procs[0], cluster.worker()]
        _wait(
            "two verdicts from the new worker",
            lambda: ChannelHealth.objects.filter(channel=channel, verdict="healthy").count() >= 2,
            SETTLE_S,
            procs,
        )
    except BaseException:
        cluster.dump_logs()
        raise

    latest = ChannelHealth.objects.filter(channel=channel).first()
    assert (latest.verdict, latest.routing_verdict, latest.status_code) == ("healthy", "healthy", 200)
    assert not ChannelHealth.objects.filter(channel=channel).exclude(verdict="healthy").exists()
    assert saturation.verdict_get(channel.pk)["verdict"] == "healthy"
    assert saturation.probe_next_many([channel.pk])[channel.pk] > time.time() - 10  # still scheduled
    with transaction.atomic():  # nothing left the channel row locked
        Channel.objects.select_for_update(nowait=True).get(pk=channel.pk)
    channel.refresh_from_db()
    assert channel.enabled and not channel.auto_disabled
