"""One contract for the three ledger implementations: the portable one runs on any database, the
PostgreSQL one and the batched one (its calls run one at a time here; tests/billing/
test_ledger_batched.py runs them concurrently) only on PostgreSQL (marked `postgres`)."""

import threading
import uuid

import pytest
from django.db import close_old_connections, connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.ledger import InsufficientBalance, PortableLedger, PostgresLedger, QuotaExceeded
from billing.models import LedgerEntry, LedgerKind, UsageRecord, Wallet
from billing.selectors import wallets_out_of_balance
from billing.services import wallet_recharge
from tests.billing.conftest import BatchedSync
from tokens.models import Token
from tokens.services import token_create

Y = 1_000_000


def rid():
    return uuid.uuid4().hex


@pytest.fixture(
    params=[
        pytest.param("portable", id="portable"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("batched", id="batched", marks=pytest.mark.postgres),
    ]
)
def ledger(request):
    if request.param != "portable" and connection.vendor != "postgresql":
        pytest.skip("this ledger needs PostgreSQL (DATABASE_URL)")
    if request.param == "batched":
        return BatchedSync(request.getfixturevalue("ledger_loop"))
    return PostgresLedger() if request.param == "postgres" else PortableLedger()


@pytest.fixture
def payer(make_user, groups):
    user = make_user()
    wallet_recharge(user=user, amount_micro=10 * Y, payment_ref=rid())
    token, _ = token_create(user=user, name="t", select_group=groups["Default"])
    return user, token


def wallet(user):
    return Wallet.objects.get(user=user)


def assert_reconciled(user):
    """Balance equals the sum of the ledger, every balance_after follows from the line before."""
    running = 0
    for line in LedgerEntry.objects.filter(wallet__user=user).order_by("id"):
        running += line.amount_micro
        assert line.balance_after_micro == running, (line.kind, line.balance_after_micro, running)
    w = wallet(user)
    assert w.balance_micro == running and w.balance_micro >= 0 and w.held_micro >= 0
    assert wallets_out_of_balance() == []


@pytest.mark.django_db
@pytest.mark.parametrize("pass_hold", [True, False])
def test_hold_then_settle_charges_the_cost_and_releases_the_rest(ledger, payer, pass_hold):
    user, token = payer
    held = ledger.hold(user_id=user.pk, request_id="r1", amount_micro=3 * Y, token_id=token.pk)
    assert held == 3 * Y
    assert (wallet(user).balance_micro, wallet(user).held_micro) == (7 * Y, 3 * Y)
    settled = ledger.settle(
        request_id="r1",
        user_id=user.pk,
        cost_micro=Y,
        record={"token_id": token.pk, "model_name": "m", "status": "success"},
        hold_micro=held if pass_hold else None,
    )
    assert (settled.charged_micro, settled.already_settled) == (Y, False)
    assert (wallet(user).balance_micro, wallet(user).held_micro) == (9 * Y, 0)
    kinds = list(
        LedgerEntry.objects.filter(request_id="r1").order_by("id").values_list("kind", "amount_micro")
    )
    assert kinds == [(LedgerKind.HOLD, -3 * Y), (LedgerKind.RELEASE, 3 * Y), (LedgerKind.CHARGE, -Y)]
    record = UsageRecord.objects.get(request_id="r1")
    assert (record.hold_micro, record.cost_micro, record.uncollected_micro) == (3 * Y, Y, 0)
    token.refresh_from_db()
    assert (token.held_micro, token.spent_micro) == (0, Y)
    assert_reconciled(user)


@pytest.mark.django_db
def test_settlement_is_exactly_once_by_request_id(ledger, payer):
    user, token = payer
    ledger.hold(user_id=user.pk, request_id="r2", amount_micro=2 * Y, token_id=token.pk)
    first = ledger.settle(request_id="r2", user_id=user.pk, cost_micro=Y, record={"token_id": token.pk})
    again = ledger.settle(request_id="r2", user_id=user.pk, cost_micro=2 * Y, record={"token_id": token.pk})
    late_release = ledger.release(request_id="r2", user_id=user.pk, record={"token_id": token.pk})
    assert again.already_settled and late_release.already_settled
    assert again.charged_micro == late_release.charged_micro == first.charged_micro == Y
    assert LedgerEntry.objects.filter(request_id="r2", kind=LedgerKind.CHARGE).count() == 1
    assert wallet(user).balance_micro == 9 * Y
    token.refresh_from_db()
    assert (token.held_micro, token.spent_micro) == (0, Y)
    assert_reconciled(user)


@pytest.mark.django_db
def test_release_gives_the_whole_hold_back(ledger, payer):
    user, token = payer
    ledger.hold(user_id=user.pk, request_id="r3", amount_micro=4 * Y, token_id=token.pk)
    released = ledger.release(
        request_id="r3", user_id=user.pk, record={"token_id": token.pk, "status": "error"}
    )
    assert released.charged_micro == 0
    assert (wallet(user).balance_micro, wallet(user).held_micro) == (10 * Y, 0)
    assert not LedgerEntry.objects.filter(request_id="r3", kind=LedgerKind.CHARGE).exists()
    assert UsageRecord.objects.get(request_id="r3").status == "error"
    assert_reconciled(user)


@pytest.mark.django_db
def test_refusal_is_recorded_at_no_cost_and_stamps_the_token(ledger, payer):
    user, token = payer
    ledger.refuse(
        request_id="r4",
        user_id=user.pk,
        record={"token_id": token.pk, "http_status": 403},
        touch_token_id=token.pk,
    )
    record = UsageRecord.objects.get(request_id="r4")
    assert (record.status, record.cost_micro, record.http_status) == ("error", 0, 403)
    assert not LedgerEntry.objects.filter(request_id="r4").exists()
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert wallet(user).balance_micro == 10 * Y


@pytest.mark.django_db
def test_insufficient_balance_refuses_the_hold_and_writes_nothing(ledger, payer):
    user, token = payer
    with pytest.raises(InsufficientBalance):
        ledger.hold(user_id=user.pk, request_id="r5", amount_micro=11 * Y, token_id=token.pk)
    assert not LedgerEntry.objects.filter(request_id="r5").exists()
    token.refresh_from_db()
    assert token.held_micro == 0  # the token's reservation was rolled back with the refusal
    assert (wallet(user).balance_micro, wallet(user).held_micro) == (10 * Y, 0)


@pytest.mark.django_db
def test_token_quota_limits_holds(ledger, payer):
    user, token = payer
    Token.objects.filter(pk=token.pk).update(quota_micro=3 * Y)
    ledger.hold(user_id=user.pk, request_id="r6", amount_micro=2 * Y, token_id=token.pk)
    with pytest.raises(QuotaExceeded):
        ledger.hold(user_id=user.pk, request_id="r7", amount_micro=2 * Y, token_id=token.pk)
    assert not LedgerEntry.objects.filter(request_id="r7").exists()
    assert wallet(user).held_micro == 2 * Y
    assert_reconciled(user)


@pytest.mark.django_db
def test_a_cost_above_hold_and_balance_is_uncollected_never_overdrawn(ledger, payer):
    user, token = payer
    ledger.hold(user_id=user.pk, request_id="r8", amount_micro=Y, token_id=token.pk)
    settled = ledger.settle(
        request_id="r8", user_id=user.pk, cost_micro=15 * Y, record={"token_id": token.pk}
    )
    assert settled.charged_micro == 10 * Y
    assert settled.record.uncollected_micro == 5 * Y
    assert (wallet(user).balance_micro, wallet(user).held_micro) == (0, 0)
    token.refresh_from_db()
    assert (token.held_micro, token.spent_micro) == (0, 10 * Y)
    assert_reconciled(user)


steps = st.lists(
    st.tuples(
        st.sampled_from(["hold", "settle", "release"]),
        st.integers(min_value=0, max_value=4),
        st.integers(min_value=0, max_value=4 * Y),
    ),
    max_size=20,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
@pytest.mark.django_db
def test_interleaved_holds_settlements_and_releases_keep_the_invariants(ledger, payer, steps):
    """Balance equals the ledger, never negative, each request settled at most once."""
    user, token = payer
    requests = [f"p-{rid()[:8]}-{i}" for i in range(5)]
    held = {}
    for op, i, amount in steps:
        r = requests[i]
        try:
            if op == "hold" and r not in held:
                held[r] = ledger.hold(user_id=user.pk, request_id=r, amount_micro=amount, token_id=token.pk)
            elif op == "settle":
                ledger.settle(
                    request_id=r,
                    user_id=user.pk,
                    cost_micro=amount,
                    record={"token_id": token.pk},
                    hold_micro=held.get(r),
                )
            elif op == "release":
                ledger.release(
                    request_id=r, user_id=user.pk, record={"token_id": token.pk}, hold_micro=held.get(r)
                )
        except InsufficientBalance:
            pass
        assert_reconciled(user)
    for r in requests:
        assert LedgerEntry.objects.filter(request_id=r, kind=LedgerKind.RELEASE).count() <= 1
        assert LedgerEntry.objects.filter(request_id=r, kind=LedgerKind.CHARGE).count() <= 1
    assert Token.objects.get(pk=token.pk).held_micro == wallet(user).held_micro


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_200_concurrent_holds_succeed_exactly_as_far_as_the_balance_goes(make_user, demo):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")
    user = make_user()
    wallet_recharge(user=user, amount_micro=73 * Y, payment_ref=rid())  # covers 73 holds of ¥1
    ledger = PostgresLedger()
    results = []
    barrier = threading.Barrier(20)

    def worker():
        barrier.wait()
        for _ in range(10):
            try:
                ledger.hold(user_id=user.pk, request_id=rid(), amount_micro=Y)
                results.append(True)
            except InsufficientBalance:
                results.append(False)
        close_old_connections()

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 200 and results.count(True) == 73
    w = wallet(user)
    assert (w.balance_micro, w.held_micro) == (0, 73 * Y)
    assert LedgerEntry.objects.filter(wallet=w, kind=LedgerKind.HOLD).count() == 73
    assert_reconciled(user)
