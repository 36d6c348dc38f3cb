"""Holds and settlements touch the wallet with one conditional UPDATE; the ledger stays exact:
every line's balance_after follows from the line before it, and token counters match."""

import uuid

import pytest

from billing.ledger import get_ledger
from billing.models import LedgerEntry, UsageRecord, Wallet
from billing.selectors import wallets_out_of_balance
from billing.services import wallet_recharge
from tokens.services import token_create

Y = 1_000_000


@pytest.fixture
def payer(make_user, groups):
    user = make_user()
    wallet_recharge(user=user, amount_micro=2 * Y, payment_ref=uuid.uuid4().hex)
    token, _ = token_create(user=user, name="t", select_group=groups["Default"])
    return user, token


def assert_chain(user):
    lines = list(LedgerEntry.objects.filter(wallet__user=user).order_by("id"))
    running = 0
    for line in lines:
        running += line.amount_micro
        assert line.balance_after_micro == running, (line.kind, line.balance_after_micro, running)
    assert Wallet.objects.get(user=user).balance_micro == running


@pytest.mark.django_db
def test_balance_after_is_exact_through_holds_settles_and_a_short_settlement(payer):
    user, token = payer
    get_ledger().hold(user_id=user.pk, request_id="a", amount_micro=Y // 2, token_id=token.pk)
    get_ledger().hold(user_id=user.pk, request_id="b", amount_micro=Y, token_id=token.pk)
    get_ledger().settle(request_id="a", user_id=user.pk, cost_micro=Y // 4, record={"token_id": token.pk})
    short = get_ledger().settle(
        request_id="b", user_id=user.pk, cost_micro=5 * Y, record={"token_id": token.pk}
    )
    assert short.charged_micro == Y + 2 * Y - Y // 4 - Y  # the hold plus everything left
    assert short.record.uncollected_micro == 5 * Y - short.charged_micro
    assert_chain(user)
    wallet = Wallet.objects.get(user=user)
    assert (wallet.balance_micro, wallet.held_micro) == (0, 0)
    token.refresh_from_db()
    assert (token.held_micro, token.spent_micro) == (0, Y // 4 + short.charged_micro)
    assert UsageRecord.objects.get(request_id="a").uncollected_micro == 0
    assert wallets_out_of_balance() == []


@pytest.mark.django_db
def test_a_second_settlement_returns_the_first_and_changes_nothing(payer):
    user, token = payer
    get_ledger().hold(user_id=user.pk, request_id="c", amount_micro=Y, token_id=token.pk)
    first = get_ledger().settle(
        request_id="c", user_id=user.pk, cost_micro=Y // 2, record={"token_id": token.pk}
    )
    again = get_ledger().settle(request_id="c", user_id=user.pk, cost_micro=Y, record={"token_id": token.pk})
    assert again.already_settled and again.charged_micro == first.charged_micro == Y // 2
    assert again.record.cost_micro == Y // 2
    assert_chain(user)
    token.refresh_from_db()
    assert (token.held_micro, token.spent_micro) == (0, Y // 2)
