"""End to end in headless Chromium: create a ClaudeCode token with two fallback groups ordered
by drag and drop, copy its key, call the relay with it, find the call and its route in the
usage log, read the ClaudeCode price explanation. Saves screenshots of the main pages
(into docs/screenshots/ when CONSOLE_SCREENSHOTS=1)."""

import os
from decimal import Decimal
from pathlib import Path

import pytest

from apiyi_admin.demo import BONUS_TIERS
from apiyi_admin.demo import USD_CNY_RATE as RATE
from core.pricing import explain_ratio

pytestmark = [pytest.mark.browser, pytest.mark.live]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def shots(tmp_path):
    folder = DOCS if os.environ.get("CONSOLE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)

    def shot(page, name):
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    shot.folder = folder
    return shot


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls in these tests are
    # still plain sync calls. Only for these tests, so the rest of the suite keeps the check.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    context.close()
    assert errors == []  # no JS errors, no CSP violations, no missing static files


def _login(page, base, username, password="pw-123456-xyz"):
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _drag(page, source, target):
    """Drag `source`'s handle onto `target` with real mouse moves (SortableJS fallback mode)."""
    src = page.locator(source).bounding_box()
    dst = page.locator(target).bounding_box()
    page.mouse.move(src["x"] + src["width"] / 2, src["y"] + src["height"] / 2)
    page.mouse.down()
    steps = 20
    for i in range(1, steps + 1):
        page.mouse.move(src["x"] + 5, src["y"] + (dst["y"] + 4 - src["y"]) * i / steps)
    page.mouse.up()


@pytest.mark.django_db(transaction=True)
def test_token_relay_usage_and_price_flow(simulator, live_server, settings, page, shots, customer):
    import openai

    from tokens.models import Token

    base = live_server.url
    settings.PUBLIC_BASE_URL = base
    _login(page, base, customer.username)
    shots(page, "dashboard-empty")

    # 1. create a ClaudeCode token in the dialog, two fallback groups ordered by drag and drop
    page.goto(f"{base}/tokens/")
    page.click("[data-testid=new-token]")
    page.wait_for_selector("dialog[open] [data-testid=token-form]")
    page.fill("dialog #id_name", "claude code laptop")
    cc_value = page.eval_on_selector("#id_select_group option:text-matches('^ClaudeCode')", "o => o.value")
    page.select_option("#id_select_group", cc_value)
    page.wait_for_selector("[data-testid=select-summary]:has-text('ClaudeCode')")
    assert "offers none of ClaudeCode's models" in page.inner_text("#fallback-list li[data-group=Wan]")
    page.check("#fallback-list li[data-group=Default] input[type=checkbox]")
    page.check("#fallback-list li[data-group=Wan] input[type=checkbox]")
    _drag(page, "#fallback-list li[data-group=Wan] .handle", "#fallback-list li[data-group=Default]")
    order = page.eval_on_selector_all("#fallback-list li", "items => items.map(li => li.dataset.group)")
    assert order.index("Wan") < order.index("Default")
    _drag(page, "#fallback-list li[data-group=Default] .handle", "#fallback-list li[data-group=Wan]")
    order = page.eval_on_selector_all("#fallback-list li", "items => items.map(li => li.dataset.group)")
    assert order.index("Default") < order.index("Wan")
    shots(page, "token-dialog")
    page.click("dialog [data-testid=save-token]")

    # 2. the key is shown once; copy it
    page.wait_for_selector("[data-testid=key-once]")
    key = page.input_value("#raw-key")
    page.click("[data-testid=copy-key]")
    page.wait_for_selector("[data-testid=copy-key]:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == key
    token = Token.objects.get(user=customer)
    assert token.select_group.name == "ClaudeCode"
    assert [f.group.name for f in token.fallbacks.all()] == ["Default", "Wan"]
    assert f"export ANTHROPIC_AUTH_TOKEN={key}" in page.inner_text("#code-claude-code")
    shots(page, "token-detail")

    # 3. call the relay with the copied key, as in the example; ClaudeCode's channels answer 429,
    #    so the call is served by the Default fallback group
    simulator.configure(upstream="claude-official", error="429", retry_after_s=30)
    simulator.configure(upstream="claude-aws", error="429", retry_after_s=30)
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=30)
    raw = client.chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Hello!"}]
    )
    assert raw.parse().choices[0].message.content
    request_id = raw.headers["x-request-id"]

    # 4. the call is in the usage log; its row opens the trace and the price calculation
    page.goto(f"{base}/usage/")
    row = page.locator(f"tr[data-request-id='{request_id}']")
    assert "Default" in row.inner_text() and "yes" in row.inner_text()
    shots(page, "usage-log")
    row.locator("td").nth(2).click()
    page.wait_for_selector("dialog[open] [data-testid=trace]")
    trace = page.inner_text("dialog [data-testid=trace]")
    assert "ClaudeCode" in trace and "upstream_429" in trace and "Default" in trace
    assert f"{RATE} ¥/$" in page.inner_text("dialog")
    shots(page, "usage-detail")
    page.click("dialog [data-close-dialog]")

    # 5. why: the same request id explained
    page.goto(f"{base}/why/?request_id={request_id}")
    assert "fallback group Default" in page.inner_text("[data-testid=why-result]")
    shots(page, "why")

    # 6. the price explainer for ClaudeCode
    page.goto(f"{base}/prices/?group=ClaudeCode&model=claude-sonnet-4-5")
    own = max(p for yuan, p in BONUS_TIERS.items() if yuan <= 1000)  # the customer's ¥1,000 recharge
    assert page.inner_text("[data-testid=sentence]") == explain_ratio(Decimal("0.95"), own)
    assert f"after your {own.normalize():f}% recharge bonus" in page.inner_text("[data-testid=sentence]")
    page.select_option("#s-model", "sora-2")
    page.wait_for_selector("[data-testid=recommendation]:has-text('Sora2Official')")
    shots(page, "prices")

    page.goto(f"{base}/")
    shots(page, "dashboard")
    page.goto(f"{base}/tokens/")
    shots(page, "tokens")
    page.goto(f"{base}/wallet/recharge/?amount=5000")
    shots(page, "recharge")
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{base}/tokens/{token.pk}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    page.screenshot(path=str(shots.folder / "mobile-token.png"))


@pytest.mark.django_db(transaction=True)
def test_operator_pages(live_server, page, shots, operator):
    from groups.models import Model, TokenGroup

    base = live_server.url
    _login(page, base, operator.username)
    page.goto(f"{base}/ops/channels/")
    shots(page, "ops-channels")
    page.goto(f"{base}/ops/token-groups/{TokenGroup.objects.get(name='ClaudeCode').pk}/")
    shots(page, "ops-token-group")
    sonnet = Model.objects.get(name="claude-sonnet-4-5")
    page.goto(f"{base}/ops/models/{sonnet.pk}/")
    page.fill("#id_input_usd_per_mtok", "4")
    page.wait_for_selector(f"[data-testid=price-preview]:has-text('¥{4 * RATE * Decimal('0.95'):.4f}')")
    shots(page, "ops-model-preview")
    page.click("[data-testid=save-model]")
    page.wait_for_selector("[data-testid=confirm]")
    shots(page, "ops-confirm-price")
    page.click("[data-testid=confirm-save]")
    page.wait_for_selector(".messages li:has-text('saved')")
    sonnet.refresh_from_db()
    assert str(sonnet.input_usd_per_mtok) == "4.000000"


def _customer_pages(token_pk):
    return [
        "/",
        "/tokens/",
        "/tokens/new/",
        f"/tokens/{token_pk}/",
        f"/tokens/{token_pk}/edit/",
        "/wallet/",
        "/wallet/recharge/?amount=100",
        "/usage/",
        "/usage/spend/",
        "/usage/req_b_ok/",
        "/why/?request_id=req_b_failed",
        "/prices/",
        "/models/",
        "/preferences/",
    ]


OPS_PAGES = ["/ops/channels/", "/ops/token-groups/", "/ops/users/", "/ops/models/"]

# Whole page no wider than the window; each table box either fits or scrolls inside itself.
OVERFLOW_JS = """() => {
  const out = [];
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth) {
    const wide = [...document.body.querySelectorAll('*')].filter(
      el => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest('.table-wrap')
    );
    const leaf = wide.filter(el => !wide.some(other => other !== el && el.contains(other)));
    out.push('page ' + root.scrollWidth + ': ' + leaf.map(el => el.outerHTML.slice(0, 120)).join(' | '));
  }
  for (const wrap of document.querySelectorAll('.table-wrap')) {
    const style = getComputedStyle(wrap);
    const scrolls = ['auto', 'scroll'].includes(style.overflowX);
    if (wrap.getBoundingClientRect().right > window.innerWidth + 1) out.push('table-wrap sticks out');
    if (wrap.scrollWidth > wrap.clientWidth && !scrolls) out.push('table-wrap clips');
  }
  return out;
}"""


@pytest.fixture
def usage_calls(customer, cc_token, make_usage):
    make_usage(customer, cc_token, request_id="req_b_ok", model_name="deepseek-v4", cost_micro=21600)
    make_usage(
        customer,
        cc_token,
        request_id="req_b_failed",
        failed=True,
        status="error",
        http_status=429,
        error_code="upstream_saturated",
        refusal_reason="saturated",
    )


@pytest.mark.parametrize("width,height", [(390, 844), (1366, 768)])
@pytest.mark.django_db(transaction=True)
def test_no_horizontal_overflow(
    live_server, browser, customer, operator, cc_token, usage_calls, width, height
):
    base = live_server.url
    overflows = {}
    for user, paths in [(customer, _customer_pages(cc_token.pk)), (operator, OPS_PAGES)]:
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        _login(page, base, user.username)
        for path in paths:
            response = page.goto(f"{base}{path}")
            assert response.status == 200, path
            problems = page.evaluate(OVERFLOW_JS)
            if problems:
                overflows[path] = problems
        context.close()
    assert overflows == {}


@pytest.mark.django_db(transaction=True)
def test_fallbacks_reorder_without_javascript(live_server, browser, customer, groups):
    from tokens.services import token_create

    token, _ = token_create(
        user=customer,
        name="nojs",
        select_group=groups["ClaudeCode"],
        fallback_groups=[groups["Default"], groups["Wan"]],
    )
    base = live_server.url
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    _login(page, base, customer.username)
    page.goto(f"{base}/tokens/{token.pk}/edit/")

    def checked_order():
        return page.eval_on_selector_all(
            "#fallback-list li:has(input[type=checkbox]:checked)",
            "items => items.map(li => li.dataset.group)",
        )

    assert checked_order() == ["Default", "Wan"]
    page.click(f"button[name=move][value='down:{groups['Default'].pk}']")
    page.wait_for_load_state()
    assert checked_order() == ["Wan", "Default"]
    assert [f.group.name for f in token.fallbacks.all()] == ["Default", "Wan"]  # not saved yet
    page.click(f"button[name=move][value='up:{groups['Default'].pk}']")
    page.wait_for_load_state()
    assert checked_order() == ["Default", "Wan"]
    page.click(f"button[name=move][value='up:{groups['Wan'].pk}']")
    page.wait_for_load_state()
    assert checked_order() == ["Wan", "Default"]
    page.click("[data-testid=save-token]")
    page.wait_for_url(f"{base}/tokens/{token.pk}/")
    assert [f.group.name for f in token.fallbacks.all()] == ["Wan", "Default"]
    context.close()


@pytest.mark.parametrize("index", [pytest.param(i, id=p) for i, p in enumerate(_customer_pages("{token}"))])
@pytest.mark.django_db(transaction=True)
def test_customer_pages_in_chinese_in_the_browser(
    live_server, browser, customer, cc_token, usage_calls, index
):
    from tests.console.test_i18n import _msgids, _untranslated

    path = _customer_pages(cc_token.pk)[index]
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    _login(page, live_server.url, customer.username)
    page.goto(f"{live_server.url}{path}")
    assert page.evaluate("document.documentElement.lang") == "zh-hans"
    assert _untranslated(page.content(), _msgids()) == []
    context.close()


SCREENSHOT_PAGES = [
    ("dashboard", "/"),
    ("tokens", "/tokens/"),
    ("wallet", "/wallet/"),
    ("usage-log", "/usage/"),
    ("spend", "/usage/spend/"),
    ("prices", "/prices/"),
]


@pytest.mark.parametrize("locale,suffix", [("en-US", ""), ("zh-CN", "-zh")])
@pytest.mark.django_db(transaction=True)
def test_screenshots_in_both_languages(
    live_server, browser, shots, customer, cc_token, make_usage, usage_calls, locale, suffix
):
    for i, (model, cost) in enumerate(
        [("claude-sonnet-4-5", 186_000), ("gpt-5", 94_500), ("deepseek-v4", 7_200)]
    ):
        make_usage(customer, cc_token, request_id=f"req_shot_{i}", model_name=model, cost_micro=cost)
    base = live_server.url
    context = browser.new_context(
        locale=locale, color_scheme="light", viewport={"width": 1366, "height": 768}
    )
    page = context.new_page()
    _login(page, base, customer.username)
    for name, path in SCREENSHOT_PAGES:
        page.goto(f"{base}{path}")
        assert page.evaluate("document.documentElement.lang") == ("zh-hans" if suffix else "en")
        shots(page, f"{name}{suffix}")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/tokens/{cc_token.pk}/")
    page.screenshot(path=str(shots.folder / f"mobile-token{suffix}.png"))
    context.close()
