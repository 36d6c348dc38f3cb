"""While the database is unreachable, one database unit at a time waits for a connection and the
others fail at once, so a 503 arrives within one pool timeout however many calls are waiting
(tests/reliability/test_postgres_restart.py shows it on a real restart)."""

import threading

import pytest
from django.db import IntegrityError, OperationalError
from psycopg_pool import PoolTimeout

from apiyi_admin.db import _Outage, releasing


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
