"""'Why did my call fail?': request id → trace and what to change, in the guide's words."""

from django.test import Client


def _client(user):
    c = Client()
    c.force_login(user)
    return c


def test_model_not_in_the_group_suggests_the_group_that_offers_it(customer, groups, make_usage):
    from tokens.services import token_create

    token, _ = token_create(user=customer, name="cc only", select_group=groups["ClaudeCode"])
    make_usage(
        customer,
        token,
        failed=True,
        request_id="req_404",
        model_name="gpt-5.1",
        http_status=404,
        error_code="model_not_found",
        error_message="The model gpt-5.1 is not offered by ClaudeCode.",
    )
    page = _client(customer).get("/why/?request_id=req_404").content.decode()
    assert "Model gpt-5.1 is not in ClaudeCode; offered by Default — add Default as a fallback group" in page
    assert "The model gpt-5.1 is not offered by ClaudeCode." in page


def test_saturation_is_explained_as_upstream_not_a_throttle(customer, cc_token, make_usage):
    trace = [
        {"group": "ClaudeCode", "channel": "claude-official", "outcome": "saturated", "status": 0, "ms": 0}
    ]
    make_usage(
        customer,
        cc_token,
        failed=True,
        request_id="req_429",
        http_status=429,
        error_code="upstream_saturated",
        trace=trace,
        error_message="Current group's upstream is saturated, please try again later",
    )
    page = _client(customer).get("/why/?request_id=req_429").content.decode()
    assert "is not a limit on your account" in page
    assert "exponential backoff" in page
    assert "saturated" in page.split('data-testid="trace"')[1]


def test_premium_model_for_a_standard_user_group(groups, user_groups, make_user, make_usage):
    from tokens.services import token_create

    user = make_user(user_group=user_groups["default"])
    token, _ = token_create(user=user, name="t", select_group=groups["ClaudeCode"])
    make_usage(
        user,
        token,
        failed=True,
        request_id="req_403",
        model_name="claude-opus-4-6",
        http_status=403,
        error_code="permission_error",
    )
    page = _client(user).get("/why/?request_id=req_403").content.decode()
    assert "claude-opus-4-6 is a premium model; your user group (default) may call standard models" in page


def test_insufficient_balance(customer, cc_token, make_usage):
    make_usage(
        customer,
        cc_token,
        failed=True,
        request_id="req_402",
        http_status=402,
        error_code="insufficient_quota",
        error_message="insufficient balance",
    )
    assert "recharge your wallet" in _client(customer).get("/why/?request_id=req_402").content.decode()


def test_someone_elses_request_id_is_not_found(customer, cc_token, outsider, make_usage):
    make_usage(
        customer,
        cc_token,
        failed=True,
        request_id="req_secret",
        http_status=404,
        error_code="model_not_found",
        error_message="secret detail",
    )
    page = _client(outsider).get("/why/?request_id=req_secret").content.decode()
    assert "No call with the request id" in page and "secret detail" not in page


def test_empty_form(customer):
    page = _client(customer).get("/why/").content.decode()
    assert 'name="request_id"' in page and "No call with" not in page


def test_upstream_failure_suggests_a_group_not_yet_on_the_token(customer, groups, make_usage):
    from tokens.services import token_create

    token, _ = token_create(user=customer, name="cc only", select_group=groups["ClaudeCode"])
    make_usage(
        customer, token, failed=True, request_id="req_502", http_status=502, error_code="upstream_error"
    )
    page = _client(customer).get("/why/?request_id=req_502").content.decode()
    assert "you were not charged" in page
    assert "Adding Default as a fallback group would add more channels for claude-sonnet-4-5" in page
