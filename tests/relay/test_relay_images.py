"""Generated image URLs through the live relay point at the relay, never at the channel's upstream."""

import openai
import pytest
import requests

from relay.simulator.openai_api import PNG

pytestmark = [pytest.mark.live]


def test_image_urls_are_relay_urls_that_serve_the_image(live, reconciled):
    client = live.openai(key=live.make_key(select="Default"))
    images = client.images.generate(model="nano-banana-pro", prompt="a cat", n=2)
    urls = [item.url for item in images.data]
    assert len(set(urls)) == 2
    upstream_base = live.sim.base_url("openai-official").split("/u/")[0]
    for url in urls:
        assert url.startswith(f"{live.url}/v1/images/files/")
        assert upstream_base not in url and "openai-official" not in url
        resp = requests.get(url, timeout=30)  # no key: an <img> tag sends none
        assert resp.status_code == 200 and resp.content == PNG
        assert resp.headers["content-type"] == "image/png"
    missing = requests.get(f"{live.url}/v1/images/files/nope", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_b64_images_pass_through(live, reconciled):
    client = live.openai(key=live.make_key(select="Default"))
    images = client.images.generate(model="nano-banana-pro", prompt="a cat", response_format="b64_json")
    assert images.data[0].b64_json and images.data[0].url is None
    with pytest.raises(openai.NotFoundError):
        client.images.generate(model="no-such-image-model", prompt="a cat")
