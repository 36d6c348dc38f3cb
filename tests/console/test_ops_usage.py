"""Operator usage pages: all users' calls, request-id lookup, spend/errors; customers refused."""

import pytest


@pytest.fixture
def failed_call(customer, cc_token, make_usage):
    trace = [
        {"group": "ClaudeCode", "channel": "claude-official", "outcome": "saturated", "status": 0, "ms": 0}
    ]
    return make_usage(
        customer,
        cc_token,
        failed=True,
        request_id="req_ops_429",
        http_status=429,
        error_code="upstream_saturated",
        refusal_reason="saturated",
        trace=trace,
        error_message="Current group's upstream is saturated, please try again later",
    )


@pytest.mark.parametrize("url", ["/ops/usage/", "/ops/lookup/?request_id=req_ops_429", "/ops/spend/"])
def test_customers_never_reach_operator_usage_pages(client_for, customer, failed_call, url):
    assert client_for(customer).get(url).status_code == 403


def test_anonymous_is_sent_to_login(client, failed_call):
    response = client.get("/ops/lookup/?request_id=req_ops_429")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_lookup_shows_another_users_call_with_reason_and_advice(client_for, operator, customer, failed_call):
    page = client_for(operator).get("/ops/lookup/?request_id=req_ops_429").content.decode()
    result = page.split('data-testid="lookup-result"')[1]
    assert customer.username in result
    assert "cc" in result  # the token
    assert "<code>saturated</code>" in result
    assert "is not a limit on your account" in result
    assert "claude-official" in result.split('data-testid="trace"')[1]


def test_lookup_of_an_unknown_id_says_so(client_for, operator, failed_call):
    page = client_for(operator).get("/ops/lookup/?request_id=req_nope").content.decode()
    assert "lookup-result" not in page
    assert "req_nope" in page


def test_all_usage_filters_by_user(client_for, operator, customer, outsider, failed_call, make_usage):
    make_usage(outsider, request_id="req_other", cost_micro=0)
    c = client_for(operator)
    page = c.get("/ops/usage/").content.decode()
    assert "req_ops_429" in page and "req_other" in page
    page = c.get(f"/ops/usage/?user={outsider.pk}").content.decode()
    assert "req_other" in page and "req_ops_429" not in page
    page = c.get("/ops/usage/?status=error").content.decode()
    assert "req_ops_429" in page and "req_other" not in page


def test_spend_per_user_and_per_channel(client_for, operator, customer, cc_token, make_usage):
    make_usage(customer, cc_token, cost_micro=1_500_000, channel_name="claude-official")
    make_usage(customer, cc_token, failed=True, http_status=502, channel_name="claude-official")
    c = client_for(operator)
    table = c.get("/ops/spend/").content.decode().split('data-testid="spend-table"')[1]
    row = table.split(customer.username)[1].split("</tr>")[0]
    assert ">2<" in row and ">1<" in row and "50%" in row and "1.50" in row
    table = c.get("/ops/spend/?by=channel").content.decode().split('data-testid="spend-table"')[1]
    assert "claude-official" in table
    empty = c.get("/ops/spend/?date_from=2001-01-01&date_to=2001-01-02").content.decode()
    assert customer.username not in empty.split('data-testid="spend-table"')[1]
