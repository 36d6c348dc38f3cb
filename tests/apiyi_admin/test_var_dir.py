"""The test run writes its var/ files (secret key, demo key, file cache) in a temporary
directory, never in the checkout's var/ (tests/varguard.py)."""

import os
from pathlib import Path

from django.conf import settings

from apiyi_admin.demo import DEMO_KEY_FILE
from tests.varguard import REAL_VAR_DIR, var_fingerprint


def test_the_run_points_var_dir_away_from_the_real_one():
    assert Path(settings.VAR_DIR).resolve() != REAL_VAR_DIR.resolve()
    assert REAL_VAR_DIR.resolve() not in Path(settings.VAR_DIR).resolve().parents
    assert os.environ["VAR_DIR"] == str(settings.VAR_DIR)  # servers a test starts inherit it
    assert (Path(settings.VAR_DIR) / "secret_key").exists()


def test_seed_demo_keeps_its_key_in_the_run_var_dir(db):
    from apiyi_admin.demo import seed_demo

    before = var_fingerprint()
    seeded = seed_demo()
    assert (Path(settings.VAR_DIR) / DEMO_KEY_FILE).read_text().strip() == seeded["demo_key"]
    assert var_fingerprint() == before


def test_the_fingerprint_sees_a_new_file(tmp_path):
    before = var_fingerprint(tmp_path)
    (tmp_path / "demo_key").write_text("sk-x")
    assert var_fingerprint(tmp_path) != before
    assert var_fingerprint(tmp_path / "absent") is None
