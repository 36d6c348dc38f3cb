"""Spend charts: a date range in the user's dates, per day with an axis, per model and per token."""

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from billing.charts import _nice_step, bar_chart


def _client(user):
    c = Client()
    c.force_login(user)
    return c


def _at(record, days_ago):
    type(record).objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(days=days_ago))


def test_spend_by_day_model_and_token_in_the_range(customer, cc_token, outsider, make_usage):
    _at(make_usage(customer, cc_token, model_name="deepseek-v4", cost_micro=1_500_000), 0)
    _at(make_usage(customer, cc_token, model_name="deepseek-v4", cost_micro=500_000), 2)
    _at(make_usage(customer, None, model_name="gpt-5.1", cost_micro=250_000), 2)
    _at(make_usage(customer, cc_token, model_name="claude-sonnet-4-5", cost_micro=9_000_000), 40)
    make_usage(outsider, None, model_name="secret-model", cost_micro=7_000_000)
    page = _client(customer).get("/usage/spend/").content.decode()
    assert page.count('data-testid="spend-bar"') == 30  # the last 30 days by default
    by_model = page.split('data-testid="spend-by-model"')[1].split("</table>")[0]
    assert by_model.index("deepseek-v4") < by_model.index("gpt-5.1")  # biggest spend first
    assert "¥2.0000" in by_model and "claude-sonnet-4-5" not in by_model and "secret-model" not in page
    by_token = page.split('data-testid="spend-by-token"')[1].split("</table>")[0]
    assert cc_token.name in by_token and "¥0.2500" in by_token  # the call without a token: "—"
    assert "¥2.2500" in page  # the total
    today = timezone.localdate()
    wide = _client(customer).get(f"/usage/spend/?date_from={today - timedelta(days=45)}&date_to={today}")
    assert "claude-sonnet-4-5" in wide.content.decode()


def test_each_bar_has_a_tooltip_with_its_date_and_amount(customer, cc_token, make_usage):
    make_usage(customer, cc_token, cost_micro=1_234_500)
    today = timezone.localdate()
    page = _client(customer).get(f"/usage/spend/?date_from={today}&date_to={today}").content.decode()
    assert f"<title>{today:%Y-%m-%d}: ¥1.2345</title>" in page


def test_a_bad_range_is_explained_and_the_default_shown(customer):
    c = _client(customer)
    page = c.get("/usage/spend/?date_from=2026-05-02&date_to=2026-05-01").content.decode()
    assert "The start date is after the end date." in page and page.count('data-testid="spend-bar"') == 30
    page = c.get("/usage/spend/?date_from=2020-01-01&date_to=2026-01-01").content.decode()
    assert "at most 366 days" in page
    assert "Enter a valid date." in c.get("/usage/spend/?date_from=yesterday&date_to=x").content.decode()


def test_axis_ticks_are_round_and_cover_the_highest_bar():
    assert [_nice_step(v) for v in (0, 1_000_000, 3_700_000, 9_000_000, 41_000_000)] == [
        1,
        500_000,
        1_000_000,
        5_000_000,
        20_000_000,
    ]
    chart = bar_chart([("a", "a", 3_700_000), ("b", "b", 0)])
    assert chart["ticks"][-1].value_micro >= 3_700_000 and chart["bars"][1].height == 0
    assert chart["bars"][0].y == chart["bottom"] - chart["bars"][0].height
