"""Wallet page, ledger and the two-step (simulated) recharge showing the bonus tier."""

from django.test import Client


def _client(user):
    c = Client()
    c.force_login(user)
    return c


def test_wallet_shows_balance_usd_and_ledger(customer, outsider):
    page = _client(customer).get("/wallet/").content.decode()
    # the fixture recharged ¥1,000, which reaches the ¥1,000 tier: +10% bonus
    assert "¥1,100.00" in page and "≈ $152.78" in page
    assert "Recharge bonus" in page and "recharge test-" in page
    assert "recharge test-" not in _client(outsider).get("/wallet/").content.decode()


def test_ledger_filter(customer):
    page = _client(customer).get("/wallet/?kind=bonus").content.decode()
    results = page.split('<div id="results">')[1]
    assert "+10% bonus" in results and "recharge test-" not in results


def test_recharge_review_shows_the_tier_then_pays_once(customer):
    c = _client(customer)
    page = c.get("/wallet/recharge/?amount=5000").content.decode()
    assert "+15%" in page and "¥750.00" in page and "¥5,750.00" in page
    ref = page.split('name="payment_ref" value="')[1].split('"')[0]
    data = {"amount": "5000", "step": "pay", "payment_ref": ref}
    response = c.post("/wallet/recharge/", data)
    assert response.status_code == 302
    customer.wallet.refresh_from_db()
    assert customer.wallet.balance_micro == (1100 + 5750) * 1_000_000
    c.post("/wallet/recharge/", data)  # a double submit credits nothing more
    customer.wallet.refresh_from_db()
    assert customer.wallet.balance_micro == (1100 + 5750) * 1_000_000


def test_recharge_below_the_first_tier_and_bad_input(customer):
    c = _client(customer)
    page = c.get("/wallet/recharge/?amount=50").content.decode()
    assert "none (the first tier starts at ¥1,000)" in page
    page = c.get("/wallet/recharge/?amount=-5").content.decode()
    assert "greater than or equal to 1" in page
    response = c.post("/wallet/recharge/", {"amount": "50", "step": "pay", "payment_ref": "forged"})
    assert response.status_code == 404


def test_htmx_preview_partial(customer):
    page = (
        _client(customer)
        .get("/wallet/recharge/?amount=20000", headers={"HX-Request": "true", "HX-Target": "preview"})
        .content.decode()
    )
    assert page.lstrip().startswith('<div id="preview">') and "+20%" in page


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
