"""Half-open retries and honest Retry-After for channels the probe holds saturated."""

import time

import openai
import pytest

from billing.models import UsageRecord
from groups import saturation
from groups.models import Channel
from groups.saturation import HALF_OPEN_S, Verdict

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def held(live):
    """Both ClaudeCode channels held saturated by the probe, though the upstream is fine now."""
    channels = list(Channel.objects.filter(name__in=["claude-official", "claude-aws"]))
    for channel in channels:
        saturation.verdict_set(channel.id, Verdict.SATURATED, retry_after_s=1)
    return channels


def test_a_real_call_tries_a_held_channel_and_puts_it_back_in_rotation(live, held):
    key = live.make_key(select="ClaudeCode")
    answer = live.openai(key=key).chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5", messages=HELLO
    )
    assert answer.http_response.status_code == 200
    rec = UsageRecord.objects.get(request_id=answer.headers["x-request-id"])
    served = rec.trace[-1]["channel"]
    assert rec.trace[-1]["outcome"] == "ok"
    channel = next(c for c in held if c.name == served)
    assert saturation.verdict_get(channel.id)["verdict"] == Verdict.HEALTHY
    # routed to at once: the next call needs no trial
    state = saturation.channel_states([channel.id])[channel.id]
    assert not saturation.is_saturated(state, channel.max_concurrency)


def test_trials_are_bounded_and_retry_after_names_the_next_one(live, held):
    key = live.make_key(select="ClaudeCode")
    for channel in held:  # another process just took each channel's trial
        assert saturation.half_open_claim(channel.id)
    before = live.sim.stats()
    with pytest.raises(openai.RateLimitError) as exc:
        live.openai(key=key).chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    assert live.sim.stats() == before  # no upstream call beyond the bounded trials
    assert 1 <= int(exc.value.response.headers["retry-after"]) <= HALF_OPEN_S
    time.sleep(HALF_OPEN_S + 0.1)  # the honest wait was enough
    answer = live.openai(key=key).chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    assert answer.choices[0].message.content


def test_a_trial_that_hits_429_cools_down_for_the_upstreams_retry_after(live, held):
    key = live.make_key(select="ClaudeCode")
    live.sim.configure(upstream="claude-official", error="429", retry_after_s=7)
    live.sim.configure(upstream="claude-aws", error="429", retry_after_s=9)
    with pytest.raises(openai.RateLimitError) as exc:
        live.openai(key=key).chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    assert int(exc.value.response.headers["retry-after"]) == 7
    before = live.sim.stats()
    with pytest.raises(openai.RateLimitError) as exc:
        live.openai(key=key).chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    assert live.sim.stats() == before
    assert 6 <= int(exc.value.response.headers["retry-after"]) <= 7
