"""The groups guide's cases, made true by the live relay."""

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest

from apiyi_admin.demo import USD_CNY_RATE as RATE
from billing.models import LedgerEntry, UsageRecord
from groups.models import Channel
from groups.saturation import inflight_acquire
from relay.errors import SATURATED_MESSAGE
from relay.models import VideoJob
from relay.tasks import video_job_poll

SORA_4S = int(Decimal("0.4") * RATE * 1_000_000)  # sora-2, 4 s × $0.10 × rate

pytestmark = [pytest.mark.live]

HELLO = [{"role": "user", "content": "hello"}]


def test_wrong_group_gets_404_naming_the_right_group(live):
    key = live.make_key(select="Default")
    with pytest.raises(openai.NotFoundError) as exc:
        live.openai(key=key).videos.create(model="sora-2", prompt="a cat on a skateboard", seconds="4")
    message = exc.value.body["message"]
    assert exc.value.body["code"] == "model_not_found"
    assert "(Default)" in message and "Sora2Official" in message
    assert "Wan" not in message  # only groups that offer sora-2 are named


def _fill_channels(*names: str) -> None:
    """Every ClaudeCode channel at its max concurrency, as if other calls were in flight."""
    for name in names:
        channel = Channel.objects.get(name=name)
        channel.max_concurrency = 1
        channel.save()
        assert inflight_acquire(channel.pk, 1)


def test_saturated_group_gets_exact_429(live, reconciled):
    _fill_channels("claude-official", "claude-aws")
    key = live.make_key(select="ClaudeCode")
    with pytest.raises(openai.RateLimitError) as exc:
        live.openai(key=key).chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    assert exc.value.body["message"] == SATURATED_MESSAGE
    assert exc.value.response.headers["retry-after"]
    assert live.sim.stats() == {}


def test_fallback_group_serves_when_select_group_saturated_billed_at_its_multiplier(live, reconciled):
    _fill_channels("claude-official", "claude-aws")
    key = live.make_key(select="ClaudeCode", fallbacks=["Default"])
    raw = live.openai(key=key).chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5", messages=HELLO
    )
    assert raw.parse().choices[0].message.content
    rec = UsageRecord.objects.get(request_id=raw.headers["x-request-id"])
    assert (rec.group_name, rec.channel_name, rec.fallback_used) == ("Default", "claude-default", True)
    assert rec.multiplier == Decimal("1.0") and rec.price_breakdown["multiplier"] == "1.0000"
    assert [(a["group"], a["outcome"]) for a in rec.trace] == [
        ("ClaudeCode", "saturated"),
        ("ClaudeCode", "saturated"),
        ("Default", "ok"),
    ]


def test_claudecode_is_billed_at_095_of_default(live, reconciled):
    costs = {}
    for group in ("ClaudeCode", "Default"):
        key = live.make_key(select=group)
        raw = live.anthropic(key=key).messages.with_raw_response.create(
            model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "same words"}]
        )
        rec = UsageRecord.objects.get(request_id=raw.headers["x-request-id"])
        assert rec.group_name == group
        costs[group] = (rec.cost_micro, rec.input_tokens, rec.output_tokens)
    (cc_cost, *cc_usage), (default_cost, *default_usage) = costs["ClaudeCode"], costs["Default"]
    assert cc_usage == default_usage
    assert abs(Decimal(cc_cost) - Decimal(default_cost) * Decimal("0.95")) <= 1


def test_video_in_sora2official_billed_per_second(live, reconciled):
    live.sim.configure(upstream="sora", video_ms=200)
    key = live.make_key(select="Sora2Official")
    client = live.openai(key=key)
    raw = client.videos.with_raw_response.create(model="sora-2", prompt="a lighthouse at dawn", seconds="8")
    video = raw.parse()
    assert video.status in ("queued", "in_progress")
    request_id = raw.headers["x-request-id"]
    hold = LedgerEntry.objects.get(request_id=request_id, kind="hold")
    assert hold.amount_micro == -int(Decimal("0.8") * RATE * 1_000_000)  # 8 s × $0.10 × rate × 1.0
    finished = client.videos.poll(video.id, poll_interval_ms=100)
    assert finished.status == "completed"
    rec = UsageRecord.objects.get(request_id=request_id)
    assert (rec.status, rec.billing_basis, rec.seconds, rec.cost_micro) == (
        "success",
        "seconds",
        8,
        int(Decimal("0.8") * RATE * 1_000_000),
    )
    assert rec.group_name == "Sora2Official" and rec.channel_name == "sora"
    assert LedgerEntry.objects.filter(request_id=request_id, kind="charge").count() == 1
    content = client.videos.download_content(video.id)
    assert content.read()[4:8] == b"ftyp"
    # polling again changes nothing: settled exactly once
    client.videos.retrieve(video.id)
    assert video_job_poll.apply(args=(video.id,)).result == "done"
    assert LedgerEntry.objects.filter(request_id=request_id).count() == 3  # hold, release, charge


def test_video_settled_by_the_worker_task(live, reconciled):
    live.sim.configure(upstream="sora", video_ms=100)
    key = live.make_key(select="Sora2Official")
    video = live.openai(key=key).videos.create(model="sora-2", prompt="waves", seconds="4")
    job = VideoJob.objects.get(pk=video.id)
    for _ in range(200):
        if video_job_poll.apply(args=(job.pk,)).result == "completed":
            break
        time.sleep(0.05)
    job.refresh_from_db()
    assert job.status == "completed" and job.cost_micro == SORA_4S
    assert UsageRecord.objects.get(request_id=job.request_id).cost_micro == SORA_4S


def test_failed_video_releases_the_hold(live, reconciled):
    live.sim.configure(upstream="sora", video_ms=100, error="video_failed")
    key = live.make_key(select="Sora2Official")
    client = live.openai(key=key)
    video = client.videos.create(model="sora-2", prompt="waves", seconds="4")
    finished = client.videos.poll(video.id, poll_interval_ms=100)
    assert finished.status == "failed"
    job = VideoJob.objects.get(pk=video.id)
    rec = UsageRecord.objects.get(request_id=job.request_id)
    assert (rec.status, rec.cost_micro) == ("error", 0)
    assert not LedgerEntry.objects.filter(request_id=job.request_id, kind="charge").exists()
    assert live.token_of(key).user.wallet.held_micro == 0


def test_video_timeout_releases_the_hold(live, reconciled, monkeypatch):
    live.sim.configure(upstream="sora", video_ms=600_000)
    key = live.make_key(select="Sora2Official")
    video = live.openai(key=key).videos.create(model="sora-2", prompt="slow", seconds="4")
    monkeypatch.setattr("relay.services.VIDEO_TIMEOUT_S", 0)
    assert video_job_poll.apply(args=(video.id,)).result == "expired"
    job = VideoJob.objects.get(pk=video.id)
    assert job.status == "failed" and job.cost_micro == 0
    assert live.token_of(key).user.wallet.held_micro == 0


@pytest.mark.postgres
def test_same_load_saturates_one_group_and_succeeds_with_a_fallback(live, reconciled, settings):
    """Concurrent calls on a group whose two channels take 2 calls each: the overflow gets the exact
    429 and no channel ever sees more than its max concurrency; with a fallback group attached every
    call succeeds, the overflow billed at the fallback group's multiplier."""
    settings.RELAY_UPSTREAM_READ_TIMEOUT = 60
    for name in ("claude-official", "claude-aws"):
        Channel.objects.filter(name=name).update(max_concurrency=2)
    Channel.objects.get(name="claude-default").save()  # one save bumps the routing version
    live.sim.configure(upstream="*", latency_ms=4000)

    def fire(key):
        client = live.openai(key=key, timeout=60)
        try:
            raw = client.chat.completions.with_raw_response.create(model="claude-sonnet-4-5", messages=HELLO)
            return 200, raw.headers["x-request-id"]
        except openai.RateLimitError as exc:
            return 429, exc.body["message"]

    alone = live.make_key(select="ClaudeCode")
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(fire, [alone] * 10))
    statuses = [status for status, _ in results]
    assert statuses.count(429) >= 1 and statuses.count(200) >= 4
    assert {message for status, message in results if status == 429} == {SATURATED_MESSAGE}
    stats = live.sim.stats()
    assert stats["claude-official"]["max_in_flight"] <= 2 and stats["claude-aws"]["max_in_flight"] <= 2

    with_fallback = live.make_key(select="ClaudeCode", fallbacks=["Default"])
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(fire, [with_fallback] * 10))
    assert [status for status, _ in results] == [200] * 10
    records = UsageRecord.objects.filter(request_id__in=[rid for _, rid in results])
    multipliers = {(rec.group_name, rec.multiplier) for rec in records}
    assert multipliers <= {("ClaudeCode", Decimal("0.95")), ("Default", Decimal("1.0"))}
    assert ("Default", Decimal("1.0")) in multipliers
    assert all(rec.fallback_used == (rec.group_name == "Default") for rec in records)
