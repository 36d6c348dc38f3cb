"""The live relay fixtures of tests/relay; the ledger checks live in soak/ledger.py."""

from soak.ledger import ledger_problems, wait_for_ledger  # noqa: F401 (used by the tests here)
from tests.relay.conftest import (  # noqa: F401 (fixtures re-exported for this package)
    _fast_password_hashing,
    live,
    reconciled,
    relay_call,
    relay_server,
)
