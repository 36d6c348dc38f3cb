#!/usr/bin/env python3
"""Automation example: create a token with a fallback group, call the relay with it, then read
back the call's usage record (route taken, tokens, cost in RMB) through the management API.

    APIYI_BASE_URL=http://127.0.0.1:8000 APIYI_MANAGEMENT_KEY=mk-... python examples/automation.py

Options: --group ClaudeCode --fallback Default --model claude-sonnet-4-5 --keep (keep the token).
Prints one JSON object with the token, request id, group used, fallback flag and cost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import requests


class Api:
    """The management API (/api/v1/) with an mk- key."""

    def __init__(self, base_url: str, key: str):
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def call(self, method: str, path: str, **kwargs) -> dict | list | None:
        response = self.session.request(method, f"{self.base}/api/v1/{path}", timeout=30, **kwargs)
        if response.status_code >= 400:
            body = response.json()
            raise SystemExit(f"{method} {path}: {response.status_code} {body['code']}: {body['detail']}")
        return response.json() if response.content else None


def wait_for_usage(api: Api, request_id: str, timeout_s: float = 20) -> dict:
    """The usage record is written when the call settles, a moment after the response."""
    deadline = time.monotonic() + timeout_s
    while True:
        page = api.call("GET", "usage/", params={"request_id": request_id})
        if page["results"] and page["results"][0]["settled_at"]:
            return page["results"][0]
        if time.monotonic() > deadline:
            raise SystemExit(f"no settled usage record for {request_id} after {timeout_s}s")
        time.sleep(0.3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", default="ClaudeCode", help="select group of the new token")
    parser.add_argument("--fallback", action="append", help="fallback group(s), in order (default: Default)")
    parser.add_argument("--model", default="claude-sonnet-4-5")
    parser.add_argument("--keep", action="store_true", help="keep the token instead of deleting it")
    args = parser.parse_args()
    base_url = os.environ.get("APIYI_BASE_URL", "http://127.0.0.1:8000")
    key = os.environ.get("APIYI_MANAGEMENT_KEY") or sys.exit("set APIYI_MANAGEMENT_KEY to an mk- key")
    api = Api(base_url, key)

    # 1. A token whose select group is tried first, then its fallback groups in order.
    token = api.call(
        "POST",
        "tokens/",
        json={
            "name": "automation example",
            "select_group": args.group,
            "fallback_groups": args.fallback or ["Default"],
        },
    )
    try:
        # 2. Call the relay with the new sk- key, exactly as any OpenAI client would.
        response = requests.post(
            f"{api.base}/v1/chat/completions",
            headers={"Authorization": f"Bearer {token['key']}"},
            json={
                "model": args.model,
                "messages": [{"role": "user", "content": "Say hello."}],
                "max_tokens": 64,
            },
            timeout=120,
        )
        request_id = response.headers.get("X-Request-Id", "")
        if response.status_code != 200:
            raise SystemExit(f"relay: {response.status_code} {response.text[:300]}")
        reply = response.json()["choices"][0]["message"]["content"]

        # 3. Read back what the call cost and how it was routed.
        usage = wait_for_usage(api, request_id)
        wallet = api.call("GET", "wallet/")
        print(
            json.dumps(
                {
                    "token_id": token["id"],
                    "token_groups": [token["select_group"], *token["fallback_groups"]],
                    "request_id": request_id,
                    "reply": reply[:80],
                    "model": usage["model"],
                    "group_used": usage["group"],
                    "channel": usage["channel"],
                    "fallback_used": usage["fallback_used"],
                    "input_tokens": usage["input_tokens"],
                    "output_tokens": usage["output_tokens"],
                    "cost_cny": usage["cost_cny"],
                    "route": [(a.get("group"), a.get("channel"), a.get("outcome")) for a in usage["trace"]],
                    "balance_cny": wallet["balance_cny"],
                },
                indent=2,
            )
        )
    finally:
        if not args.keep:
            api.call("DELETE", f"tokens/{token['id']}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
