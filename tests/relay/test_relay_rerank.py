"""POST /v1/rerank through the live relay: Cohere/Jina shape, routed by the token's groups, per call."""

import pytest
import requests

from billing.models import UsageRecord

pytestmark = [pytest.mark.live]

DOCS = ["the cat sat on the mat", "stock prices fell", "a cat and a dog"]


def _rerank(live, key, **body):
    return requests.post(
        f"{live.url}/v1/rerank", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30
    )


def test_rerank_scores_documents_and_bills_one_call(live, reconciled):
    key = live.make_key(select="Default")
    resp = _rerank(live, key, model="bge-reranker-v2-m3", query="cat mat", documents=DOCS, top_n=2)
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["index"] for r in results] == [0, 2]
    assert results[0]["relevance_score"] > results[1]["relevance_score"] > 0
    rec = UsageRecord.objects.get(request_id=resp.headers["x-request-id"])
    assert (rec.billing_basis, rec.channel_name, rec.cost_micro) == (
        "call",
        "openai-official",
        14_000,
    )  # $0.002 × 7
    sent = live.sim.requests("openai-official")[-1]
    assert sent["path"].endswith("/rerank") and sent["body"]["documents"] == DOCS


def test_rerank_bad_input_and_wrong_group(live, reconciled):
    key = live.make_key(select="Default")
    bad = _rerank(live, key, model="bge-reranker-v2-m3", query="x", documents="not a list")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "documents"
    other = _rerank(
        live, live.make_key(select="Sora2Official"), model="bge-reranker-v2-m3", query="x", documents=DOCS
    )
    assert other.status_code == 404 and other.json()["error"]["code"] == "model_not_found"
