"""Tests never write the checkout's real var/: VAR_DIR points at a temporary directory.

A plugin (`-p tests.varguard` in pyproject's addopts), not a conftest: settings.py reads VAR_DIR
at import, creates it and writes the secret key there, and pytest-django imports the settings
before any conftest. Every process gets a directory of its own — the xdist controller and each
worker — so `-n 8` workers never share var/demo_key or the file cache; servers a test starts
inherit it through the environment. `real_var_untouched` fails the run if the real var/ changed
anyway (a demo running from the same checkout during the run trips it too).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REAL_VAR_DIR = Path(__file__).resolve().parent.parent / "var"
_run_var_dir = pytest.StashKey[str]()
_real_var_at_start = pytest.StashKey["dict[str, tuple[int, int]] | None"]()


def var_fingerprint(path: Path = REAL_VAR_DIR) -> dict[str, tuple[int, int]] | None:
    """Every file and folder below `path` with its size and mtime; None when it does not exist."""
    if not path.exists():
        return None
    found: dict[str, tuple[int, int]] = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = Path(root, name)
            try:
                stat = full.lstat()
            except FileNotFoundError:
                continue
            found[str(full.relative_to(path))] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    var_dir = tempfile.mkdtemp(prefix=f"apiyi-var-{worker}-")
    os.environ["VAR_DIR"] = var_dir
    early_config.stash[_run_var_dir] = var_dir
    early_config.stash[_real_var_at_start] = var_fingerprint()


def pytest_unconfigure(config: pytest.Config) -> None:
    var_dir = config.stash.get(_run_var_dir, None)
    if var_dir:
        shutil.rmtree(var_dir, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def real_var_untouched(pytestconfig):
    """Whole-run guard: the real var/ is as it was before pytest imported the settings."""
    yield
    before = pytestconfig.stash[_real_var_at_start]
    after = var_fingerprint()
    assert after == before, f"the test run changed the real {REAL_VAR_DIR}: {_changes(before, after)}"


def _changes(before, after) -> str:
    before, after = before or {}, after or {}
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    return ", ".join(changed[:20]) or "created or removed"
