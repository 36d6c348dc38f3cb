"""The batched ledger under concurrency: calls that arrive while a batch is in flight go out
together as one statement, each with its own answer, and the outcome is that of a serial order
(a simple model replays the order the batches ran in and must agree to the micro-yuan)."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import ledger as ledger_module
from billing.ledger import BatchedLedger, InsufficientBalance, QuotaExceeded, batch_stats
from billing.models import LedgerEntry, LedgerKind, UsageRecord, Wallet
from billing.selectors import wallets_out_of_balance
from billing.services import wallet_recharge
from tokens.models import Token
from tokens.services import token_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

Y = 1_000_000
ledger = BatchedLedger()


def _libpq_params() -> dict:
    params = connection.get_connection_params()
    return {k: v for k, v in params.items() if k in ("dbname", "user", "password", "host", "port")}


def rid() -> str:
    return uuid.uuid4().hex


def stats_delta(before: dict, kind: str) -> tuple[int, int, int]:
    after = batch_stats()
    return tuple(
        after.get(f"{kind}_{k}", 0) - before.get(f"{kind}_{k}", 0) for k in ("calls", "batches", "statements")
    )


def payers(make_user, n: int, amount_micro: int):
    users = []
    for _ in range(n):
        user = make_user()
        wallet_recharge(user=user, amount_micro=amount_micro, payment_ref=rid())
        users.append(user)
    return users


def test_a_lone_hold_and_settlement_take_one_round_trip_each(ledger_loop, make_user):
    (user,) = payers(make_user, 1, 5 * Y)
    before = batch_stats()
    assert ledger_loop.run(ledger.hold(user_id=user.pk, request_id="lone", amount_micro=Y)) == Y
    assert stats_delta(before, "hold") == (1, 1, 1)
    before = batch_stats()
    settled = ledger_loop.run(
        ledger.settle(request_id="lone", user_id=user.pk, cost_micro=Y // 2, record={"model_name": "m"})
    )
    assert (settled.charged_micro, settled.already_settled) == (Y // 2, False)
    assert stats_delta(before, "settle") == (1, 1, 1)
    before = batch_stats()
    ledger_loop.run(ledger.refuse(request_id="lone-refused", user_id=user.pk, record={"http_status": 403}))
    assert stats_delta(before, "refuse") == (1, 1, 1)
    assert UsageRecord.objects.get(request_id="lone-refused").status == "error"
    assert Wallet.objects.get(user=user).balance_micro == 5 * Y - Y // 2


def test_sent_resolves_while_the_statement_is_still_running(ledger_loop, make_user):
    """`sent` tells the caller its hold is on its way (it may do other round trips meanwhile),
    before the hold's answer: here the wallet row is locked elsewhere, so the hold waits."""
    (user,) = payers(make_user, 1, 5 * Y)
    with psycopg.connect(**_libpq_params()) as locker:
        locker.execute("SELECT 1 FROM billing_wallet WHERE user_id = %s FOR UPDATE", [user.pk])

        async def hold_until_sent():
            sent = asyncio.get_running_loop().create_future()
            holding = asyncio.ensure_future(
                ledger.hold(user_id=user.pk, request_id="sent", amount_micro=Y, sent=sent)
            )
            await asyncio.wait_for(sent, 5)
            await asyncio.sleep(0.2)
            return holding, holding.done()

        holding, answered = ledger_loop.run(hold_until_sent())
        assert not answered
        locker.rollback()  # the lock goes: the hold goes through

    async def answer():
        return await holding

    assert ledger_loop.run(answer()) == Y
    assert Wallet.objects.get(user=user).held_micro == Y


def test_lone_calls_take_the_batch_of_one_path_with_the_same_answers(ledger_loop, make_user, groups):
    """Lone calls (the batch-of-one path) and the same calls batched with another user's (the
    general path) leave the same rows: a hold short of balance, a settlement over hold and
    balance (uncollected), a release."""
    outcomes = []
    for lone in (True, False):
        user, other = payers(make_user, 2, 5 * Y)
        token, _ = token_create(user=user, name="t", select_group=groups["Default"])

        def companion(kind: str, other=other):
            if kind == "hold":
                return ledger.hold(user_id=other.pk, request_id=rid(), amount_micro=1)
            return ledger.settle(request_id=rid(), user_id=other.pk, cost_micro=1, record={})

        async def both(coro, kind: str, lone=lone):
            # batched: queued with two calls of the same kind of another user, all in one batch
            calls = [coro] if lone else [companion(kind), coro, companion(kind)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            return results[0 if lone else 1]

        def run(kind: str, coro, both=both):
            result = ledger_loop.run(both(coro, kind))
            if isinstance(result, BaseException):
                return type(result).__name__
            return result if isinstance(result, int) else (result.charged_micro, result.already_settled)

        before = batch_stats()
        r1, r2 = rid(), rid()
        record = {"token_id": token.pk}
        got = [
            run("hold", ledger.hold(user_id=user.pk, request_id=r1, amount_micro=2 * Y, token_id=token.pk)),
            run(
                "hold", ledger.hold(user_id=user.pk, request_id=rid(), amount_micro=4 * Y, token_id=token.pk)
            ),
            run("hold", ledger.hold(user_id=user.pk, request_id=r2, amount_micro=Y, token_id=token.pk)),
            run("settle", ledger.settle(request_id=r1, user_id=user.pk, cost_micro=9 * Y, record=record)),
            run("settle", ledger.release(request_id=r2, user_id=user.pk, record=record)),
            run("settle", ledger.settle(request_id=r1, user_id=user.pk, cost_micro=Y, record=record)),
        ]
        calls, batches = (batch_stats()[k] - before.get(k, 0) for k in ("calls", "batches"))
        assert calls == batches * (1 if lone else 3)  # lone: batches of one; else all of three
        token.refresh_from_db()
        wallet = Wallet.objects.get(user=user)
        lines = [
            (e.kind, e.amount_micro, e.balance_after_micro)
            for e in LedgerEntry.objects.filter(wallet=wallet).order_by("id")
        ]
        usage = UsageRecord.objects.get(request_id=r1)
        outcomes.append(
            (
                got,
                lines,
                (wallet.balance_micro, wallet.held_micro),
                (token.held_micro, token.spent_micro),
                (usage.hold_micro, usage.cost_micro, usage.uncollected_micro),
            )
        )
    assert outcomes[0] == outcomes[1]
    got, _, wallet_state, token_state, record_state = outcomes[0]
    assert got == [2 * Y, "InsufficientBalance", Y, (5 * Y - Y, False), (0, False), (4 * Y, True)]
    assert wallet_state == (Y, 0) and token_state == (0, 4 * Y)
    assert record_state == (2 * Y, 9 * Y, 5 * Y)
    assert wallets_out_of_balance() == []


def test_concurrent_calls_of_different_users_share_statements(ledger_loop, make_user):
    users = payers(make_user, 20, 5 * Y)
    ids = [rid() for _ in users]

    async def holds():
        return await asyncio.gather(
            *(
                ledger.hold(user_id=u.pk, request_id=r, amount_micro=Y)
                for u, r in zip(users, ids, strict=True)
            )
        )

    before = batch_stats()
    assert ledger_loop.run(holds()) == [Y] * 20
    calls, batches, statements = stats_delta(before, "hold")
    # all 20 are queued before the batcher's task first runs: one batch, one round trip
    assert (calls, batches, statements) == (20, 1, 1)

    async def settles():
        return await asyncio.gather(
            *(
                ledger.settle(request_id=r, user_id=u.pk, cost_micro=Y // 4, record={})
                for u, r in zip(users, ids, strict=True)
            )
        )

    before = batch_stats()
    assert [s.charged_micro for s in ledger_loop.run(settles())] == [Y // 4] * 20
    assert stats_delta(before, "settle") == (20, 1, 1)
    for user in users:
        wallet = Wallet.objects.get(user=user)
        assert (wallet.balance_micro, wallet.held_micro) == (5 * Y - Y // 4, 0)
    assert wallets_out_of_balance() == []


def test_200_concurrent_holds_on_one_wallet_succeed_exactly_as_far_as_the_balance_goes(
    ledger_loop, make_user
):
    (user,) = payers(make_user, 1, 73 * Y)  # covers 73 holds of ¥1

    async def holds():
        return await asyncio.gather(
            *(ledger.hold(user_id=user.pk, request_id=rid(), amount_micro=Y) for _ in range(200)),
            return_exceptions=True,
        )

    before = batch_stats()
    results = ledger_loop.run(holds())
    assert results.count(Y) == 73
    assert all(isinstance(r, InsufficientBalance) for r in results if r != Y)
    calls, batches, statements = stats_delta(before, "hold")
    assert calls == 200 and statements == batches < calls
    wallet = Wallet.objects.get(user=user)
    assert (wallet.balance_micro, wallet.held_micro) == (0, 73 * Y)
    assert LedgerEntry.objects.filter(wallet=wallet, kind=LedgerKind.HOLD).count() == 73
    assert wallets_out_of_balance() == []


def test_a_duplicate_in_a_batch_fails_alone(ledger_loop, make_user):
    """A hold whose request id already has one breaks the unique ledger line: the batch runs
    again call by call, so only that call gets the error."""
    users = payers(make_user, 3, 5 * Y)
    ledger_loop.run(ledger.hold(user_id=users[0].pk, request_id="dup", amount_micro=Y))

    async def holds():
        first = asyncio.ensure_future(ledger.hold(user_id=users[0].pk, request_id=rid(), amount_micro=Y))
        await asyncio.sleep(0)  # in flight: the next three queue and go as one batch
        rest = [
            ledger.hold(user_id=users[1].pk, request_id="dup", amount_micro=Y),
            ledger.hold(user_id=users[1].pk, request_id=rid(), amount_micro=Y),
            ledger.hold(user_id=users[2].pk, request_id=rid(), amount_micro=Y),
        ]
        return await asyncio.gather(first, *rest, return_exceptions=True)

    from django.db import IntegrityError

    results = ledger_loop.run(holds())
    assert results[0] == results[2] == results[3] == Y
    assert isinstance(results[1], IntegrityError)
    assert [Wallet.objects.get(user=u).held_micro for u in users] == [2 * Y, Y, Y]
    assert wallets_out_of_balance() == []


def test_same_request_settled_twice_at_once_is_charged_once(ledger_loop, make_user):
    (user,) = payers(make_user, 1, 5 * Y)
    ledger_loop.run(ledger.hold(user_id=user.pk, request_id="twice", amount_micro=2 * Y))

    async def settles():
        return await asyncio.gather(
            *(ledger.settle(request_id="twice", user_id=user.pk, cost_micro=Y, record={}) for _ in range(3))
        )

    results = ledger_loop.run(settles())
    assert [s.charged_micro for s in results] == [Y, Y, Y]
    assert [s.already_settled for s in results].count(False) == 1
    assert LedgerEntry.objects.filter(request_id="twice", kind=LedgerKind.CHARGE).count() == 1
    assert Wallet.objects.get(user=user).balance_micro == 4 * Y


# --- interleavings against a model ----------------------------------------------------------


class Model:
    """The ledger's rules, serially, for one wallet and one token."""

    def __init__(self, balance: int, quota: int | None):
        self.balance, self.held, self.quota = balance, 0, quota
        self.token_held = self.token_spent = 0
        self.holds: dict[str, int] = {}
        self.settled: dict[str, int] = {}

    def hold(self, r: str, amount: int):
        if self.quota is not None and self.quota - self.token_spent - self.token_held < amount:
            return "quota"
        if self.balance < max(amount, 1):
            return "balance"
        self.balance -= amount
        self.held += amount
        self.token_held += amount
        self.holds[r] = amount
        return amount

    def settle(self, r: str, cost: int):
        if r in self.settled:
            return ("again", self.settled[r])
        h = self.holds.get(r)
        charged = 0
        if h is not None or cost:
            h = h or 0
            charged = min(cost, self.balance + h)
            self.balance += h - charged
            self.held -= h
            self.token_held -= h
            self.token_spent += charged
        self.settled[r] = charged
        return ("settled", charged)


# Round amounts, so that holds run out of balance or quota and costs exceed what is held.
amounts = st.sampled_from([0, 1, Y // 2, Y, 2 * Y, 3 * Y, 6 * Y]) | st.integers(0, 6 * Y)
waves = st.lists(
    st.tuples(
        st.sampled_from(["hold", "settle", "release"]),
        st.lists(st.tuples(st.integers(0, 7), amounts), min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture
def sent(monkeypatch):
    """The request ids of holds and settlements in the order their batches ran them."""
    order: list[str] = []
    real_hold, real_settle = ledger_module._LoopLedger._hold, ledger_module._LoopLedger._settle

    async def hold(self, batch):
        order.extend(p.key for p in batch)
        return await real_hold(self, batch)

    async def settle(self, batch):
        result = await real_settle(self, batch)
        order.extend(p.key for p in batch)  # as the batch ran them: sorted by request id
        return result

    monkeypatch.setattr(ledger_module._LoopLedger, "_hold", hold)
    monkeypatch.setattr(ledger_module._LoopLedger, "_settle", settle)
    return order


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(waves=waves, quota=st.one_of(st.none(), st.integers(0, 8 * Y)))
def test_interleaved_batches_agree_with_a_serial_model(ledger_loop, make_user, groups, sent, waves, quota):
    """Each wave's calls run concurrently (one kind per wave, so its batches run one after the
    other); the model replays them in the order the batches ran them and must give the same
    answers, balances and token counters."""
    (user,) = payers(make_user, 1, 5 * Y)  # short of some holds, and of some costs
    token, _ = token_create(user=user, name="t", select_group=groups["Default"])
    Token.objects.filter(pk=token.pk).update(quota_micro=quota)
    model = Model(5 * Y, quota)
    requests = [f"m-{rid()[:8]}-{i}" for i in range(8)]
    for kind, wave in waves:
        if kind == "hold":  # each request is held at most once, before any settlement
            wave = [(i, a) for i, a in dict(wave).items() if requests[i] not in model.holds | model.settled]
        if not wave:
            continue
        sent.clear()
        calls: dict[str, list[tuple[int, int]]] = {}  # request id: (amount or cost, call index)
        coros = []
        for i, amount in wave:
            r, amount = requests[i], amount if kind != "release" else 0
            if kind == "hold":
                coros.append(
                    ledger.hold(user_id=user.pk, request_id=r, amount_micro=amount, token_id=token.pk)
                )
            else:
                record = {"token_id": token.pk}
                coros.append(ledger.settle(request_id=r, user_id=user.pk, cost_micro=amount, record=record))
            calls.setdefault(r, []).append((amount, len(coros) - 1))

        async def run(coros=coros):
            return await asyncio.gather(*coros, return_exceptions=True)

        results = ledger_loop.run(run())
        expected: list = [None] * len(coros)
        for r in sent:  # a request sent twice (settlements) takes its calls in turn
            amount, index = calls[r].pop(0)
            expected[index] = model.hold(r, amount) if kind == "hold" else model.settle(r, amount)
        for got, want in zip(results, expected, strict=True):
            if want == "quota":
                assert isinstance(got, QuotaExceeded)
            elif want == "balance":
                assert isinstance(got, InsufficientBalance)
            elif kind == "hold":
                assert got == want
            else:
                assert (got.already_settled, got.charged_micro) == (want[0] == "again", want[1])
        wallet = Wallet.objects.get(user=user)
        assert (wallet.balance_micro, wallet.held_micro) == (model.balance, model.held)
        token.refresh_from_db()
        assert (token.held_micro, token.spent_micro) == (model.token_held, model.token_spent)
    assert wallets_out_of_balance() == []
    for r in requests:
        assert LedgerEntry.objects.filter(request_id=r, kind=LedgerKind.CHARGE).count() <= 1
