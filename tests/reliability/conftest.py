"""The live relay fixtures of tests/relay; the ledger checks live in soak/ledger.py."""

from soak.ledger import ledger_problems, wait_for_ledger  # noqa: F401 (used by the tests here)
from tests.relay.conftest import (  # noqa: F401 (fixtures re-exported for this package)
    _fast_password_hashing,
    live,
    reconciled,
    relay_call,
    relay_server,
)


def pytest_terminal_summary(terminalreporter):
    """The fault matrix's, soak-like and fuzz tests' figures, in a section CI always shows."""
    from tests.reliability import figures

    lines = figures.lines()
    if lines:
        terminalreporter.section("reliability figures")
        for line in lines:
            terminalreporter.write_line(line)
