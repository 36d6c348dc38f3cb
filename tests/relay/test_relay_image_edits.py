"""POST /v1/images/edits through the live relay with the official openai SDK: uploads reach the
upstream intact, answers look like generations, and each image is billed at the model's price."""

from decimal import ROUND_HALF_UP, Decimal

import openai
import pytest
import requests

from apiyi_admin.demo import MODELS, USD_CNY_RATE
from billing.models import UsageRecord
from relay.simulator.openai_api import PNG

pytestmark = [pytest.mark.live]

MASK = PNG + b"mask"


def _per_image(model: str) -> int:
    cny = MODELS[model][2]["usd_per_call"] * USD_CNY_RATE
    return int((cny * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_edit_forwards_the_image_and_mask_and_bills_each_image(live, reconciled, tmp_path):
    source = tmp_path / "cat.png"
    source.write_bytes(PNG)
    client = live.openai(key=live.make_key(select="Default"))
    with source.open("rb") as image:
        raw = client.images.with_raw_response.edit(
            model="nano-banana-pro",
            image=image,
            mask=("mask.png", MASK, "image/png"),
            prompt="give the cat a hat",
            n=2,
            size="1024x1024",
        )
    urls = [item.url for item in raw.parse().data]
    assert len(set(urls)) == 2 and all(u.startswith(f"{live.url}/v1/images/files/") for u in urls)
    assert requests.get(urls[0], timeout=30).content == PNG
    sent = live.sim.requests("openai-official")[-1]
    assert sent["path"].endswith("/v1/images/edits")
    assert sent["body"]["image"] == {
        "filename": "cat.png",
        "content_type": "image/png",
        "size": len(PNG),
        "head": PNG[:16].hex(),
    }
    assert sent["body"]["mask"]["size"] == len(MASK) and sent["body"]["mask"]["filename"] == "mask.png"
    assert (sent["body"]["prompt"], sent["body"]["n"], sent["body"]["size"]) == (
        "give the cat a hat",
        "2",
        "1024x1024",
    )
    rec = live.settled(raw.headers["x-request-id"])
    assert (rec.status, rec.channel_name) == ("success", "openai-official")
    assert rec.cost_micro == 2 * _per_image("nano-banana-pro") == 1_876_000  # 2 × $0.134 × 7


def test_edit_of_several_images_as_b64(live, reconciled):
    client = live.openai(key=live.make_key(select="Default"))
    images = client.images.edit(
        model="nano-banana-pro",
        image=[("a.png", PNG, "image/png"), ("b.png", PNG + b"b", "image/png")],
        prompt="merge them",
        response_format="b64_json",
    )
    assert len(images.data) == 1 and images.data[0].b64_json and images.data[0].url is None
    sent = live.sim.requests("openai-official")[-1]
    assert [i["filename"] for i in sent["body"]["image[]"]] == ["a.png", "b.png"]
    assert [i["size"] for i in sent["body"]["image[]"]] == [len(PNG), len(PNG) + 1]


def test_edit_refuses_a_missing_image_and_an_unknown_model(live, reconciled):
    key = live.make_key(select="Default")
    no_image = requests.post(
        f"{live.url}/v1/images/edits",
        headers={"Authorization": f"Bearer {key}"},
        data={"model": "nano-banana-pro", "prompt": "a hat"},
        timeout=30,
    )
    assert no_image.status_code == 400 and no_image.json()["error"]["param"] == "image"
    assert "'image'" in no_image.json()["error"]["message"]
    client = live.openai(key=key)
    with pytest.raises(openai.BadRequestError) as no_prompt:
        client.images.edit(model="nano-banana-pro", image=("a.png", PNG, "image/png"), prompt="")
    assert no_prompt.value.body["param"] == "prompt"
    with pytest.raises(openai.NotFoundError):
        client.images.edit(model="no-such-image-model", image=("a.png", PNG, "image/png"), prompt="a hat")
    assert not UsageRecord.objects.filter(status="success").exists()
