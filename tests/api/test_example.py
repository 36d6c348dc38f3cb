"""The README's automation example (examples/automation.py) run against a live relay."""

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from accounts.models import User
from accounts.services import management_key_create
from billing.models import UsageRecord
from tests.relay.conftest import live, relay_server  # noqa: F401 (fixtures)
from tokens.models import Token

pytestmark = [pytest.mark.live]

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "automation.py"


def run_example(live, *args):  # noqa: F811
    _, mk = management_key_create(user=User.objects.get(username="demo"), name="example")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={"APIYI_BASE_URL": live.url, "APIYI_MANAGEMENT_KEY": mk, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def test_example_creates_token_calls_relay_and_reads_cost(live):  # noqa: F811
    out = run_example(live)
    record = UsageRecord.objects.get(request_id=out["request_id"])
    assert out["token_groups"] == ["ClaudeCode", "Default"]
    assert (out["group_used"], out["fallback_used"]) == ("ClaudeCode", False)
    assert Decimal(out["cost_cny"]) > 0
    assert out["cost_cny"] == f"{Decimal(record.cost_micro) / 1_000_000:.6f}"
    assert out["output_tokens"] == record.output_tokens > 0
    assert not Token.objects.filter(pk=out["token_id"]).exists()


def test_example_shows_the_fallback_group_taking_over(live):  # noqa: F811
    for upstream in ("claude-official", "claude-aws"):
        live.sim.configure(upstream=upstream, error="429", retry_after_s=5)
    out = run_example(live)
    assert (out["group_used"], out["fallback_used"]) == ("Default", True)
    assert [hop[0] for hop in out["route"]][-1] == "Default"
    assert "ClaudeCode" in [hop[0] for hop in out["route"]]
    record = UsageRecord.objects.get(request_id=out["request_id"])
    assert record.fallback_used and record.group_name == "Default"


def test_relay_refuses_management_keys(live):  # noqa: F811
    import requests

    _, mk = management_key_create(user=User.objects.get(username="demo"), name="not-for-relay")
    response = requests.post(
        f"{live.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {mk}"},
        json={"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
