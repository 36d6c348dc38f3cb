"""Settlement is keyed by request id: a process dying between hold and settle, and retried settles.

The killed-process test runs a real second process against the (PostgreSQL) test database and
SIGKILLs it right after its hold commits: the hold is then exactly what a crashed relay leaves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, connections
from django.utils import timezone

from billing.ledger import get_ledger
from billing.models import LedgerEntry, LedgerKind, UsageRecord, Wallet
from billing.selectors import wallets_out_of_balance
from billing.services import wallet_recharge
from billing.sweeper import holds_release_stale
from tokens.models import Token
from tokens.services import token_create

HOLD = 3_000_000
START = 50_000_000
ROOT = Path(__file__).resolve().parents[2]

DIE_BETWEEN_HOLD_AND_SETTLE = """
import os, signal, django
django.setup()
from billing.ledger import get_ledger
get_ledger().hold(user_id={user_id}, request_id="req-killed", amount_micro={hold}, token_id={token_id})
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def payer(make_user, groups):
    user = make_user()
    wallet_recharge(user=user, amount_micro=START, payment_ref=f"pay-{user.pk}")
    token, _ = token_create(user=user, name="t", select_group=groups["Default"])
    return user, token


def _age_holds(seconds: int) -> None:
    """Pretend the holds were taken `seconds` ago (test-only: the ledger is append-only)."""
    LedgerEntry.objects.filter(kind=LedgerKind.HOLD).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _sweep_concurrently(sweepers: int) -> int:
    barrier = threading.Barrier(sweepers)

    def sweep() -> int:
        barrier.wait()
        try:
            return holds_release_stale(older_than_s=3600)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(sweepers) as pool:
        return sum(pool.map(lambda _: sweep(), range(sweepers)))


@pytest.mark.postgres
def test_a_process_killed_between_hold_and_settle_is_swept_exactly_once(transactional_db, payer):
    user, token = payer
    env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "apiyi_admin.settings"}
    code = DIE_BETWEEN_HOLD_AND_SETTLE.format(user_id=user.pk, hold=HOLD, token_id=token.pk)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]

    wallet = Wallet.objects.get(user=user)
    assert (wallet.held_micro, wallet.balance_micro) == (HOLD, START - HOLD)
    assert not UsageRecord.objects.filter(request_id="req-killed", settled_at__isnull=False).exists()
    assert holds_release_stale(older_than_s=3600) == 0, "a young hold may still be settling"

    _age_holds(7200)
    assert _sweep_concurrently(4) == 1
    assert holds_release_stale(older_than_s=3600) == 0

    wallet.refresh_from_db()
    assert (wallet.held_micro, wallet.balance_micro) == (0, START)
    assert Token.objects.get(pk=token.pk).held_micro == 0
    assert LedgerEntry.objects.filter(request_id="req-killed", kind=LedgerKind.RELEASE).count() == 1
    assert UsageRecord.objects.get(request_id="req-killed").error_code == "abandoned"
    assert wallets_out_of_balance() == []


def test_an_unsettled_hold_is_swept_once_and_a_late_settle_charges_nothing(payer):
    user, token = payer
    get_ledger().hold(user_id=user.pk, request_id="req-orphan", amount_micro=HOLD, token_id=token.pk)
    _age_holds(7200)
    assert [holds_release_stale(older_than_s=3600) for _ in range(3)] == [1, 0, 0]
    late = get_ledger().settle(
        request_id="req-orphan", user_id=user.pk, cost_micro=HOLD, record={"token_id": token.pk}
    )
    assert late.already_settled and late.charged_micro == 0
    assert Wallet.objects.get(user=user).balance_micro == START
    assert not LedgerEntry.objects.filter(request_id="req-orphan", kind=LedgerKind.CHARGE).exists()
    assert wallets_out_of_balance() == []


def test_retried_settles_charge_once_whatever_cost_they_carry(payer):
    user, token = payer
    get_ledger().hold(user_id=user.pk, request_id="req-retry", amount_micro=HOLD, token_id=token.pk)
    results = [
        get_ledger().settle(
            request_id="req-retry", user_id=user.pk, cost_micro=cost, record={"token_id": token.pk}
        )
        for cost in (1_000_000, 1_000_000, 2_500_000)
    ]
    assert [r.already_settled for r in results] == [False, True, True]
    assert {r.charged_micro for r in results} == {1_000_000}
    assert Wallet.objects.get(user=user).balance_micro == START - 1_000_000
    assert Token.objects.get(pk=token.pk).spent_micro == 1_000_000
    assert LedgerEntry.objects.filter(request_id="req-retry", kind=LedgerKind.CHARGE).count() == 1
    assert holds_release_stale(older_than_s=0) == 0
    assert wallets_out_of_balance() == []


@pytest.mark.postgres
def test_concurrent_settles_of_one_request_charge_once(transactional_db, payer):
    user, token = payer
    get_ledger().hold(user_id=user.pk, request_id="req-race", amount_micro=HOLD, token_id=token.pk)
    barrier = threading.Barrier(6)

    def settle(cost: int):
        barrier.wait()
        try:
            return get_ledger().settle(
                request_id="req-race", user_id=user.pk, cost_micro=cost, record={"token_id": token.pk}
            )
        finally:
            connections.close_all()

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(settle, [1_000_000 + i for i in range(6)]))
    assert sum(not r.already_settled for r in results) == 1
    charge = LedgerEntry.objects.get(request_id="req-race", kind=LedgerKind.CHARGE)
    assert Wallet.objects.get(user=user).balance_micro == START + charge.amount_micro
    assert Wallet.objects.get(user=user).held_micro == 0
    assert wallets_out_of_balance() == []
