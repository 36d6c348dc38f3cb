"""The settlement spool: settlements that could not commit (the database was unreachable) are
kept on local disk and replayed once it answers again, so a call that was served is charged.

Why an append-only file and not Redis: the Redis here keeps nothing on disk (no RDB, no AOF)
and is itself a service that can be down; a file on the relay's own disk has neither problem
and costs one `write` + `fsync` per batch. Each process appends to a file of its own
(`settle-<pid>-<ns>.jsonl` under `BILLING_SPOOL_DIR`), so lines never interleave, and holds an
exclusive `flock` on it while it lives: a file nobody holds belongs to a dead process (or was
handed over for replay) and any replayer may take it. Concurrent appends of one process share
one fsync (group commit). A line is one JSON object with everything the settlement needs.

Replay (`replay`) is idempotent by request id: `PortableLedger.settle` claims the usage record
once, so replaying an entry that did commit (the connection broke after COMMIT), or replaying
a file again after a crash mid-replay, changes nothing. A replayed file is removed, or, when
some entries must wait, atomically replaced (write a temporary file, fsync, rename) by the
entries still waiting: at every instant the path holds either the old lines or the new ones.

The hold sweeper may release a spooled call's hold before replay (the outage outlasted
`BILLING_HOLD_STALE_AFTER_S`, or the spool of a dead node comes back late). The sweeper does
not look for spooled entries: the spool lives on each relay node's own disk, which the worker
cannot see. Instead a settlement that finds its record "abandoned" by the sweeper charges the
wallet directly (`_charge_after_release`), once (it rewrites that record, guarded by its
"abandoned" state and the unique charge line), without overdraft (a shortfall is recorded as
uncollected). Either order ends with the call charged exactly once.

Replay runs in the relay process that spooled (a rate-limited task on its event loop, started
by the first entry and ended once nothing waits), from the worker's beat
(`billing.tasks.spool_replay`, for files of dead processes), and with `manage.py replay_spool`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from core.db import db_async_detached
from tokens.models import Token

from .ledger import get_ledger, wallet_move
from .models import LedgerEntry, LedgerKind, UsageRecord, Wallet
from .sweeper import ABANDONED

logger = logging.getLogger(__name__)

PATTERN = "settle-*.jsonl"
VERSION = 1


def spool_dir() -> Path:
    return Path(settings.BILLING_SPOOL_DIR)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open on `fd` (a replayer may have replaced it)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def encode(*, request_id: str, user_id: int, cost_micro: int, record: dict, hold_micro: int | None) -> bytes:
    """One spool line: the settlement's arguments, and when and by whom it was spooled."""
    entry = {
        "v": VERSION,
        "request_id": request_id,
        "user_id": user_id,
        "cost_micro": cost_micro,
        "hold_micro": hold_micro,
        "record": record,
        "spooled_at": datetime.now(UTC).isoformat(),
        "pid": os.getpid(),
    }
    return orjson.dumps(entry, default=str) + b"\n"


def decode(line: bytes) -> dict | None:
    """The entry on a line, None when the line is not one (cut by a crash, or damaged)."""
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(entry, dict) or entry.get("v") != VERSION:
        return None
    if not isinstance(entry.get("request_id"), str) or not isinstance(entry.get("record"), dict):
        return None
    if not all(isinstance(entry.get(name), int) for name in ("user_id", "cost_micro")):
        return None
    return entry


class _Writer:
    """This process's spool file, appended to with one fsync per batch of concurrent appends."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()  # the queue and counters
        self._writing = threading.Lock()  # one batch at a time
        self._reset()

    def _reset(self) -> None:
        self._fd: int | None = None
        self._dir: Path | None = None
        self._queue: list[bytes] = []
        self._next = 0  # sequence number of the next line appended
        self._done = 0  # every line numbered below this has been written (or failed)
        self._failed: dict[int, OSError] = {}
        self.unreplayed = 0  # lines in the current file

    def after_fork(self) -> None:
        """A forked child must not share its parent's file (nor its lock)."""
        self._mutex = threading.Lock()
        self._writing = threading.Lock()
        self._reset()

    def append(self, line: bytes) -> None:
        """Write the line durably (fsynced) before returning; OSError if it could not be."""
        with self._mutex:
            seq = self._next
            self._next += 1
            self._queue.append(line)
        with self._writing:
            with self._mutex:
                if seq < self._done:  # an earlier batch took this line along
                    failure = self._failed.pop(seq, None)
                    if failure is not None:
                        raise failure
                    return
                batch, self._queue = self._queue, []
                upto = self._next
            try:
                fd = self._open()
                data = b"".join(batch)
                while data:
                    data = data[os.write(fd, data) :]
                os.fsync(fd)
            except OSError as exc:
                self._close()  # a partial line stays last in that file; the next append starts a new one
                with self._mutex:
                    self._done = upto
                    self._failed.update((s, exc) for s in range(upto - len(batch), upto) if s != seq)
                raise
            with self._mutex:
                self._done = upto
                self.unreplayed += len(batch)

    def _open(self) -> int:
        folder = spool_dir()
        if self._fd is not None and self._dir == folder:
            return self._fd
        self._close()
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            path = folder / f"settle-{os.getpid()}-{time.time_ns()}.jsonl"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, path):  # not removed by a replayer that found it empty and unheld
                break
            os.close(fd)
        _fsync_dir(folder)
        self._fd, self._dir = fd, folder
        return fd

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self.unreplayed = 0

    def hand_over(self) -> None:
        """Close the current file (releasing its lock) so a replayer may take it."""
        with self._writing:
            if self.unreplayed:
                self._close()


_writer = _Writer()
os.register_at_fork(after_in_child=_writer.after_fork)


def spool_append(*, request_id: str, user_id: int, cost_micro: int, record: dict, hold_micro: int | None):
    """Keep one settlement on disk (fsynced) for replay; OSError if the disk refused it."""
    _writer.append(
        encode(
            request_id=request_id,
            user_id=user_id,
            cost_micro=cost_micro,
            record=record,
            hold_micro=hold_micro,
        )
    )


async def settle_later(
    *, request_id: str, user_id: int, cost_micro: int, record: dict, hold_micro: int | None
) -> bool:
    """The relay's fallback when a settlement cannot commit: spool it and make sure this
    process replays it once the database answers. False if it could not even be spooled."""
    try:
        await asyncio.to_thread(
            spool_append,
            request_id=request_id,
            user_id=user_id,
            cost_micro=cost_micro,
            record=record,
            hold_micro=hold_micro,
        )
    except OSError:
        logger.exception("could not spool the settlement of %s", request_id)
        return False
    logger.warning("database unavailable: settlement of %s spooled for replay", request_id)
    _replayer.ensure_running()
    return True


# --- replay ------------------------------------------------------------------------------


@dataclass
class ReplayResult:
    settled: int = 0  # entries that settled now
    charged_after_release: int = 0  # entries whose hold the sweeper had released: charged directly
    already: int = 0  # entries that had settled before (replayed twice, or committed after all)
    waiting: int = 0  # entries kept: the database is still unreachable
    failed: int = 0  # entries kept: the settlement failed otherwise (logged)
    corrupt: int = 0  # lines that are no entry (a cut last line): skipped, moved aside, logged
    reached: bool = True  # False once the database was found unreachable

    @property
    def replayed(self) -> int:
        return self.settled + self.charged_after_release + self.already


def _record_fields(record: dict) -> dict:
    """The usage record's fields back from JSON (Decimals were written as strings)."""
    fields = {f.attname: f for f in UsageRecord._meta.concrete_fields}
    return {
        name: fields[name].to_python(value) if name in fields else value for name, value in record.items()
    }


@transaction.atomic
def _charge_after_release(entry: dict) -> bool:
    """Charge a spooled settlement whose hold the sweeper already released (see the module
    docstring): the wallet pays from its balance, as far as it goes. False when the record
    is not the sweeper's (the call settled normally, or this ran before)."""
    request_id, cost = entry["request_id"], entry["cost_micro"]
    swept = (
        UsageRecord.objects.select_for_update()
        .filter(request_id=request_id, error_code=ABANDONED, cost_micro=0)
        .values_list("pk", "hold_micro")
        .first()
    )
    if swept is None:
        return False
    pk, hold_micro = swept
    fields = _record_fields(entry["record"])
    token_id = fields.get("token_id")
    wallet = Wallet.objects.select_for_update().get(user_id=entry["user_id"])
    charged = max(0, min(cost, wallet.balance_micro))
    fields.setdefault("error_code", "")  # no longer the sweeper's: this runs once
    fields.setdefault("error_message", "")
    fields.update(
        hold_micro=hold_micro, cost_micro=cost, uncollected_micro=cost - charged, settled_at=timezone.now()
    )
    UsageRecord.objects.filter(pk=pk).update(**fields)
    if charged:
        if token_id is not None:
            Token.objects.filter(pk=token_id).update(spent_micro=F("spent_micro") + charged)
        wallet_id, balance = wallet_move(id=wallet.pk, balance_delta=-charged, held_delta=0)
        LedgerEntry.objects.create(
            wallet_id=wallet_id,
            kind=LedgerKind.CHARGE,
            amount_micro=-charged,
            balance_after_micro=balance,
            request_id=request_id,
            memo="spooled settlement after its hold was released",
        )
    logger.warning("charged spooled settlement %s after its hold was released", request_id)
    return True


def _apply(entry: dict, result: ReplayResult) -> None:
    settlement = get_ledger().settle(
        request_id=entry["request_id"],
        user_id=entry["user_id"],
        cost_micro=entry["cost_micro"],
        record=_record_fields(entry["record"]),
        hold_micro=entry["hold_micro"],
    )
    if not settlement.already_settled:
        result.settled += 1
    elif _charge_after_release(entry):
        result.charged_after_release += 1
    else:
        result.already += 1


def _lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines, and what follows the last newline (a line cut by a crash, if any)."""
    *lines, tail = data.split(b"\n")
    return [line for line in lines if line.strip()], tail


def _write_atomically(path: Path, lines: list[bytes]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"".join(line + b"\n" for line in lines))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _set_aside(path: Path, lines: list[bytes]) -> None:
    """Keep lines that are no entry beside the spool (`*.corrupt`) for an operator to read."""
    aside = path.with_name(path.name.removesuffix(".jsonl") + ".corrupt")
    fd = os.open(aside, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"".join(line + b"\n" for line in lines))
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _taken(path: Path) -> Iterator[int | None]:
    """The file's descriptor under an exclusive lock, or None when someone holds it (its live
    writer, or another replayer) or it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield fd if _same_file(fd, path) else None
    finally:
        os.close(fd)


def _replay_file(path: Path, result: ReplayResult) -> None:
    with _taken(path) as fd:
        if fd is None:
            return
        with os.fdopen(os.dup(fd), "rb") as f:
            lines, tail = _lines(f.read())
        kept, corrupt = [], [tail] if tail.strip() else []
        for line in lines:
            entry = decode(line)
            if entry is None:
                corrupt.append(line)
                continue
            if not result.reached:
                kept.append(line)
                result.waiting += 1
                continue
            try:
                _apply(entry, result)
            except (OperationalError, InterfaceError):
                result.reached = False
                kept.append(line)
                result.waiting += 1
            except (DatabaseError, ValueError, KeyError, TypeError):
                logger.exception("spooled settlement %s failed; kept in %s", entry["request_id"], path)
                kept.append(line)
                result.failed += 1
        if corrupt:
            logger.error("%s: %d line(s) that are no settlement skipped and set aside", path, len(corrupt))
            _set_aside(path, corrupt)
            result.corrupt += len(corrupt)
        if len(kept) == len(lines) and not corrupt:
            return  # nothing replayed: leave the file as it is
        if kept:
            _write_atomically(path, kept)
        else:
            path.unlink()
            path.with_name(path.name + ".tmp").unlink(missing_ok=True)
            _fsync_dir(path.parent)


def replay() -> ReplayResult:
    """Replay every spool file no live process holds (this process hands its own over first),
    oldest first; stops settling at the first sign the database is still unreachable."""
    _writer.hand_over()
    result = ReplayResult()
    folder = spool_dir()
    if not folder.is_dir():
        return result
    for path in sorted(folder.glob(PATTERN), key=lambda p: p.stat().st_mtime if p.exists() else 0):
        _replay_file(path, result)
    if result.replayed or result.corrupt:
        logger.warning("spool replay: %s", result)
    return result


class _Replayer:
    """The relay process's own replay: a task on its event loop that retries at most every
    `BILLING_SPOOL_REPLAY_INTERVAL_S` until nothing it spooled waits, nor any entry it kept after
    a failed settlement (0 turns it off)."""

    def __init__(self) -> None:
        self._task: asyncio.Task | None = None

    def ensure_running(self) -> None:
        interval = settings.BILLING_SPOOL_REPLAY_INTERVAL_S
        if interval <= 0:
            return
        if self._task is not None and not self._task.done() and not self._task.get_loop().is_closed():
            return
        # A context of its own: not the spooling call's (whose database units fail at once
        # once it found the database unreachable, see core.db._CallReach).
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(interval), context=contextvars.Context())

    async def _run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                result = await db_async_detached(replay)()
            except OperationalError:  # the relay already knows the database is unreachable
                continue
            except Exception:
                logger.exception("spool replay failed")
                continue
            if result.reached and not (_writer.unreplayed or result.waiting or result.failed):
                self._task = None
                return


_replayer = _Replayer()


# --- what is still spooled ------------------------------------------------------------------


@dataclass
class SpoolSummary:
    entries: int = 0
    total_micro: int = 0
    oldest: datetime | None = None
    corrupt: int = 0  # lines set aside, or not decodable, for an operator to look at
    request_ids: list[str] = field(default_factory=list)


def spool_summary() -> SpoolSummary:
    """What the spool still holds, read without taking any file (a snapshot)."""
    summary = SpoolSummary()
    folder = spool_dir()
    if not folder.is_dir():
        return summary
    for path in folder.glob(PATTERN):
        try:
            lines, tail = _lines(path.read_bytes())
        except FileNotFoundError:  # replayed meanwhile
            continue
        for line in lines:
            entry = decode(line)
            if entry is None:
                summary.corrupt += 1
                continue
            summary.entries += 1
            summary.total_micro += entry["cost_micro"]
            summary.request_ids.append(entry["request_id"])
            spooled = datetime.fromisoformat(entry["spooled_at"])
            summary.oldest = spooled if summary.oldest is None else min(summary.oldest, spooled)
    for path in folder.glob("settle-*.corrupt"):
        with contextlib.suppress(FileNotFoundError):
            summary.corrupt += len(_lines(path.read_bytes())[0])
    return summary
