"""Optional RPM limits per token and per account, exact across processes."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from django.core.cache import cache

from relay.errors import SATURATED_MESSAGE, RelayError
from relay.ratelimit import rpm_check

NOW = 1_800_000_010.0  # 10 s into a minute window


def _call(token_rpm=None, user_rpm=None, token_id=1, user_id=1, now=NOW):
    rpm_check(token_id=token_id, token_rpm=token_rpm, user_id=user_id, user_rpm=user_rpm, now=now)


def test_off_by_default_counts_nothing():
    for _ in range(100):
        _call()
    assert cache.get("rl:token:1:30000000") is None


def test_token_limit_refuses_with_its_own_429():
    for _ in range(3):
        _call(token_rpm=3)
    with pytest.raises(RelayError) as exc:
        _call(token_rpm=3)
    err = exc.value
    assert err.status == 429 and err.kind == "rate_limited"
    assert "this API key allows 3 requests per minute" in err.message
    assert SATURATED_MESSAGE not in err.message
    assert err.retry_after == 51  # rest of the window, rounded up
    assert err.body("openai")["error"]["code"] == "rate_limit_exceeded"
    assert err.body("anthropic")["error"]["type"] == "rate_limit_error"
    # the next window starts afresh
    _call(token_rpm=3, now=NOW + 60)


def test_account_limit_spans_tokens_and_refusal_gives_back_the_token_count():
    _call(token_rpm=2, user_rpm=2, token_id=1)
    _call(token_rpm=2, user_rpm=2, token_id=2)
    with pytest.raises(RelayError) as exc:
        _call(token_rpm=2, user_rpm=2, token_id=1)
    assert "this account allows 2 requests per minute" in exc.value.message
    # token 1 used only one of its two requests; the refused one was given back
    _call(token_rpm=2, user_rpm=None, token_id=1)
    with pytest.raises(RelayError):
        _call(token_rpm=2, user_rpm=None, token_id=1)


def _burst(n):
    ok = 0
    for _ in range(n):
        try:
            _call(token_rpm=17, user_rpm=40)
            ok += 1
        except RelayError:
            pass
    return ok


@pytest.mark.redis
def test_exact_under_concurrency_across_processes_and_threads():
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=4, mp_context=ctx) as pool:
        from_processes = sum(pool.map(_burst, [10] * 4))
    with ThreadPoolExecutor(max_workers=8) as pool:
        from_threads = sum(pool.map(_burst, [3] * 8))
    assert from_processes == 17
    assert from_threads == 0
    # the account counter holds exactly what was allowed
    assert cache.get("rl:user:1:30000000") == 17
