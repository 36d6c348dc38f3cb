"""Usage extraction: billing input tokens never include cache reads or writes."""

import pytest

from core.pricing import Usage
from relay.convert.usage import (
    estimate_tokens,
    merge_anthropic_usage,
    request_chars,
    usage_from_anthropic,
    usage_from_openai,
    usage_to_anthropic,
    usage_to_openai,
)

OPENAI_USAGE = {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 64,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
ANTHROPIC_USAGE = {
    "input_tokens": 21,
    "cache_creation_input_tokens": 188086,
    "cache_read_input_tokens": 1000,
    "cache_creation": {"ephemeral_5m_input_tokens": 188086, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 393,
    "service_tier": "standard",
}


def test_openai_prompt_tokens_include_cached_tokens():
    assert usage_from_openai(OPENAI_USAGE) == Usage(
        input_tokens=86, output_tokens=300, cache_read_tokens=1920, cache_write_tokens=0
    )


def test_deepseek_cache_hit_fields():
    u = {
        "prompt_tokens": 500,
        "completion_tokens": 20,
        "total_tokens": 520,
        "prompt_cache_hit_tokens": 384,
        "prompt_cache_miss_tokens": 116,
    }
    assert usage_from_openai(u) == Usage(input_tokens=116, output_tokens=20, cache_read_tokens=384)


def test_openai_cache_write_dialect_is_subtracted_from_input():
    u = {
        "prompt_tokens": 1000,
        "completion_tokens": 5,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 800},
    }
    assert usage_from_openai(u) == Usage(
        input_tokens=100, output_tokens=5, cache_read_tokens=100, cache_write_tokens=800
    )


def test_anthropic_input_tokens_exclude_cache():
    assert usage_from_anthropic(ANTHROPIC_USAGE) == Usage(
        input_tokens=21, output_tokens=393, cache_read_tokens=1000, cache_write_tokens=188086
    )


@pytest.mark.parametrize("bad", [None, [], "x", {}, {"foo": 1}, {"prompt_tokens": "12"}])
def test_missing_or_garbage_usage_is_none(bad):
    assert usage_from_openai(bad) is None
    assert usage_from_anthropic(bad if bad != {"prompt_tokens": "12"} else {"input_tokens": None}) is None


def test_garbage_values_never_raise_and_never_go_negative():
    u = usage_from_openai(
        {"prompt_tokens": 10, "completion_tokens": True, "prompt_tokens_details": {"cached_tokens": 50}}
    )
    assert u == Usage(input_tokens=0, output_tokens=0, cache_read_tokens=10)
    assert usage_from_anthropic({"input_tokens": -5, "output_tokens": 3.0}) == Usage(output_tokens=3)


def test_round_trips_through_both_formats():
    usage = Usage(input_tokens=86, output_tokens=300, cache_read_tokens=1920, cache_write_tokens=12)
    assert usage_from_openai(usage_to_openai(usage)) == usage
    assert usage_from_anthropic(usage_to_anthropic(usage)) == usage
    assert usage_to_openai(usage)["prompt_tokens"] == 86 + 1920 + 12


def test_merge_stream_usage_keeps_start_counts_and_takes_cumulative_output():
    start = {
        "input_tokens": 472,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 10,
        "output_tokens": 2,
    }
    merged = merge_anthropic_usage(start, {"output_tokens": 89})
    assert usage_from_anthropic(merged) == Usage(input_tokens=472, output_tokens=89, cache_read_tokens=10)
    assert merge_anthropic_usage(start, None) == start
    assert merge_anthropic_usage(None, {"output_tokens": 3}) == {"output_tokens": 3}


def test_estimate_tokens():
    assert estimate_tokens("") == 0
    assert estimate_tokens(0) == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens(4000) == 1000
    assert estimate_tokens(b"12345678") == 2


def test_request_chars_counts_text_not_image_payloads():
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "abcd"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "12345678"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 100_000}},
                ],
            },
        ],
        "tools": [{"type": "function", "function": {"name": "f", "description": "xy"}}],
    }
    assert request_chars(body) == 4 + 8 + 1000 + 1 + 2
    assert request_chars({"system": [{"type": "text", "text": "abc"}], "messages": "zz"}) == 5
    assert request_chars(None) == 0
