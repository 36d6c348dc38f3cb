"""Price explainer and the "which group for my scenario" helper."""

from decimal import Decimal

from django.test import Client

from apiyi_admin.demo import USD_CNY_RATE as RATE


def _client(user):
    c = Client()
    c.force_login(user)
    return c


def test_claudecode_price_is_explained_in_plain_words(customer):
    page = (
        _client(customer).get("/prices/?group=ClaudeCode&model=claude-sonnet-4-5&bonus=20").content.decode()
    )
    assert "0.95 × official price, ≈ 79% of official after your 20% recharge bonus" in page
    # $3 / 1M input × rate × 0.95, its USD equivalent $2.85, official $3
    assert f"¥{3 * RATE * Decimal('0.95'):.4f}" in page and "$2.8500" in page and "$3.0000" in page
    assert "per 1M output tokens" in page


def test_without_bonus_the_ratio_is_the_multiplier(customer):
    page = _client(customer).get("/prices/?group=ClaudeCode&model=claude-sonnet-4-5&bonus=0").content.decode()
    assert "0.95 × official price (95% of official)" in page


def test_price_through_a_token_shows_its_route(customer, cc_token):
    page = _client(customer).get(f"/prices/?token={cc_token.pk}&model=gpt-5.1").content.decode()
    assert "ClaudeCode does not offer gpt-5.1. It is offered by: <strong>Default</strong>" in page
    route = page.split("Through this token")[1]
    assert "does not offer gpt-5.1" in route.split("Default")[0]
    assert "1 × official price" in route


def test_example_quote_uses_the_pricing_engine(customer):
    page = _client(customer).get("/prices/?group=Sora2Official&model=sora-2").content.decode()
    # 10 s × $0.1 × rate × 1.0
    assert f"a 10-second video costs <strong>¥{RATE:.6f}</strong>" in page


def test_another_users_token_is_404(customer, cc_token, outsider):
    assert _client(outsider).get(f"/prices/?token={cc_token.pk}").status_code == 404
    assert _client(outsider).get("/prices/?token=abc").status_code == 404


def test_unknown_model_or_bad_bonus_does_not_fail(customer):
    response = _client(customer).get("/prices/?group=Nope&model=nope&bonus=x")
    assert response.status_code == 200


def test_scenario_helper_recommends_groups_from_live_data(customer):
    c = _client(customer)
    page = c.get("/prices/?scenario_model=claude-sonnet-4-5").content.decode()
    rec = page.split('data-testid="recommendation"')[1]
    assert "choose <strong>ClaudeCode</strong>" in rec and "fallback groups: <strong>Default</strong>" in rec
    rec = c.get("/prices/?scenario_model=sora-2").content.decode().split('data-testid="recommendation"')[1]
    assert "choose <strong>Sora2Official</strong>" in rec
    rec = c.get("/prices/?scenario_model=gpt-5.1").content.decode().split('data-testid="recommendation"')[1]
    assert "choose <strong>Default</strong>" in rec
    page = c.get("/prices/").content.decode()
    assert "Claude + domestic coding models in Claude Code" in page  # the guide's table


def test_htmx_request_gets_the_results_partial(customer):
    page = (
        _client(customer)
        .get("/prices/?group=Default&model=gpt-5.1", headers={"HX-Request": "true", "HX-Target": "results"})
        .content.decode()
    )
    assert page.lstrip().startswith('<div id="results">') and "<html" not in page


def test_price_explainer_uses_the_customers_own_bonus_tier(customer, outsider):
    from apiyi_admin.demo import BONUS_TIERS

    url = "/prices/?group=ClaudeCode&model=claude-sonnet-4-5"
    # the outsider never recharged: no bonus, and no promise that ¥100 buys more than ¥100
    page = _client(outsider).get(url).content.decode()
    assert "recharge bonus" not in page.split('data-testid="sentence">')[1].split("</p>")[0]
    assert "gives you more than ¥100" not in page and "No recharge bonus applies" in page
    # the customer recharged ¥1,000: the tier that recharge reached, not the best one on offer
    own = max(p for yuan, p in BONUS_TIERS.items() if yuan <= 1000)
    assert own < max(BONUS_TIERS.values())
    sentence = (
        _client(customer).get(url).content.decode().split('data-testid="sentence">')[1].split("</p>")[0]
    )
    assert f"after your {own.normalize():f}% recharge bonus" in sentence


def test_prices_are_shown_only_for_groups_that_offer_the_model(customer):
    page = _client(customer).get("/prices/?group=ClaudeCode&model=sora-2").content.decode()
    assert "ClaudeCode does not offer sora-2" in page
    assert 'data-testid="sentence"' not in page  # no price for a group that cannot serve it
    comparison = page.split("sora-2 in every group you may use")[1].split("</section>")[0]
    assert "Sora2Official" in comparison and "ClaudeCode" not in comparison and "Default" not in comparison
