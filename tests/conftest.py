"""Shared fixtures. Tests that need a real server are skipped only where it is absent,
and never in CI (REQUIRE_SERVICES=1), where a missing service fails the test instead."""

import os
import shutil

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from tests.security.keyleak import no_key_material_in_logs  # noqa: F401 (whole-run guard)

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _missing(reason: str):
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _services(request):
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _missing("needs PostgreSQL (set DATABASE_URL)")
    if request.node.get_closest_marker("redis") and not settings.REDIS_URL:
        _missing("needs Redis (set REDIS_URL)")
    if request.node.get_closest_marker("browser") and not shutil.which("chromium"):
        _missing("needs Debian chromium")


@pytest.fixture(autouse=True)
def _ledger_path(request, settings):
    """The batched ledger (billing.ledger.BatchedLedger) writes on connections of its own, which
    see committed rows only: it stays on only for tests on a transactional database."""
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and (marker.kwargs.get("transaction") or (marker.args[:1] == (True,)))
    if not transactional and "transactional_db" not in request.fixturenames:
        settings.BILLING_LEDGER_BATCHED = False


@pytest.fixture(autouse=True)
def _clean_cache():
    from core.cache import clear_memos

    cache.clear()
    clear_memos()
    yield
    cache.clear()
    clear_memos()


@pytest.fixture(autouse=True)
def _spool_dir(settings, tmp_path_factory):
    """Each test spools settlements into a folder of its own (never var/spool), replayed only
    when the test asks (no replay task outliving the test's event loop)."""
    settings.BILLING_SPOOL_DIR = tmp_path_factory.mktemp("spool")
    settings.BILLING_SPOOL_REPLAY_INTERVAL_S = 0


@pytest.fixture
def demo(db):
    from apiyi_admin.demo import seed_demo

    return seed_demo()


@pytest.fixture
def groups(demo):
    from groups.models import TokenGroup

    return {g.name: g for g in TokenGroup.objects.all()}


@pytest.fixture
def user_groups(demo):
    from groups.models import UserGroup

    return {g.name: g for g in UserGroup.objects.all()}


@pytest.fixture
def make_user(db):
    from accounts.services import user_create

    counter = {"n": 0}

    def make(user_group=None, **extra):
        counter["n"] += 1
        return user_create(
            username=f"user{counter['n']}", password="pw-123456-xyz", user_group=user_group, **extra
        )

    return make


@pytest.fixture(scope="session")
def simulator_server():
    """One simulated-upstream server per test session (per xdist worker), on a free port.

    Sets SIM_PORT so `seed_demo()` points the demo channels at it; being session-scoped it is set up
    before any function-scoped fixture such as `demo`."""
    from relay.simulator.testing import start_in_thread

    server = start_in_thread()
    os.environ["SIM_PORT"] = str(server.port)
    yield server
    server.stop()


@pytest.fixture
def simulator(simulator_server):
    """The simulator with no rules, empty stats and no video jobs: `.port`, `.url`, `.base_url(name)`,
    `.configure(**rule)`, `.rules()`, `.reset()`, `.stats()`, `.requests(name)`; see
    relay/simulator/testing.py. Request it before `demo` or not: SIM_PORT is set first either way."""
    simulator_server.reset()
    yield simulator_server
    simulator_server.reset()
