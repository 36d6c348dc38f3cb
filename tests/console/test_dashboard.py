"""Dashboard: balance, spend, calls by group with error rate, recent failures."""

from django.test import Client


def test_dashboard_aggregates_only_the_users_calls(customer, cc_token, outsider, make_usage):
    make_usage(customer, cc_token, cost_micro=2_500_000, group_name="ClaudeCode")
    make_usage(customer, cc_token, cost_micro=1_000_000, group_name="Default", fallback_used=True)
    make_usage(
        customer,
        cc_token,
        failed=True,
        group_name="ClaudeCode",
        http_status=429,
        error_code="upstream_saturated",
        error_message="Current group's upstream is saturated",
    )
    make_usage(outsider, None, cost_micro=9_000_000, group_name="Default")
    c = Client()
    c.force_login(customer)
    page = c.get("/").content.decode()
    assert "¥3.5000" in page  # today's and this week's spend, not the outsider's ¥9
    assert "¥9.0000" not in page
    by_group = page.split("Calls by group")[1].split("</section>")[0]
    assert "ClaudeCode" in by_group and "50.0% (1)" in by_group
    failures = page.split("Recent failures")[1]
    assert "upstream is saturated" in failures and "/why/?request_id=" in failures
    assert "<svg" in page and "¥1,096.50" in page


def test_saturated_refusals_count_as_errors_of_the_saturated_group(customer, cc_token, make_usage):
    trace = [
        {"group": "ClaudeCode", "channel": "claude-official", "outcome": "saturated"},
        {"group": "Default", "channel": "openai-compatible", "outcome": "saturated"},
    ]
    make_usage(customer, cc_token, cost_micro=1_000_000, group_name="ClaudeCode")
    make_usage(
        customer,
        cc_token,
        failed=True,
        group_name="",
        trace=trace,
        http_status=429,
        error_code="upstream_saturated",
        error_message="Current group's upstream is saturated",
    )
    make_usage(customer, cc_token, failed=True, group_name="", http_status=401, error_code="invalid_api_key")
    c = Client()
    c.force_login(customer)
    by_group = c.get("/").content.decode().split("Calls by group")[1].split("</section>")[0]
    rows = {r.split("</td>")[0].split(">")[-1].strip(): r for r in by_group.split("<tr>")[2:]}
    assert "50.0% (1)" in rows["ClaudeCode"]  # its one success and the saturated refusal
    assert "100.0% (1)" in rows["Default"]  # the fallback group was saturated too
    assert "100.0% (1)" in rows["(none: refused before routing)"]  # only the auth failure
