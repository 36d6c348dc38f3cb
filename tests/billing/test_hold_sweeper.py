"""The hold sweeper: holds left by a dead relay process are released exactly once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from billing import tasks
from billing.ledger import get_ledger
from billing.models import LedgerEntry, LedgerKind, UsageRecord, UsageStatus, Wallet
from billing.selectors import wallets_out_of_balance
from billing.services import wallet_recharge
from billing.sweeper import holds_release_stale
from tokens.models import Token
from tokens.services import token_create

HOLD = 2_000_000


def _age(request_id: str, seconds: int) -> None:
    """Pretend the hold was taken `seconds` ago (test-only: the ledger is append-only)."""
    LedgerEntry.objects.filter(request_id=request_id, kind=LedgerKind.HOLD).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


@pytest.fixture
def payer(make_user, groups):
    user = make_user()
    wallet_recharge(user=user, amount_micro=100_000_000, payment_ref=f"pay-{user.pk}")
    token, _ = token_create(user=user, name="t", select_group=groups["Default"])
    return user, token


def _hold(user, token, request_id, age_s=7200):
    get_ledger().hold(user_id=user.pk, request_id=request_id, amount_micro=HOLD, token_id=token.pk)
    _age(request_id, age_s)


def test_an_abandoned_hold_is_released_once_at_no_cost(payer):
    user, token = payer
    _hold(user, token, "req-dead")
    assert Wallet.objects.get(user=user).held_micro == HOLD

    assert holds_release_stale(older_than_s=3600) == 1
    assert holds_release_stale(older_than_s=3600) == 0

    wallet = Wallet.objects.get(user=user)
    assert wallet.held_micro == 0 and wallet.balance_micro == 100_000_000
    assert Token.objects.get(pk=token.pk).held_micro == 0
    record = UsageRecord.objects.get(request_id="req-dead")
    assert (record.status, record.error_code, record.cost_micro) == (UsageStatus.ERROR, "abandoned", 0)
    assert record.hold_micro == HOLD and record.token_id == token.pk and record.settled_at
    assert LedgerEntry.objects.filter(request_id="req-dead", kind=LedgerKind.RELEASE).count() == 1
    assert wallets_out_of_balance() == []


def test_a_settlement_arriving_after_the_sweeper_charges_nothing(payer):
    user, token = payer
    _hold(user, token, "req-late")
    holds_release_stale(older_than_s=3600)
    late = get_ledger().settle(
        request_id="req-late", user_id=user.pk, cost_micro=1_000_000, record={"token_id": token.pk}
    )
    assert late.already_settled and late.charged_micro == 0
    assert Wallet.objects.get(user=user).balance_micro == 100_000_000
    assert wallets_out_of_balance() == []


def test_recent_and_settled_holds_are_left_alone(payer):
    user, token = payer
    _hold(user, token, "req-young", age_s=60)
    _hold(user, token, "req-settled")
    get_ledger().settle(
        request_id="req-settled", user_id=user.pk, cost_micro=500_000, record={"token_id": token.pk}
    )

    assert holds_release_stale(older_than_s=3600) == 0
    assert Wallet.objects.get(user=user).held_micro == HOLD
    assert UsageRecord.objects.get(request_id="req-settled").status != "error"
    assert wallets_out_of_balance() == []


def test_video_job_holds_wait_for_the_video_limit(payer):
    user, token = payer
    _hold(user, token, "req-video")
    UsageRecord.objects.create(
        request_id="req-video", user=user, token=token, model_name="sora-2", endpoint="/v1/videos"
    )
    assert holds_release_stale(older_than_s=3600, video_older_than_s=86400) == 0
    _age("req-video", 90000)
    assert holds_release_stale(older_than_s=3600, video_older_than_s=86400) == 1
    record = UsageRecord.objects.get(request_id="req-video")
    assert record.error_code == "abandoned" and record.model_name == "sora-2"


def test_beat_task_uses_the_configured_limits(payer, settings):
    user, token = payer
    settings.BILLING_HOLD_STALE_AFTER_S = 600
    _hold(user, token, "req-a", age_s=900)
    _hold(user, token, "req-b", age_s=300)
    assert tasks.holds_release_stale() == 1
    entry = settings.CELERY_BEAT_SCHEDULE["billing-release-stale-holds"]
    assert entry["task"] == tasks.holds_release_stale.name


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweepers_racing_release_each_hold_once(make_user, groups):
    payers = []
    for i in range(3):
        user = make_user()
        wallet_recharge(user=user, amount_micro=100_000_000, payment_ref=f"race-{i}")
        token, _ = token_create(user=user, name="t", select_group=groups["Default"])
        payers.append((user, token))
    request_ids = []
    for n in range(30):
        user, token = payers[n % 3]
        request_ids.append(f"race-{n}")
        _hold(user, token, request_ids[-1])

    barrier = threading.Barrier(2)
    counts, errors = [], []

    def sweep():
        try:
            barrier.wait(timeout=10)
            counts.append(holds_release_stale(older_than_s=3600))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    assert sum(counts) == 30
    for request_id in request_ids:
        assert LedgerEntry.objects.filter(request_id=request_id, kind=LedgerKind.RELEASE).count() == 1
    assert UsageRecord.objects.filter(request_id__in=request_ids, error_code="abandoned").count() == 30
    for user, token in payers:
        wallet = Wallet.objects.get(user=user)
        assert wallet.held_micro == 0 and wallet.balance_micro == 100_000_000
        assert Token.objects.get(pk=token.pk).held_micro == 0
    assert wallets_out_of_balance() == []


def test_command_releases_now_but_never_holds_of_calls_in_flight(payer, settings):
    from io import StringIO

    from django.core.management import CommandError, call_command

    user, token = payer
    _hold(user, token, "req-cmd", age_s=settings.RELAY_MAX_CALL_SECONDS + 60)
    with pytest.raises(CommandError, match="RELAY_MAX_CALL_SECONDS"):
        call_command("release_stale_holds", "--older-than", "10")
    out = StringIO()
    call_command("release_stale_holds", "--older-than", str(settings.RELAY_MAX_CALL_SECONDS), stdout=out)
    assert "released 1 abandoned hold(s)" in out.getvalue()
    assert wallets_out_of_balance() == []
