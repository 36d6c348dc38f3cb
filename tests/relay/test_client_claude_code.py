"""Claude Code CLI (npm @anthropic-ai/claude-code, pinned in tests/clients) through the live relay.

Guide Case 1: Claude Code on the ClaudeCode group, default toolset, `-p --output-format json`,
both on a domestic model (an OpenAI-format channel: converted) and on a Claude model (passed
through). Offline: HOME is a temp dir and every non-essential request is switched off, so the
only traffic is to the relay. Installed by `make clients`; skipped when it is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

CLAUDE = Path(__file__).resolve().parents[1] / "clients" / "node_modules" / ".bin" / "claude"

pytestmark = [
    pytest.mark.postgres,  # Claude Code sends calls in parallel: SQLite's test database cannot take them
    pytest.mark.skipif(not CLAUDE.exists(), reason="Claude Code CLI not installed (make clients)"),
]


def run_claude(live, tmp_path: Path, model: str, prompt: str) -> dict:
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "ANTHROPIC_BASE_URL": live.url,
        "ANTHROPIC_API_KEY": live.key,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
        "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
        "CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1",
        "CI": "1",
    }
    done = subprocess.run(
        [str(CLAUDE), "-p", prompt, "--output-format", "json", "--model", model, "--max-turns", "3"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert done.stdout.strip(), f"no output (exit {done.returncode}): {done.stderr[-2000:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.get("is_error") is False, (result, done.stderr[-2000:])
    assert done.returncode == 0, done.stderr[-2000:]
    return result


def test_claude_code_on_a_domestic_model(live, tmp_path):
    """deepseek-v4 is served by an OpenAI-format channel: Claude Code's messages are converted."""
    result = run_claude(live, tmp_path, "deepseek-v4", "Say hello in one word.")
    assert "Hello from domestic (deepseek-v4)" in result["result"]
    sent = [r["body"] for r in live.sim.requests("domestic") if r["path"].endswith("/chat/completions")]
    assert sent, "no converted request reached the OpenAI-format channel"
    assert all(m["role"] in ("system", "user", "assistant", "tool") for b in sent for m in b["messages"])
    # what broke before: Claude Code's system messages inside `messages`, and its effort setting
    assert any(m["role"] == "system" for b in sent for m in b["messages"][1:])
    assert any(b.get("reasoning_effort") in ("low", "medium", "high") for b in sent)
    assert any(b.get("tools") for b in sent), "Claude Code's default toolset did not reach the upstream"


def test_claude_code_on_a_claude_model(live, tmp_path):
    result = run_claude(live, tmp_path, "claude-sonnet-4-5", "Say hello in one word.")
    assert "claude-sonnet-4-5" in result["result"]
    upstreams = [u for u in ("claude-official", "claude-aws") if live.sim.requests(u)]
    assert upstreams, "no request reached a Claude channel"
