"""Run against a private database (DATABASE_URL): `seed` the demo data and a customer, or
`check` the ledger after a load. Prints one JSON line; used by the tests that restart servers.

    python -m tests.reliability.private_admin seed
    python -m tests.reliability.private_admin check < request_ids.json
"""

from __future__ import annotations

import json
import sys


def seed() -> dict:
    from accounts.services import user_create
    from apiyi_admin.demo import seed_demo
    from billing.services import wallet_recharge
    from groups.models import TokenGroup, UserGroup
    from tokens.services import token_create

    seed_demo()
    user = user_create(
        username="loader", user_group=UserGroup.objects.get(name="default"), user_group_pinned=True
    )
    wallet_recharge(user=user, amount_micro=1_000 * 1_000_000, payment_ref="fault-load")
    _, key = token_create(user=user, name="load", select_group=TokenGroup.objects.get(name="ClaudeCode"))
    return {"key": key}


def check(request_ids: set[str]) -> dict:
    """Replay what the stopped relay left spooled, sweep every hold still open (none is in
    flight), then judge."""
    from io import StringIO

    from django.core.management import CommandError, call_command
    from django.db.models import Count

    from billing.models import LedgerEntry, UsageRecord
    from billing.spool import replay
    from billing.sweeper import holds_release_stale
    from soak.ledger import ledger_problems

    released = LedgerEntry.objects.filter(kind="release").values("request_id")
    dangling = LedgerEntry.objects.filter(kind="hold").exclude(request_id__in=released).count()
    replay()  # what beat does for spool files whose relay has stopped
    swept = holds_release_stale(older_than_s=0)
    out = StringIO()
    try:
        call_command("reconcile", stdout=out, stderr=out)
    except CommandError as exc:
        out.write(f"reconcile failed: {exc}")
    doubled = list(
        UsageRecord.objects.filter(settled_at__isnull=False)
        .values("request_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("request_id", flat=True)
    )
    return {
        "dangling_before_sweep": dangling,
        "swept": swept,
        "abandoned": UsageRecord.objects.filter(error_code="abandoned").count(),
        "records": UsageRecord.objects.count(),
        "problems": ledger_problems(request_ids) + [f"settled twice: {r}" for r in doubled],
        "reconcile": out.getvalue().strip(),
    }


def main() -> None:
    import django

    django.setup()
    result = seed() if sys.argv[1] == "seed" else check(set(json.load(sys.stdin)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
