"""Codex CLI (npm @openai/codex, pinned in tests/clients) through the live relay's Responses API.

`codex exec` with a temp CODEX_HOME whose config.toml points a model provider at the relay's
`/v1` with `wire_api = "responses"`: Codex sends its own request shape (namespace tools,
client_metadata, `include: [reasoning.encrypted_content]`, `store: false`, streaming).
Installed by `make clients`; skipped when it is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

CODEX = Path(__file__).resolve().parents[1] / "clients" / "node_modules" / ".bin" / "codex"

pytestmark = [
    pytest.mark.postgres,  # Codex may send calls in parallel: SQLite's test database cannot take them
    pytest.mark.skipif(not CODEX.exists(), reason="Codex CLI not installed (make clients)"),
]

CONFIG = """\
model = "{model}"
model_provider = "apiyi"
web_search = "disabled"
check_for_update_on_startup = false

[analytics]
enabled = false

[model_providers.apiyi]
name = "apiyi relay"
base_url = "{url}/v1"
env_key = "APIYI_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""


def run_codex(live, tmp_path: Path, model: str, prompt: str) -> tuple[list[dict], str]:
    home = tmp_path / "codex-home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(CONFIG.format(model=model, url=live.url))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "CODEX_HOME": str(home),
        "APIYI_API_KEY": live.key,
        "NO_COLOR": "1",
    }
    answer = tmp_path / "answer.txt"
    done = subprocess.run(
        [
            str(CODEX),
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--ephemeral",
            "--sandbox",
            "read-only",
            "-o",
            str(answer),
            prompt,
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert not [e for e in events if e.get("type") in ("error", "turn.failed")], events
    return events, answer.read_text() if answer.exists() else ""


def test_codex_exec_on_a_claude_model(live, tmp_path):
    """Claude through the ClaudeCode group: Responses → chat → Anthropic messages and back."""
    events, answer = run_codex(live, tmp_path, "claude-sonnet-4-5", "Say hello in one word.")
    assert "claude-sonnet-4-5" in answer, (answer, events)
    assert any(e.get("type") == "turn.completed" for e in events)
    assert any(r["path"].endswith("/messages") for r in live.sim.requests("claude-official"))


def test_codex_exec_completes_a_prompt(live, tmp_path):
    events, answer = run_codex(live, tmp_path, "gpt-5.1", "Say hello in one word.")
    assert "openai-official" in answer, (answer, events)
    assert any(e.get("type") == "turn.completed" for e in events)
    sent = [r for r in live.sim.requests("openai-official") if r["path"].endswith("/chat/completions")]
    assert sent, "Codex's Responses call did not reach the OpenAI-format channel as chat"
    body = sent[-1]["body"]
    assert body["stream"] is True and body["messages"][0]["role"] == "system"
    names = [t["function"]["name"] for t in body.get("tools", [])]
    assert "exec_command" in names, "Codex's tools did not reach the upstream"
    assert any("__" in name for name in names), "Codex's namespace tools were not carried"
    # the simulated model ran one of Codex's tools: Codex sent its output back in the next call
    assert [m["role"] for m in body["messages"]][-2:] == ["assistant", "tool"]
    from billing.models import UsageRecord

    rec = UsageRecord.objects.filter(endpoint="/v1/responses").latest("pk")
    assert (rec.status, rec.channel_name, rec.usage_estimated) == ("success", "openai-official", False)
    assert rec.cost_micro > 0
