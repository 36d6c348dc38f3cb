import threading
import uuid

import pytest
from django.core.management import call_command
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiyi_admin.demo import BONUS_TIERS
from billing.ledger import InsufficientBalance, InvalidAmount, QuotaExceeded, get_ledger
from billing.models import LedgerEntry, LedgerKind, UsageRecord, Wallet
from billing.selectors import wallets_out_of_balance
from billing.services import PaymentRefConflict, wallet_adjust, wallet_recharge, wallet_refund
from billing.sweeper import holds_release_stale
from tokens.services import token_create

Y = 1_000_000


def rid():
    return uuid.uuid4().hex


@pytest.fixture
def funded(make_user, demo):
    user = make_user()
    wallet_recharge(user=user, amount_micro=10 * Y, payment_ref=rid())
    return user


def balance(user):
    return Wallet.objects.get(user=user).balance_micro


def record(**extra):
    return {"model_name": "claude-sonnet-4-5", "status": "success", **extra}


def test_hold_then_settle_charges_actual_and_releases_rest(funded):
    r = rid()
    get_ledger().hold(user_id=funded.pk, request_id=r, amount_micro=2 * Y)
    assert balance(funded) == 8 * Y
    result = get_ledger().settle(request_id=r, user_id=funded.pk, cost_micro=300_000, record=record())
    assert result.charged_micro == 300_000
    assert balance(funded) == 10 * Y - 300_000
    assert Wallet.objects.get(user=funded).held_micro == 0
    kinds = list(LedgerEntry.objects.filter(request_id=r).order_by("id").values_list("kind", flat=True))
    assert kinds == [LedgerKind.HOLD, LedgerKind.RELEASE, LedgerKind.CHARGE]
    assert wallets_out_of_balance() == []


@pytest.mark.parametrize("hold", [0, 2 * Y])
@pytest.mark.parametrize("known", [True, False], ids=["hold-passed-in", "hold-read-back"])
def test_settle_with_the_callers_hold_amount_equals_reading_it_back(funded, hold, known):
    """The relay passes its hold's amount instead of re-reading it; the books come out the same,
    and even a zero hold gets its release line (else the sweeper would keep finding it)."""
    r = rid()
    get_ledger().hold(user_id=funded.pk, request_id=r, amount_micro=hold)
    result = get_ledger().settle(
        request_id=r, user_id=funded.pk, cost_micro=300, record=record(), hold_micro=hold if known else None
    )
    assert result.charged_micro == 300 and not result.already_settled
    assert balance(funded) == 10 * Y - 300
    assert Wallet.objects.get(user=funded).held_micro == 0
    lines = list(LedgerEntry.objects.filter(request_id=r).order_by("id").values_list("kind", "amount_micro"))
    assert lines == [(LedgerKind.HOLD, -hold), (LedgerKind.RELEASE, hold), (LedgerKind.CHARGE, -300)]
    assert UsageRecord.objects.get(request_id=r).hold_micro == hold
    assert holds_release_stale(older_than_s=-60) == 0
    assert wallets_out_of_balance() == []


def test_settle_claims_a_pending_usage_record_once(funded):
    """A pending record (a video job's) is filled by the settlement, whose fields win over the
    pending ones; a second settlement finds it settled."""
    r = rid()
    get_ledger().hold(user_id=funded.pk, request_id=r, amount_micro=Y)
    UsageRecord.objects.create(request_id=r, user=funded, model_name="sora-2", endpoint="/v1/videos")
    get_ledger().settle(
        request_id=r, user_id=funded.pk, cost_micro=5, record=record(status="success"), hold_micro=Y
    )
    again = get_ledger().settle(request_id=r, user_id=funded.pk, cost_micro=7, record=record(), hold_micro=Y)
    usage = UsageRecord.objects.get(request_id=r)
    assert again.already_settled and again.charged_micro == 5
    assert (usage.status, usage.cost_micro, usage.model_name, usage.endpoint) == (
        "success",
        5,
        "claude-sonnet-4-5",
        "/v1/videos",
    )
    assert usage.settled_at is not None and usage.price_breakdown == {} and usage.trace == []
    assert balance(funded) == 10 * Y - 5


def test_settle_is_exactly_once(funded):
    r = rid()
    get_ledger().hold(user_id=funded.pk, request_id=r, amount_micro=Y)
    get_ledger().settle(request_id=r, user_id=funded.pk, cost_micro=100, record=record())
    again = get_ledger().settle(request_id=r, user_id=funded.pk, cost_micro=999_999, record=record())
    assert again.already_settled
    assert balance(funded) == 10 * Y - 100
    assert UsageRecord.objects.filter(request_id=r).count() == 1
    assert LedgerEntry.objects.filter(request_id=r, kind=LedgerKind.CHARGE).count() == 1


def test_hold_never_overdraws(funded):
    with pytest.raises(InsufficientBalance):
        get_ledger().hold(user_id=funded.pk, request_id=rid(), amount_micro=10 * Y + 1)
    assert balance(funded) == 10 * Y
    assert not LedgerEntry.objects.filter(kind=LedgerKind.HOLD).exists()


def test_cost_above_hold_and_balance_is_recorded_uncollected(funded):
    r = rid()
    get_ledger().hold(user_id=funded.pk, request_id=r, amount_micro=Y)
    result = get_ledger().settle(request_id=r, user_id=funded.pk, cost_micro=11 * Y, record=record())
    assert result.charged_micro == 10 * Y
    assert result.record.uncollected_micro == Y
    assert balance(funded) == 0
    assert wallets_out_of_balance() == []


def test_token_quota_limits_holds(funded, groups):
    token, _ = token_create(user=funded, name="q", select_group=groups["Default"], quota_micro=Y)
    get_ledger().hold(user_id=funded.pk, token_id=token.pk, request_id=rid(), amount_micro=600_000)
    with pytest.raises(QuotaExceeded):
        get_ledger().hold(user_id=funded.pk, token_id=token.pk, request_id=rid(), amount_micro=600_000)
    assert balance(funded) == 10 * Y - 600_000


def test_refund_once_and_not_more_than_charged(funded):
    r = rid()
    get_ledger().hold(user_id=funded.pk, request_id=r, amount_micro=Y)
    get_ledger().settle(request_id=r, user_id=funded.pk, cost_micro=500_000, record=record())
    with pytest.raises(InvalidAmount):
        wallet_refund(request_id=r, amount_micro=500_001)
    wallet_refund(request_id=r, amount_micro=500_000, memo="video failed")
    with pytest.raises(InvalidAmount):
        wallet_refund(request_id=r, amount_micro=1)
    assert balance(funded) == 10 * Y
    assert UsageRecord.objects.get(request_id=r).cost_micro == 0
    assert wallets_out_of_balance() == []


def test_recharge_credits_bonus_as_its_own_line_and_upgrades(make_user, demo, user_groups):
    user = make_user(user_group=user_groups["default"])
    recharge = wallet_recharge(user=user, amount_micro=5000 * Y, payment_ref=rid())
    percent = max(p for yuan, p in BONUS_TIERS.items() if yuan <= 5000)
    assert recharge.bonus_percent == percent
    assert recharge.bonus_micro == 5000 * Y * percent / 100
    assert balance(user) == 5000 * Y + recharge.bonus_micro
    kinds = sorted(LedgerEntry.objects.filter(wallet__user=user).values_list("kind", flat=True))
    assert kinds == ["bonus", "recharge"]
    user.refresh_from_db()
    assert user.user_group.name == "svip"


def test_pinned_user_group_is_left_alone(make_user, demo, user_groups):
    user = make_user(user_group=user_groups["default"], user_group_pinned=True)
    wallet_recharge(user=user, amount_micro=3000 * Y, payment_ref=rid())
    user.refresh_from_db()
    assert user.user_group.name == "default"


def test_upgrade_never_downgrades(make_user, demo, user_groups):
    user = make_user(user_group=user_groups["svip"])
    wallet_recharge(user=user, amount_micro=150 * Y, payment_ref=rid())
    user.refresh_from_db()
    assert user.user_group.name == "svip"


def test_adjust_needs_reason_and_never_goes_negative(funded, make_user):
    operator = make_user(is_staff=True)
    with pytest.raises(InvalidAmount):
        wallet_adjust(user=funded, amount_micro=Y, reason=" ", actor=operator)
    with pytest.raises(InsufficientBalance):
        wallet_adjust(user=funded, amount_micro=-11 * Y, reason="fix", actor=operator)
    wallet_adjust(user=funded, amount_micro=-Y, reason="goodwill reversal", actor=operator)
    assert balance(funded) == 9 * Y


@pytest.mark.parametrize("amount", [-1, 10**18, 1.5, True])
def test_absurd_amounts_are_refused(funded, amount):
    with pytest.raises(InvalidAmount):
        wallet_recharge(user=funded, amount_micro=amount, payment_ref=rid())


def test_ledger_is_append_only(funded):
    entry = LedgerEntry.objects.first()
    entry.amount_micro = 1
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()


def test_reconcile_command_names_the_broken_wallet(funded):
    call_command("reconcile")
    Wallet.objects.filter(user=funded).update(balance_micro=1)
    with pytest.raises(Exception, match="out of balance") as exc:
        call_command("reconcile")
    assert exc.type.__name__ == "CommandError"


ops = st.lists(
    st.tuples(
        st.sampled_from(["hold", "settle", "refund", "recharge"]),
        st.integers(min_value=0, max_value=5),
        st.integers(min_value=0, max_value=3 * Y),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=ops)
def test_random_interleavings_always_reconcile(funded, steps):
    """Any order of holds, settles, refunds and recharges leaves every wallet reconciled."""
    requests = [f"h-{uuid.uuid4().hex[:8]}-{i}" for i in range(6)]
    held = {}  # what each request's hold committed, as the relay passes it to settlement
    for op, i, amount in steps:
        r = requests[i]
        try:
            if op == "hold":
                held.setdefault(r, get_ledger().hold(user_id=funded.pk, request_id=r, amount_micro=amount))
            elif op == "settle":
                get_ledger().settle(
                    request_id=r,
                    user_id=funded.pk,
                    cost_micro=amount,
                    record=record(),
                    hold_micro=held.get(r),
                )
            elif op == "refund":
                wallet_refund(request_id=r, amount_micro=max(amount, 1))
            else:
                wallet_recharge(user=funded, amount_micro=max(amount, 1), payment_ref=rid())
        except (InsufficientBalance, InvalidAmount, QuotaExceeded):
            pass
        except Exception as exc:  # a second hold for one request id is refused by the DB
            assert "uniq_ledger_request_kind" in str(exc) or "UNIQUE" in str(exc)
        w = Wallet.objects.get(user=funded)
        assert w.balance_micro >= 0 and w.held_micro >= 0
    assert wallets_out_of_balance() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_holds_never_overdraw_on_postgres(make_user, demo):
    user = make_user()
    wallet_recharge(user=user, amount_micro=10 * Y, payment_ref=rid())
    results = []
    barrier = threading.Barrier(16)

    def worker():
        barrier.wait()
        for _ in range(5):
            try:
                get_ledger().hold(user_id=user.pk, request_id=rid(), amount_micro=Y // 2)
                results.append(True)
            except InsufficientBalance:
                results.append(False)
        close_old_connections()

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 20
    w = Wallet.objects.get(user=user)
    assert w.balance_micro == 0
    assert w.held_micro == 10 * Y
    assert wallets_out_of_balance() == []


def test_recharge_replaying_a_payment_ref_credits_once(make_user, demo):
    user = make_user()
    ref = rid()
    first = wallet_recharge(user=user, amount_micro=5000 * Y, payment_ref=ref)
    again = wallet_recharge(user=user, amount_micro=5000 * Y, payment_ref=ref)
    assert again.pk == first.pk
    entries = LedgerEntry.objects.filter(wallet__user=user)
    assert entries.filter(kind=LedgerKind.RECHARGE).count() == 1
    assert entries.filter(kind=LedgerKind.BONUS).count() == 1
    assert balance(user) == first.amount_micro + first.bonus_micro
    assert Wallet.objects.get(user=user).total_recharged_micro == 5000 * Y


def test_recharge_ref_of_another_recharge_is_refused(make_user, demo):
    alice, bob = make_user(), make_user()
    ref = rid()
    wallet_recharge(user=alice, amount_micro=100 * Y, payment_ref=ref)
    with pytest.raises(PaymentRefConflict):
        wallet_recharge(user=bob, amount_micro=100 * Y, payment_ref=ref)
    with pytest.raises(PaymentRefConflict):
        wallet_recharge(user=alice, amount_micro=200 * Y, payment_ref=ref)
    assert balance(bob) == 0
    assert LedgerEntry.objects.filter(wallet__user=alice, kind=LedgerKind.RECHARGE).count() == 1
