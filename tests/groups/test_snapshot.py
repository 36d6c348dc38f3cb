"""The routing snapshot's version moves with every configuration write, and again at the commit:
a snapshot another call rebuilt from the rows as they were before the commit is not kept."""

import threading
from decimal import Decimal as D

import pytest
from django.db import connection, transaction

from groups import routing
from groups.services import token_group_save
from groups.snapshot import routing_version

# Real commits: the second bump runs in `transaction.on_commit`; the concurrent reader is a thread
# with a connection of its own, which PostgreSQL lets read beside the open transaction.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _rebuild_concurrently() -> None:
    """A concurrent relay call that sees the new version and rebuilds from committed rows."""

    def run():
        try:
            routing.get_snapshot()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def _multiplier(group) -> D:
    return routing.get_snapshot().groups[group.pk].multiplier


def test_the_writing_transaction_sees_its_own_change(groups, make_user):
    group = groups["ClaudeCode"]
    assert _multiplier(group) == D("0.95")
    with transaction.atomic():
        token_group_save(actor=make_user(is_staff=True), token_group=group, multiplier=D("1.5"))
        assert _multiplier(group) == D("1.5")
    assert _multiplier(group) == D("1.5")


def test_a_snapshot_rebuilt_from_pre_commit_rows_is_dropped_at_the_commit(groups, make_user):
    group = groups["ClaudeCode"]
    assert _multiplier(group) == D("0.95")
    with transaction.atomic():
        token_group_save(actor=make_user(is_staff=True), token_group=group, multiplier=D("1.5"))
        _rebuild_concurrently()
        assert _multiplier(group) == D("0.95")  # the race: old rows kept under the new version
    assert _multiplier(group) == D("1.5")


def test_writes_outside_the_services_bump_again_at_the_commit(groups):
    from groups.snapshot import _publish

    group = groups["Default"]
    with transaction.atomic():
        group.multiplier = D("2")
        group.save()  # as the admin and seed_demo write: the signal bumps
        group.save()
        inside = routing_version()
        pending = transaction.get_connection().run_on_commit
        assert [func for _, func, _ in pending].count(_publish) == 1  # one bump per transaction
    assert routing_version() != inside
