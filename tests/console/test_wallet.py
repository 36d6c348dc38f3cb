"""Wallet page, ledger and the two-step (simulated) recharge showing the bonus tier."""

from decimal import Decimal

from django.test import Client

from apiyi_admin.demo import BONUS_TIERS, USD_CNY_RATE
from billing.models import LedgerEntry, LedgerKind, Recharge

Y = 1_000_000


def _client(user):
    c = Client()
    c.force_login(user)
    return c


def _tier(amount):
    """The demo's bonus percent for a recharge of `amount` yuan."""
    return max((p for y, p in BONUS_TIERS.items() if y <= amount), default=Decimal(0))


def _ref(page):
    return page.split('name="ref" value="')[1].split('"')[0]


def test_wallet_shows_balance_usd_and_ledger(customer, outsider):
    page = _client(customer).get("/wallet/").content.decode()
    # the fixture recharged ¥1,000: its tier's bonus is credited too
    total = 1000 * (1 + _tier(1000) / 100)
    assert f"¥{total:,.2f}" in page and f"≈ ${total / USD_CNY_RATE:,.2f}" in page
    assert "Recharge bonus" in page and "recharge test-" in page
    assert "recharge test-" not in _client(outsider).get("/wallet/").content.decode()


def test_ledger_filter(customer):
    page = _client(customer).get("/wallet/?kind=bonus").content.decode()
    results = page.split('<div id="results">')[1]
    assert f"+{_tier(1000):f}% bonus" in results and "recharge test-" not in results


def test_recharge_review_shows_the_tier_then_pays_once(customer):
    c = _client(customer)
    before = customer.wallet.balance_micro
    page = c.get("/wallet/recharge/").content.decode()
    ref = _ref(page)
    page = c.get(f"/wallet/recharge/?amount=5000&ref={ref}").content.decode()
    percent = _tier(5000)
    bonus = 5000 * percent / 100
    assert f"+{percent:f}%" in page and f"¥{bonus:,.2f}" in page and f"¥{5000 + bonus:,.2f}" in page
    assert _ref(page) == ref  # the review keeps the intent's reference
    data = {"amount": "5000", "step": "pay", "ref": ref}
    response = c.post("/wallet/recharge/", data)
    assert response.status_code == 302
    credited = before + int((5000 + bonus) * Y)
    customer.wallet.refresh_from_db()
    assert customer.wallet.balance_micro == credited
    c.post("/wallet/recharge/", data)  # a double submit credits nothing more
    # Back to the review page: it shows the payment already made, with no Pay button
    page = c.get(f"/wallet/recharge/?amount=5000&ref={ref}").content.decode()
    assert 'data-testid="recharge-paid"' in page and 'data-testid="pay"' not in page
    customer.wallet.refresh_from_db()
    assert customer.wallet.balance_micro == credited
    assert Recharge.objects.filter(user=customer, payment_ref=ref).count() == 1


def test_a_new_recharge_gets_a_new_reference(customer):
    c = _client(customer)
    assert _ref(c.get("/wallet/recharge/").content.decode()) != _ref(
        c.get("/wallet/recharge/").content.decode()
    )


def test_another_users_reference_credits_nothing(customer, outsider):
    ref = _ref(_client(customer).get("/wallet/recharge/").content.decode())
    _client(customer).post("/wallet/recharge/", {"amount": "100", "step": "pay", "ref": ref})
    response = _client(outsider).post("/wallet/recharge/", {"amount": "100", "step": "pay", "ref": ref})
    assert response.status_code == 302
    assert not Recharge.objects.filter(user=outsider, payment_ref=ref).exists()
    assert not LedgerEntry.objects.filter(wallet__user=outsider, kind=LedgerKind.RECHARGE).exists()


def test_recharge_below_the_first_tier_and_bad_input(customer, settings):
    c = _client(customer)
    first = min(BONUS_TIERS)
    page = c.get(f"/wallet/recharge/?amount={first - 1}").content.decode()
    assert f"none (the first tier starts at ¥{first:,})" in page
    page = c.get("/wallet/recharge/?amount=-5").content.decode()
    assert "The minimum recharge is ¥10." in page
    settings.RECHARGE_MIN_CNY = "50"
    page = c.get("/wallet/recharge/?amount=20").content.decode()
    assert "The minimum recharge is ¥50." in page and 'data-testid="pay"' not in page
    page = c.get("/wallet/recharge/?amount=20", headers={"Accept-Language": "zh-CN"}).content.decode()
    assert "最低充值金额为 ¥50。" in page
    response = c.post("/wallet/recharge/", {"amount": "50", "step": "pay", "ref": "forged"})
    assert response.status_code == 404


def test_htmx_preview_partial(customer):
    page = (
        _client(customer)
        .get("/wallet/recharge/?amount=21000", headers={"HX-Request": "true", "HX-Target": "preview"})
        .content.decode()
    )
    assert page.lstrip().startswith('<div id="preview">') and f"+{_tier(21000):f}%" in page


def _call_lines(user, request_id, *, held, charged):
    """A settled call's hold, release and charge, as the ledger writes them."""
    from billing.models import LedgerEntry, LedgerKind

    wallet = user.wallet
    balance = wallet.balance_micro
    for kind, amount in ((LedgerKind.HOLD, -held), (LedgerKind.RELEASE, held), (LedgerKind.CHARGE, -charged)):
        balance += amount
        LedgerEntry.objects.create(
            wallet=wallet, kind=kind, amount_micro=amount, balance_after_micro=balance, request_id=request_id
        )


def test_ledger_folds_each_call_into_one_line(customer, outsider):
    _call_lines(customer, "req_folded", held=5_000_000, charged=1_234_567)
    _call_lines(outsider, "req_other", held=9_000_000, charged=9_000_000)
    page = _client(customer).get("/wallet/").content.decode()
    results = page.split('<div id="results">')[1]
    assert results.count('data-testid="ledger-row"') == 3  # the call, the recharge, its bonus
    call_row = results.split('data-testid="ledger-row"')[1]
    assert "req_folded" in call_row and "-¥1.234567" in call_row and "3 ledger lines" in call_row
    assert "Hold" in call_row and "Release" in call_row and "Charge" in call_row
    assert "req_other" not in page


def test_ledger_rows_are_paged_after_folding(customer):
    for n in range(30):
        _call_lines(customer, f"req_{n:02}", held=1_000, charged=500)
    c = _client(customer)
    first = c.get("/wallet/").content.decode().split('<div id="results">')[1]
    assert "req_29" in first and "req_00" not in first
    oldest = c.get("/wallet/?ordering=created_at").content.decode().split('<div id="results">')[1]
    assert oldest.split('data-testid="ledger-row"')[1].count("recharge test-") == 1
