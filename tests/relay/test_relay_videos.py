"""The video endpoints through the live relay, with the official openai SDK: list, remix,
previews, delete, image-to-video and Veo 3.1 in the Default group."""

from decimal import Decimal

import openai
import pytest
import requests

from apiyi_admin.demo import USD_CNY_RATE
from billing.models import LedgerEntry, UsageRecord
from relay.models import VideoJob
from relay.simulator.openai_api import PNG

pytestmark = [pytest.mark.live]


def _client(live, select="Sora2Official"):
    return live.openai(key=live.make_key(select=select))


def test_list_is_owner_scoped_and_paginated(live, reconciled):
    live.sim.configure(upstream="sora", video_ms=0)
    client = _client(live)
    made = [client.videos.create(model="sora-2", prompt=f"clip {i}", seconds="4").id for i in range(3)]
    other = _client(live)
    other.videos.create(model="sora-2", prompt="someone else's", seconds="4")
    first = client.videos.list(limit=2)
    assert [v.id for v in first.data] == made[::-1][:2]
    assert first.has_more is True and first.last_id == made[1]
    assert [v.id for v in client.videos.list(limit=2)] == made[::-1]  # the SDK follows `after`
    assert [v.id for v in client.videos.list(order="asc").data] == made
    with pytest.raises(openai.BadRequestError) as exc:
        client.videos.list(limit=500)
    assert exc.value.body["param"] == "limit"
    with pytest.raises(openai.NotFoundError):
        client.videos.list(after=other.videos.list().data[0].id)


def test_create_and_poll_remix_thumbnail_and_delete(live, reconciled):
    live.sim.configure(upstream="sora", video_ms=100)
    client = _client(live)
    video = client.videos.create_and_poll(
        model="sora-2", prompt="a red fox", seconds="4", poll_interval_ms=100
    )
    assert video.status == "completed"
    assert client.videos.download_content(video.id, variant="thumbnail").read() == PNG
    assert client.videos.download_content(video.id).read()[4:8] == b"ftyp"
    with pytest.raises(openai.BadRequestError) as exc:
        client.videos.download_content(video.id, variant="poster")
    assert exc.value.body["param"] == "variant"

    remix = client.videos.remix(video.id, prompt="the fox, now in snow")
    assert remix.remixed_from_video_id == video.id and remix.seconds == "4"
    source = VideoJob.objects.get(pk=video.id)
    sent = [r for r in live.sim.requests("sora") if r["path"].endswith("/remix")]
    assert [(r["path"], r["body"]) for r in sent] == [
        (f"/u/sora/v1/videos/{source.upstream_job_id}/remix", {"prompt": "the fox, now in snow"})
    ]
    done = client.videos.poll(remix.id, poll_interval_ms=100)
    assert done.status == "completed"
    job = VideoJob.objects.get(pk=remix.id)
    assert UsageRecord.objects.get(request_id=job.request_id).cost_micro == int(
        4 * Decimal("0.10") * Decimal(USD_CNY_RATE) * 1_000_000
    )  # 4 s × $0.10

    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
    assert [r["path"] for r in live.sim.requests("sora") if r["method"] == "DELETE"] == [
        f"/u/sora/v1/videos/{source.upstream_job_id}"
    ]
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    assert [v.id for v in client.videos.list()] == [remix.id]
    assert LedgerEntry.objects.filter(request_id=source.request_id, kind="charge").count() == 1


def test_unfinished_video_cannot_be_remixed_or_deleted(live, reconciled):
    live.sim.configure(upstream="sora", video_ms=600_000)
    client = _client(live)
    video = client.videos.create(model="sora-2", prompt="slow", seconds="4")
    with pytest.raises(openai.BadRequestError, match="only a completed video"):
        client.videos.remix(video.id, prompt="again")
    with pytest.raises(openai.BadRequestError, match="can be deleted once"):
        client.videos.delete(video.id)
    with pytest.raises(openai.NotFoundError):
        _client(live).videos.delete(video.id)  # another account's video is as good as missing


def test_image_to_video_upload_reaches_the_upstream(live, reconciled):
    live.sim.configure(upstream="sora", video_ms=0)
    client = _client(live)
    video = client.videos.create(
        model="sora-2",
        prompt="bring it to life",
        seconds="4",
        input_reference=("first.png", PNG, "image/png"),
    )
    assert video.status in ("queued", "in_progress", "completed")
    sent = next(r for r in live.sim.requests("sora") if r["method"] == "POST")
    assert sent["body"]["input_reference"] == {
        "filename": "first.png",
        "content_type": "image/png",
        "size": len(PNG),
        "head": PNG[:16].hex(),
    }
    assert sent["body"]["prompt"] == "bring it to life" and sent["body"]["model"] == "sora-2"
    with pytest.raises(openai.BadRequestError) as exc:
        client.videos.create(
            model="sora-2", prompt="x", input_reference=("notes.txt", b"hello", "text/plain")
        )
    assert exc.value.body["param"] == "input_reference"


def test_image_url_reference_in_json_reaches_the_upstream(live, reconciled):
    """The SDK only uploads files; apiyi's JSON samples send {image_url} and get it forwarded."""
    live.sim.configure(upstream="sora", video_ms=0)
    key = live.make_key(select="Sora2Official")
    resp = requests.post(
        f"{live.url}/v1/videos",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": "sora-2",
            "prompt": "from a url",
            "input_reference": {"image_url": "https://e.x/a.png"},
        },
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    sent = next(r for r in live.sim.requests("sora") if r["method"] == "POST")
    assert sent["body"]["input_reference"] == {"image_url": "https://e.x/a.png"}
    bad = requests.post(
        f"{live.url}/v1/videos",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "sora-2", "prompt": "x", "input_reference": "https://e.x/a.png"},
        timeout=30,
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input_reference"


def test_veo_in_default_billed_per_call(live, reconciled):
    live.sim.configure(upstream="veo", video_ms=100)
    client = _client(live, select="Default")
    video = client.videos.create_and_poll(
        model="veo-3.1", prompt="a koi pond", seconds="8", poll_interval_ms=100
    )
    assert video.status == "completed" and video.model == "veo-3.1"
    job = VideoJob.objects.get(pk=video.id)
    rec = UsageRecord.objects.get(request_id=job.request_id)
    assert (rec.group_name, rec.channel_name, rec.billing_basis) == ("Default", "veo", "call")
    assert rec.cost_micro == int(Decimal("3.2") * Decimal(USD_CNY_RATE) * 1_000_000)  # one call
    assert client.videos.download_content(video.id).read()[4:8] == b"ftyp"
