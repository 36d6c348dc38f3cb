"""Is the ledger whole after a load? Shared by the fault matrix tests and the soak."""

from __future__ import annotations

import time


def ledger_problems(request_ids: set[str], *, calls: range | None = None) -> list[str]:
    """What is wrong with the ledger after a load: unsettled calls, double charges, open holds."""
    from django.db.models import Count

    from billing.models import LedgerEntry, UsageRecord, Wallet
    from billing.selectors import wallets_out_of_balance

    problems = []
    records = UsageRecord.objects.all()
    settled = set(records.filter(settled_at__isnull=False).values_list("request_id", flat=True))
    missing = sorted(request_ids - settled)
    if missing:
        problems.append(f"{len(missing)} answered calls without a settled usage record: {missing[:3]}")
    unsettled = list(records.filter(settled_at__isnull=True).values_list("request_id", flat=True)[:3])
    if unsettled:
        problems.append(f"usage records never settled: {unsettled}")
    if calls is not None and records.count() not in calls:
        problems.append(f"{calls} calls reached billing but there are {records.count()} usage records")
    for kind in ("hold", "release", "charge"):
        doubled = list(
            LedgerEntry.objects.filter(kind=kind, request_id__isnull=False)
            .values("request_id")
            .annotate(n=Count("id"))
            .filter(n__gt=1)[:3]
        )
        if doubled:
            problems.append(f"more than one {kind} for a request: {doubled}")
    holds = set(LedgerEntry.objects.filter(kind="hold").values_list("request_id", flat=True))
    releases = set(LedgerEntry.objects.filter(kind="release").values_list("request_id", flat=True))
    if holds - releases:
        problems.append(f"holds never released: {sorted(holds - releases)[:3]}")
    held = list(Wallet.objects.exclude(held_micro=0).values_list("user__username", "held_micro"))
    if held:
        problems.append(f"wallets still holding money: {held}")
    mismatches = wallets_out_of_balance()
    if mismatches:
        problems.append(f"wallets out of balance: {mismatches}")
    return problems


def wait_for_ledger(request_ids: set[str], *, calls: range | None = None, timeout: float = 30.0) -> list[str]:
    """Poll until the ledger is settled (twice in a row), or return what is still wrong.

    Calls whose client left settle a moment later; SQLite's shared in-memory database refuses a
    read that overlaps the relay's write ("table is locked"), which is retried."""
    from django.db import OperationalError

    deadline = time.monotonic() + timeout
    clean_in_a_row = 0
    problems: list[str] = ["not checked"]
    while time.monotonic() < deadline:
        time.sleep(0.3)
        try:
            problems = ledger_problems(request_ids, calls=calls)
        except OperationalError as exc:
            problems = [f"database busy: {exc}"]
            continue
        clean_in_a_row = clean_in_a_row + 1 if not problems else 0
        if clean_in_a_row >= 2:
            return []
    return problems
