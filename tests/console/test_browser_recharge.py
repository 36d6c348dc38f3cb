"""Headless Chromium: pay a recharge, go Back to the review page, press Pay again: one credit."""

import pytest

from tests.console.test_browser import _login, browser, page  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.mark.django_db(transaction=True)
def test_back_and_pay_again_credits_once(live_server, page, customer):  # noqa: F811
    from billing.models import LedgerEntry, LedgerKind, Recharge

    base = live_server.url
    _login(page, base, customer.username)
    before = set(Recharge.objects.filter(user=customer).values_list("pk", flat=True))
    page.goto(f"{base}/wallet/recharge/")
    page.fill("#id_amount", "5000")
    page.click("button:has-text('Review')")
    page.wait_for_selector("[data-testid=pay]")
    page.click("[data-testid=pay]")
    page.wait_for_url(f"{base}/wallet/")
    page.go_back()
    page.wait_for_load_state()
    pay = page.locator("[data-testid=pay]")
    if pay.count():  # a browser that restores the old page from its cache still shows the button
        pay.click()
        page.wait_for_url(f"{base}/wallet/")
        assert "already credited" in page.inner_text("body")
    else:
        assert page.locator("[data-testid=recharge-paid]").count() == 1
    page.reload()
    new = Recharge.objects.filter(user=customer).exclude(pk__in=before)
    assert new.count() == 1
    recharge = new.get()
    entries = LedgerEntry.objects.filter(wallet__user=customer, created_at__gte=recharge.created_at)
    assert entries.filter(kind=LedgerKind.RECHARGE).count() == 1
    assert entries.filter(kind=LedgerKind.BONUS).count() == 1
