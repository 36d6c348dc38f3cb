"""While the database is unreachable, one database unit at a time waits for a connection and the
others fail at once, so a 503 arrives within one pool timeout however many calls are waiting
(tests/reliability/test_postgres_restart.py shows it on a real restart); and once a unit of a
call found it unreachable, that call's later units fail at once, so a call waits at most one
pool timeout in all, however many database steps it takes."""

import asyncio
import threading
import time

import pytest
from django.db import IntegrityError, OperationalError
from psycopg_pool import PoolTimeout

from core.db import _Outage, db_async, one_call, releasing


def _no_connection():
    try:
        raise PoolTimeout("couldn't get a connection after 10.00 sec")
    except PoolTimeout as exc:
        raise OperationalError(*exc.args) from exc


@pytest.fixture(autouse=True)
def _reachable():
    _Outage.down = False
    yield
    _Outage.down = False


def test_after_a_pool_timeout_other_units_fail_at_once_until_one_gets_through():
    calls = []
    with pytest.raises(OperationalError):
        releasing(_no_connection)()
    assert _Outage.down

    # The next unit tries (it waits for a connection); meanwhile the others fail at once.
    waiting, answer = threading.Event(), threading.Event()

    def tries():
        waiting.set()
        answer.wait(30)
        return "served"

    results = []
    probe = threading.Thread(target=lambda: results.append(releasing(tries)()))
    probe.start()
    assert waiting.wait(30)
    with pytest.raises(OperationalError, match="unreachable"):
        releasing(lambda: calls.append("ran"))()
    answer.set()
    probe.join(30)
    assert results == ["served"]
    assert calls == []

    # It got a connection: everyone goes to the database again.
    releasing(lambda: calls.append("ran"))()
    assert calls == ["ran"]


def test_other_database_errors_do_not_stop_anyone():
    def duplicate():
        raise IntegrityError("duplicate key")

    with pytest.raises(IntegrityError):
        releasing(duplicate)()
    assert releasing(lambda: "ran")() == "ran"


def test_a_unit_that_fails_to_connect_while_trying_keeps_the_others_failing_fast():
    with pytest.raises(OperationalError):
        releasing(_no_connection)()
    with pytest.raises(OperationalError):
        releasing(_no_connection)()  # the one allowed to try, and it fails again
    assert _Outage.down
    assert _Outage.trying.acquire(blocking=False)  # and it let go of its turn
    _Outage.trying.release()


def _in_call(fn):
    with one_call():
        return fn()


def test_a_call_that_found_no_connection_waits_for_none_in_its_later_units():
    ran = []

    def first_call():
        with pytest.raises(OperationalError):
            releasing(_no_connection)()  # e.g. its hold waited a whole pool timeout
        # Its refusal record would be the next unit to try (no one else is trying): it fails at once.
        with pytest.raises(OperationalError, match="unreachable"):
            releasing(lambda: ran.append("refusal"))()

    _in_call(first_call)
    assert ran == []
    assert _Outage.down
    # Another call still gets its turn to try, and getting through ends the outage for everyone.
    _in_call(lambda: releasing(lambda: ran.append("next call"))())
    assert ran == ["next call"]
    assert not _Outage.down


def test_a_call_told_the_database_is_down_does_not_wait_for_it_later():
    _Outage.down = True
    ran = []

    def call():
        assert _Outage.trying.acquire(blocking=False)  # another call's unit is trying
        try:
            with pytest.raises(OperationalError, match="unreachable"):
                releasing(lambda: ran.append("snapshot"))()
        finally:
            _Outage.trying.release()
        # That unit gave up its turn; this call's next unit does not take it (and its wait).
        with pytest.raises(OperationalError, match="unreachable"):
            releasing(lambda: ran.append("refusal"))()

    _in_call(call)
    assert ran == []


@pytest.mark.parametrize("pooled", [False, True])
def test_the_call_is_shared_by_its_units_on_other_threads(pooled):
    """`db_async` units run on other threads, each with a copy of the call's context."""
    from core.db import pool_db_units

    ran = []

    async def call():
        if pooled:
            pool_db_units()
        with one_call():
            with pytest.raises(OperationalError):
                await db_async(_no_connection)()
            with pytest.raises(OperationalError, match="unreachable"):
                await db_async(lambda: ran.append("refusal"))()

    asyncio.run(call())
    assert ran == []


def test_a_unit_queued_for_a_thread_while_the_outage_was_found_does_not_wait_again():
    """The units already queued when the first ones timed out have waited for a thread that
    long: they fail at once; the next one handed to the pool afterwards tries."""
    queued_at = time.monotonic()
    with pytest.raises(OperationalError):
        releasing(_no_connection)()
    ran = []
    with pytest.raises(OperationalError, match="unreachable"):
        releasing(lambda: ran.append("queued"), queued_at=queued_at)()
    releasing(lambda: ran.append("handed over since"), queued_at=time.monotonic())()
    assert ran == ["handed over since"]
    assert not _Outage.down
