"""The settlement spool (billing/spool.py): its file format, the fsync per batch, and replay:
idempotent by request id, safe after a crash half-way, skipping (and setting aside) a line cut
by a crash, and charging exactly once a call whose hold the sweeper released first."""

import fcntl
import os
import threading
import uuid
from decimal import Decimal

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError

from billing import spool
from billing.ledger import get_ledger
from billing.models import LedgerEntry, LedgerKind, UsageRecord, Wallet
from billing.selectors import wallets_out_of_balance
from billing.services import wallet_recharge
from billing.sweeper import holds_release_stale
from tokens.models import Token
from tokens.services import token_create

Y = 1_000_000


@pytest.fixture
def payer(make_user, groups):
    user = make_user()
    wallet_recharge(user=user, amount_micro=10 * Y, payment_ref=uuid.uuid4().hex)
    token, _ = token_create(user=user, name="t", select_group=groups["Default"])
    return user, token


def served_call(user, token, *, hold=3 * Y, cost=Y) -> dict:
    """Hold for a call, and the settlement it could not commit (what the relay spools)."""
    request_id = uuid.uuid4().hex
    get_ledger().hold(user_id=user.pk, request_id=request_id, amount_micro=hold, token_id=token.pk)
    record = {
        "token_id": token.pk,
        "model_name": "claude-sonnet-4-5",
        "status": "success",
        "http_status": 200,
        "multiplier": Decimal("0.9500"),
        "seconds": Decimal("0"),
        "trace": [{"group": "Default", "channel": "c", "outcome": "ok", "status": 200, "ms": 3}],
        "price_breakdown": {"basis": "usage", "multiplier": "0.95"},
        "input_tokens": 12,
        "output_tokens": 34,
    }
    return {
        "request_id": request_id,
        "user_id": user.pk,
        "cost_micro": cost,
        "record": record,
        "hold_micro": hold,
    }


def files():
    return sorted(p.name for p in spool.spool_dir().iterdir())


def entries_on_disk() -> list[dict]:
    out = []
    for path in sorted(spool.spool_dir().glob(spool.PATTERN)):
        out += [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return out


def charged(request_id: str) -> list[int]:
    return list(
        LedgerEntry.objects.filter(request_id=request_id, kind=LedgerKind.CHARGE).values_list(
            "amount_micro", flat=True
        )
    )


def hand_over_and_write(lines: list[bytes]) -> None:
    """A spool file as a dead process leaves it: this process's file, handed over."""
    spool._writer.hand_over()
    path = spool.spool_dir() / "settle-999999-1.jsonl"
    path.write_bytes(b"".join(lines))


@pytest.mark.django_db
def test_an_entry_is_one_json_line_with_everything_the_settlement_needs(payer):
    user, token = payer
    call = served_call(user, token)
    spool.spool_append(**call)
    spool.spool_append(**served_call(user, token))
    (name,) = files()
    assert name.startswith(f"settle-{os.getpid()}-") and name.endswith(".jsonl")
    first, second = entries_on_disk()
    assert first["request_id"] == call["request_id"] and second["request_id"] != call["request_id"]
    assert (first["user_id"], first["cost_micro"], first["hold_micro"]) == (user.pk, Y, 3 * Y)
    assert first["record"]["token_id"] == token.pk
    assert first["record"]["multiplier"] == "0.9500"
    assert first["record"]["trace"] == call["record"]["trace"]
    assert first["pid"] == os.getpid() and first["spooled_at"]
    assert spool.decode(orjson.dumps(first)) == first


@pytest.mark.django_db
def test_the_live_writers_file_is_locked_so_no_other_replayer_takes_it(payer):
    user, token = payer
    spool.spool_append(**served_call(user, token))
    (path,) = spool.spool_dir().glob(spool.PATTERN)
    fd = os.open(path, os.O_RDONLY)  # another open file description: as another process sees it
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_concurrent_appends_share_one_fsync_and_return_only_once_on_disk(monkeypatch):
    synced, first_sync, go_on = [], threading.Event(), threading.Event()
    real_fsync = os.fsync

    def fsync(fd):
        if os.path.isfile(f"/proc/self/fd/{fd}"):
            synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
            if len(synced) == 1:
                first_sync.set()
                assert go_on.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    done = []

    def append(n):
        spool._writer.append(orjson.dumps({"n": n}) + b"\n")
        done.append(n)

    first = threading.Thread(target=append, args=(0,))
    first.start()
    assert first_sync.wait(30)  # the first line is written, its fsync not finished
    others = [threading.Thread(target=append, args=(n,)) for n in range(1, 6)]
    for t in others:
        t.start()
    deadline = threading.Event()
    while spool._writer._next < 6 and not deadline.wait(0.01):
        pass
    assert done == []  # nobody returned before its line was fsynced
    go_on.set()
    for t in [first, *others]:
        t.join(30)
    assert sorted(done) == list(range(6))
    assert len(synced) == 2  # the first line alone, then the five that queued behind it together
    assert sorted(
        orjson.loads(line)["n"]
        for line in b"".join(p.read_bytes() for p in spool.spool_dir().glob(spool.PATTERN)).splitlines()
    ) == list(range(6))


@pytest.mark.django_db
def test_replay_settles_once_and_removes_the_file_whatever_the_number_of_replays(payer):
    user, token = payer
    call = served_call(user, token)
    spool.spool_append(**call)
    spool.spool_append(**call)  # the same settlement twice (e.g. spooled again after a retry)
    result = spool.replay()
    assert (result.settled, result.already, result.waiting, result.corrupt) == (1, 1, 0, 0)
    assert files() == []
    assert spool.replay().replayed == 0
    assert charged(call["request_id"]) == [-Y]
    record = UsageRecord.objects.get(request_id=call["request_id"])
    assert (record.cost_micro, record.hold_micro, record.multiplier) == (Y, 3 * Y, Decimal("0.95"))
    assert (record.input_tokens, record.output_tokens, record.status) == (12, 34, "success")
    assert record.trace == call["record"]["trace"]
    assert Wallet.objects.get(user=user).balance_micro == 9 * Y
    assert Token.objects.get(pk=token.pk).spent_micro == Y
    assert wallets_out_of_balance() == []


@pytest.mark.django_db
def test_a_settlement_that_did_commit_before_the_connection_broke_is_not_charged_again(payer):
    user, token = payer
    call = served_call(user, token)
    get_ledger().settle(**call)  # committed; the relay never heard back
    spool.spool_append(**call)
    assert spool.replay().already == 1
    assert charged(call["request_id"]) == [-Y]
    assert wallets_out_of_balance() == []


class Crash(BaseException):
    """The replaying process dies (nothing of `replay` runs after this)."""


@pytest.mark.django_db
def test_a_crash_in_the_middle_of_replay_loses_nothing_and_charges_nothing_twice(payer, monkeypatch):
    user, token = payer
    calls = [served_call(user, token, cost=(n + 1) * Y // 10) for n in range(3)]
    for call in calls:
        spool.spool_append(**call)
    real_apply = spool._apply
    applied = []

    def crash_on_the_third(entry, result):
        if len(applied) == 2:
            raise Crash
        real_apply(entry, result)
        applied.append(entry["request_id"])

    monkeypatch.setattr(spool, "_apply", crash_on_the_third)
    with pytest.raises(Crash):
        spool.replay()
    assert len(entries_on_disk()) == 3  # the file is as it was: two of its entries are settled already
    monkeypatch.undo()
    result = spool.replay()
    assert (result.already, result.settled) == (2, 1)
    assert files() == []
    assert [charged(c["request_id"]) for c in calls] == [[-Y // 10], [-2 * Y // 10], [-3 * Y // 10]]
    assert wallets_out_of_balance() == []


@pytest.mark.django_db
def test_a_line_cut_by_a_crash_is_skipped_set_aside_and_reported(payer):
    user, token = payer
    calls = [served_call(user, token) for _ in range(2)]
    lines = [spool.encode(**c) for c in calls]
    hand_over_and_write([*lines, lines[0][:40]])  # the last append was cut mid-line
    assert spool.spool_summary().entries == 2
    result = spool.replay()
    assert (result.settled, result.corrupt) == (2, 1)
    assert files() == ["settle-999999-1.corrupt"]
    assert (spool.spool_dir() / "settle-999999-1.corrupt").read_bytes() == lines[0][:40] + b"\n"
    summary = spool.spool_summary()
    assert (summary.entries, summary.corrupt) == (0, 1)
    assert all(charged(c["request_id"]) == [-Y] for c in calls)


@pytest.mark.django_db
def test_while_the_database_is_unreachable_entries_wait_in_their_file(payer, monkeypatch):
    user, token = payer
    calls = [served_call(user, token) for _ in range(3)]
    for call in calls:
        spool.spool_append(**call)
    real_settle = get_ledger().settle
    seen = []

    def down_after_the_first(**kwargs):
        seen.append(kwargs["request_id"])
        if len(seen) > 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real_settle(**kwargs)

    monkeypatch.setattr(get_ledger(), "settle", down_after_the_first)
    result = spool.replay()
    assert (result.settled, result.waiting, result.reached) == (1, 2, False)
    assert len(seen) == 2  # it stopped trying at the first sign of the outage
    assert [e["request_id"] for e in entries_on_disk()] == [c["request_id"] for c in calls[1:]]
    assert not list(spool.spool_dir().glob("*.tmp"))
    monkeypatch.undo()
    assert spool.replay().settled == 2
    assert files() == []
    assert all(charged(c["request_id"]) == [-Y] for c in calls)


@pytest.mark.django_db
def test_an_entry_that_fails_otherwise_stays_spooled_and_the_others_settle(payer):
    user, token = payer
    broken = {**served_call(user, token), "cost_micro": -5}  # InvalidAmount: a bug, not an outage
    good = served_call(user, token)
    spool.spool_append(**broken)
    spool.spool_append(**good)
    result = spool.replay()
    assert (result.settled, result.failed, result.reached) == (1, 1, True)
    assert [e["request_id"] for e in entries_on_disk()] == [broken["request_id"]]
    with pytest.raises(CommandError, match="failed"):
        call_command("replay_spool")


@pytest.mark.django_db
@pytest.mark.parametrize("cost", [Y, 12 * Y])
def test_a_call_whose_hold_the_sweeper_released_first_is_still_charged_exactly_once(payer, cost):
    """The outage outlasted the sweeper's patience: the late settlement charges the balance."""
    user, token = payer
    call = served_call(user, token, cost=cost)
    spool.spool_append(**call)
    assert holds_release_stale(older_than_s=0) == 1
    assert Wallet.objects.get(user=user).balance_micro == 10 * Y  # the hold came back
    result = spool.replay()
    assert result.charged_after_release == 1
    assert spool.replay().replayed == 0
    spool.spool_append(**call)  # replayed once more (e.g. a crash before the file was removed)
    assert spool.replay().already == 1
    paid = min(cost, 10 * Y)  # never overdrawn: the rest is uncollected
    assert charged(call["request_id"]) == [-paid]
    record = UsageRecord.objects.get(request_id=call["request_id"])
    assert (record.status, record.error_code, record.cost_micro) == ("success", "", cost)
    assert (record.uncollected_micro, record.hold_micro, record.input_tokens) == (cost - paid, 3 * Y, 12)
    assert Wallet.objects.get(user=user).balance_micro == 10 * Y - paid
    assert Token.objects.get(pk=token.pk).spent_micro == paid
    assert Token.objects.get(pk=token.pk).held_micro == 0
    assert wallets_out_of_balance() == []


@pytest.mark.django_db
def test_a_spooled_release_after_the_sweep_charges_nothing(payer):
    user, token = payer
    call = {**served_call(user, token, cost=0)}
    call["record"] = {**call["record"], "status": "error", "error_code": "upstream"}
    spool.spool_append(**call)
    holds_release_stale(older_than_s=0)
    assert spool.replay().charged_after_release == 1
    assert charged(call["request_id"]) == []
    assert UsageRecord.objects.get(request_id=call["request_id"]).error_code == "upstream"
    assert Wallet.objects.get(user=user).balance_micro == 10 * Y
    assert wallets_out_of_balance() == []


@pytest.mark.django_db
def test_reconcile_fails_while_settlements_are_spooled_and_says_how_much(payer, capsys):
    user, token = payer
    spool.spool_append(**served_call(user, token, cost=Y))
    spool.spool_append(**served_call(user, token, cost=Y // 2))
    with pytest.raises(CommandError, match="2 settlement"):
        call_command("reconcile")
    err = capsys.readouterr().err
    assert "2 settlement(s) still spooled" in err and "¥1.500000 in all" in err and "oldest spooled" in err
    call_command("replay_spool")
    call_command("reconcile")
    assert "wallets reconcile" in capsys.readouterr().out
