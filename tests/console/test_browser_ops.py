"""In headless Chromium: an operator pastes another customer's request id into the request
lookup and reads whose call it was and why it failed."""

import pytest

from tests.console.test_browser import _login, browser, page  # noqa: F401  (shared Chromium setup)

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.mark.django_db(transaction=True)
def test_operator_looks_up_another_users_failed_call(
    live_server,
    page,  # noqa: F811
    operator,
    customer,
    cc_token,
    make_usage,  # noqa: F811
):
    trace = [
        {"group": "ClaudeCode", "channel": "claude-official", "outcome": "saturated", "status": 0, "ms": 0}
    ]
    make_usage(
        customer,
        cc_token,
        failed=True,
        request_id="req_browser_429",
        http_status=429,
        error_code="upstream_saturated",
        refusal_reason="saturated",
        trace=trace,
        error_message="Current group's upstream is saturated, please try again later",
    )
    base = live_server.url
    _login(page, base, operator.username)
    page.goto(f"{base}/ops/lookup/")
    page.fill("#request_id", "req_browser_429")
    page.click("form.filters button[type=submit]")
    result = page.locator("[data-testid=lookup-result]")
    result.wait_for()
    assert page.locator("[data-testid=lookup-user]").inner_text() == customer.username
    assert page.locator("[data-testid=lookup-reason]").inner_text().startswith("saturated")
    assert "is not a limit on your account" in result.inner_text()
    assert "claude-official" in page.locator("[data-testid=trace]").inner_text()
    assert "request_id=req_browser_429" in page.url  # hx-push-url: the lookup is shareable
