"""Models page: every model the user can call, its final price in each of their groups, searchable."""

from decimal import Decimal

from django.test import Client

from apiyi_admin.demo import USD_CNY_RATE
from groups.models import Model, TokenGroup


def _client(user):
    c = Client()
    c.force_login(user)
    return c


def _rows(page: str, model: str) -> str:
    table = page.split('data-testid="models-table"')[1].split("</table>")[0]
    return "".join(r for r in table.split("<tr")[1:] if f'data-model="{model}"' in r)


def _cny(usd, multiplier) -> str:
    value = (Decimal(usd) * Decimal(USD_CNY_RATE) * Decimal(multiplier)).quantize(Decimal("0.0001"))
    return f"¥{value:,}"


def test_each_callable_model_with_its_price_in_every_usable_group(customer):
    page = _client(customer).get("/models/").content.decode()
    sonnet = Model.objects.get(name="claude-sonnet-4-5")
    rows = _rows(page, sonnet.name)
    for group in ("ClaudeCode", "Default"):
        multiplier = TokenGroup.objects.get(name=group).multiplier
        assert group in rows and _cny(sonnet.input_usd_per_mtok, multiplier) in rows
    assert "1M input tokens" in rows and "Sora2Official" not in rows
    sora = _rows(page, "sora-2")
    assert "Sora2Official" in sora and "second of video" in sora and "Default" not in sora


def test_models_the_user_group_cannot_call_are_not_listed(customer, outsider):
    premium = Model.objects.filter(tier="premium", enabled=True).first()
    assert premium is not None
    assert _rows(_client(customer).get("/models/").content.decode(), premium.name)  # vip after ¥1,000
    assert not _rows(
        _client(outsider).get("/models/").content.decode(), premium.name
    )  # default: standard only


def test_search_and_kind_filter(customer):
    c = _client(customer)
    page = c.get("/models/?q=CLAUDE").content.decode()
    assert _rows(page, "claude-sonnet-4-5") and not _rows(page, "gpt-5.1")
    page = c.get("/models/?kind=video").content.decode()
    assert _rows(page, "sora-2") and not _rows(page, "claude-sonnet-4-5")
    page = c.get("/models/?q=no-such-model").content.decode()
    assert "No model you can call matches." in page
    partial = c.get("/models/?q=gpt", headers={"HX-Request": "true", "HX-Target": "results"}).content.decode()
    assert partial.lstrip().startswith('<div id="results"') and _rows(partial, "gpt-5.1")


def test_the_page_reads_the_routing_snapshot_not_a_query_per_model(customer, django_assert_max_num_queries):
    c = _client(customer)
    c.get("/models/")  # warm the snapshot
    with django_assert_max_num_queries(6):
        page = c.get("/models/").content.decode()
    assert page.count("data-model=") > 10
