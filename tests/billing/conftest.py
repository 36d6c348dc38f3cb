"""Billing fixtures: a background event loop for the batched ledger, and a sync face of it."""

from __future__ import annotations

import asyncio
import threading

import pytest


class LoopThread:
    """One event loop on a thread of its own for the whole session, as a relay process has:
    the batched ledger keeps its pool across tests."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def stop(self):
        from billing.ledger import close_batched_ledger

        self.run(close_batched_ledger())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="session")
def ledger_loop(django_db_setup):
    """Set up after the test database, so its pool is closed before that is dropped."""
    loop = LoopThread()
    yield loop
    loop.stop()


class BatchedSync:
    """`BatchedLedger` with `PortableLedger`'s sync calls: each call runs on the ledger loop
    (a batch of one), so the one contract holds all implementations."""

    def __init__(self, loop: LoopThread):
        from billing.ledger import BatchedLedger

        self.loop = loop
        self.ledger = BatchedLedger()

    def __getattr__(self, name):
        fn = getattr(self.ledger, name)
        return lambda **kwargs: self.loop.run(fn(**kwargs))


def pytest_collection_modifyitems(items):
    """Contract tests of the batched ledger need committed rows: a transactional database."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("ledger") == "batched":
            item.add_marker(pytest.mark.django_db(transaction=True), append=False)
