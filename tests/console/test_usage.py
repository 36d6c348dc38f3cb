"""Usage log: owner-scoped list, filters, row details (trace + price), CSV export."""

import csv
import io

from django.test import Client


def _client(user):
    c = Client()
    c.force_login(user)
    return c


TRACE = [
    {"group": "ClaudeCode", "channel": "claude-official", "outcome": "upstream_429", "status": 429, "ms": 12},
    {"group": "Default", "channel": "claude-default", "outcome": "ok", "status": 200, "ms": 340},
]
BREAKDOWN = {
    "basis": "tokens",
    "multiplier": "1.0",
    "usd_cny_rate": "7.2",
    "lines": [
        {"label": "input tokens", "units": "0.001", "unit": "1M tokens", "usd_per_unit": "3", "cny": "0.0216"}
    ],
    "cost_cny": "0.021600",
}


def test_list_is_scoped_and_filterable(customer, cc_token, outsider, make_usage):
    make_usage(customer, cc_token, model_name="claude-sonnet-4-5", cost_micro=21600)
    make_usage(customer, cc_token, model_name="deepseek-v4", request_id="req_deep")
    make_usage(outsider, None, model_name="gpt-5.1", request_id="req_other")
    c = _client(customer)
    page = c.get("/usage/").content.decode()
    assert "claude-sonnet-4-5" in page and "req_deep" in page and "req_other" not in page
    page = c.get("/usage/?model=deepseek-v4").content.decode()
    assert "req_deep" in page and "¥0.021600" not in page
    page = c.get(f"/usage/?token={cc_token.pk}&status=success&ordering=-cost").content.decode()
    assert "¥0.021600" in page
    assert c.get("/usage/?token=abc&date_from=yesterday").status_code == 200


def test_row_detail_shows_trace_and_price(customer, cc_token, make_usage):
    make_usage(
        customer,
        cc_token,
        request_id="req_fb",
        group_name="Default",
        fallback_used=True,
        channel_name="claude-default",
        trace=TRACE,
        price_breakdown=BREAKDOWN,
        cost_micro=21600,
    )
    c = _client(customer)
    page = c.get("/usage/req_fb/").content.decode()
    assert "upstream_429" in page and "claude-default" in page
    assert "7.2 ¥/$" in page and "¥0.021600" in page and "Default, the group that served the call" in page
    assert "succeeded through the fallback group Default" in page
    partial = c.get("/usage/req_fb/", headers={"HX-Request": "true", "HX-Target": "dialog"}).content.decode()
    assert "<html" not in partial and "upstream_429" in partial


def test_another_users_record_is_404(customer, cc_token, outsider, make_usage):
    make_usage(customer, cc_token, request_id="req_mine")
    assert _client(outsider).get("/usage/req_mine/").status_code == 404


def test_csv_export_is_filtered_and_scoped(customer, cc_token, outsider, make_usage):
    make_usage(customer, cc_token, request_id="req_a", model_name="glm-5.1", cost_micro=1234)
    make_usage(customer, cc_token, request_id="req_b", model_name="deepseek-v4")
    make_usage(outsider, None, request_id="req_x", model_name="glm-5.1")
    response = _client(customer).get("/usage/export.csv?model=glm-5.1")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["request_id"] for r in rows] == ["req_a"]
    assert rows[0]["cost_cny"] == "0.001234" and rows[0]["group"] == "ClaudeCode"


def test_list_paginates_and_keeps_filters(customer, cc_token, make_usage):
    for i in range(30):
        make_usage(customer, cc_token, request_id=f"req_{i:02d}", model_name="glm-5.1")
    c = _client(customer)
    page = c.get("/usage/?model=glm-5.1").content.decode()
    assert "1–25 of 30" in page and "?model=glm-5.1&amp;page=2" in page
    second = c.get("/usage/?model=glm-5.1&page=2", headers={"HX-Request": "true", "HX-Target": "results"})
    text = second.content.decode()
    assert "26–30 of 30" in text and text.count("data-request-id=") == 5
    assert c.get("/usage/?page=999").status_code == 200  # out of range shows the last page


def test_csv_export_neutralises_formulas(customer, cc_token, make_usage):
    make_usage(customer, cc_token, request_id="req_f", model_name="=HYPERLINK(1)")
    body = b"".join(_client(customer).get("/usage/export.csv").streaming_content).decode()
    row = next(csv.DictReader(io.StringIO(body)))
    assert row["model"] == "'=HYPERLINK(1)"


def test_price_lines_count_in_plain_units(customer, cc_token, make_usage):
    breakdown = dict(
        BREAKDOWN,
        lines=[
            {
                "label": "input tokens",
                "units": "0.000002",
                "unit": "1M tokens",
                "usd_per_unit": "3",
                "cny": "0.000043",
            },
            {
                "label": "output tokens",
                "units": "0.001234",
                "unit": "1M tokens",
                "usd_per_unit": "15",
                "cny": "0.13",
            },
        ],
    )
    make_usage(customer, cc_token, request_id="req_plain", cost_micro=130043, price_breakdown=breakdown)
    page = _client(customer).get("/usage/req_plain/").content.decode()
    table = page.split('data-testid="price-breakdown"')[1].split("</table>")[0]
    assert "2 tokens" in table and "1,234 tokens" in table
    assert "× 1M tokens" not in table and "per 1M tokens" in table


def test_a_successful_call_shows_no_failure_wording(customer, cc_token, make_usage):
    make_usage(customer, cc_token, request_id="req_fine", cost_micro=100)
    make_usage(customer, cc_token, request_id="req_broke", failed=True, status="error", http_status=502)
    c = _client(customer)
    assert "Why did it fail?" not in c.get("/usage/req_fine/").content.decode()
    assert "Why did it fail?" in c.get("/usage/req_broke/").content.decode()
