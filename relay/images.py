"""Generated images behind relay URLs: clients never see a channel's upstream host.

An upstream image URL is kept in the cache under a random id for as long as OpenAI keeps its
own image URLs (an hour); `GET /v1/images/files/{id}` fetches it and streams it on. The id is
the capability, as in OpenAI's signed URLs (an `<img>` tag sends no key), and the upstream URL
is never given out, not even encoded. The upstream is fetched without the channel's key.
"""

from __future__ import annotations

import secrets

import aiohttp
from django.core.cache import cache

from .errors import RelayError
from .upstream import relayed_body, session, timeout

URL_TTL_S = 3600
PREFIX = "relay:image:"
IMAGE_ID_BYTES = 24


async def hide_upstream_urls(request, data: dict, channel) -> dict:
    """The upstream's answer with every image `url` replaced by a relay URL."""
    items = data.get("data")
    if not isinstance(items, list):
        return data
    stored = {}
    out = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            image_id = secrets.token_urlsafe(IMAGE_ID_BYTES)
            stored[PREFIX + image_id] = (item["url"], channel.allow_private_network)
            item = dict(item, url=request.build_absolute_uri(f"/v1/images/files/{image_id}"))
        out.append(item)
    if stored:
        await cache.aset_many(stored, timeout=URL_TTL_S)
    return dict(data, data=out)


async def image_file(image_id: str):
    """The image behind a relay URL, streamed from the upstream; a 404 once it has expired."""
    found = await cache.aget(PREFIX + image_id)
    if found is None:
        raise RelayError("not_found", "No such image, or its URL has expired (image URLs last an hour).")
    url, allow_private = found
    try:
        resp = await session(allow_private=allow_private).get(url, timeout=timeout(60), allow_redirects=False)
    except (aiohttp.ClientError, TimeoutError):
        raise RelayError("upstream", "The image could not be fetched from the upstream; try again.") from None
    if resp.status != 200:
        resp.close()
        raise RelayError("upstream", f"The image upstream answered HTTP {resp.status}; try again.")
    return relayed_body(resp, "image/png")
