"""The benchmark's Django steps, run in their own process with the relay's settings.

- `setup --upstream URL`: migrate, clear the shared cache, and create (or refresh) the
  bench user, models, token groups, channels pointing at the minimal upstream and three
  tokens, plus BENCH_SPREAD_TOKENS users with one BenchMain token each, through the project's
  services. Prints JSON: keys, spread keys, database and cache in use.
- `stats --since ISO`: usage records and charges written since a moment (JSON).

Tokens (all for model `bench-model`):
- `main`: select group BenchMain, whose channel is the minimal upstream;
- `cooling`: select group BenchCooling (upstream answers 429, Retry-After 60), fallback BenchMain;
- `busy`: select group BenchBusy (429 with Retry-After 0.001: every call meets the 429), fallback
  BenchMain;
- `spread` (one per user `bench-u00` … `bench-u49`): select group BenchMain, so that load spread
  over them shares no token or wallet row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_USER = "bench"
SPREAD_USERS = int(os.environ.get("BENCH_SPREAD_TOKENS", "50"))
MODELS = ("bench-model", "bench-slow")
BALANCE_FLOOR_MICRO = 100_000 * 1_000_000
TOP_UP_MICRO = 1_000_000 * 1_000_000
# group name → (channel name, path under the upstream, fallback groups of the token using it)
GROUPS = {
    "BenchMain": ("bench-main", "/v1", ()),
    "BenchCooling": ("bench-cooling", "/r429/60/v1", ("BenchMain",)),
    "BenchBusy": ("bench-busy", "/r429/0.001/v1", ("BenchMain",)),
}
TOKEN_FOR_GROUP = {"BenchMain": "main", "BenchCooling": "cooling", "BenchBusy": "busy"}


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apiyi_admin.settings")
    import django

    django.setup()


def backend_names() -> dict:
    from django.conf import settings
    from django.db import connection

    return {"database": connection.vendor, "cache": "redis" if settings.REDIS_URL else "local memory"}


def setup(upstream: str) -> dict:
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import transaction

    call_command("migrate", interactive=False, verbosity=0)
    cache.clear()  # stale in-flight counts and cool-downs of an earlier run
    with transaction.atomic():
        keys = _seed(upstream.rstrip("/"))
        spread = _seed_spread()
    return {"keys": keys, "spread_keys": spread, **backend_names()}


def spread_usernames() -> list[str]:
    return [f"{BENCH_USER}-u{i:02d}" for i in range(SPREAD_USERS)]


def _seed_spread() -> list[str]:
    """One user, wallet and BenchMain token per spread user (an earlier run's tokens deleted)."""
    from django.utils import timezone

    from accounts.models import User
    from accounts.services import user_create
    from billing.services import wallet_get_or_create, wallet_recharge
    from groups.models import TokenGroup, UserGroup
    from tokens.models import Token
    from tokens.services import token_create, token_delete

    user_group = UserGroup.objects.get(name="bench")
    group = TokenGroup.objects.get(name="BenchMain")
    keys = []
    for username in spread_usernames():
        user = User.objects.filter(username=username).first() or user_create(
            username=username, user_group=user_group
        )
        if wallet_get_or_create(user=user).balance_micro < BALANCE_FLOOR_MICRO:
            ref = f"bench-top-up-{username}-{timezone.now():%Y%m%d%H%M%S%f}"
            wallet_recharge(user=user, amount_micro=TOP_UP_MICRO, payment_ref=ref)
        for token in Token.objects.filter(user=user):
            token_delete(token=token)
        keys.append(token_create(user=user, name="bench spread", select_group=group)[1])
    return keys


def _seed(upstream: str) -> dict:
    from accounts.models import User
    from accounts.services import user_create
    from billing.models import Setting
    from billing.services import wallet_get_or_create, wallet_recharge
    from groups.models import Channel, GroupAccess, Model, TokenGroup, UserGroup
    from groups.services import channel_save, group_access_set, model_save, token_group_save, user_group_save
    from tokens.models import Token
    from tokens.services import token_create, token_delete

    Setting.objects.get_or_create(key="usd_cny_rate", defaults={"value": "7.2"})
    user_group = user_group_save(
        actor=None,
        user_group=UserGroup.objects.filter(name="bench").first(),
        name="bench",
        description="Benchmark user group.",
        model_tiers=["standard"],
    )
    models = [
        model_save(
            actor=None,
            model=Model.objects.filter(name=name).first(),
            name=name,
            kind="text",
            tier="standard",
            input_usd_per_mtok=Decimal("1"),
            output_usd_per_mtok=Decimal("2"),
            max_output_tokens=64,
        )
        for name in MODELS
    ]
    groups = {}
    for name, (channel_name, path, _) in GROUPS.items():
        groups[name] = token_group_save(
            actor=None,
            token_group=TokenGroup.objects.filter(name=name).first(),
            name=name,
            description="Benchmark group.",
            multiplier=Decimal("1"),
            api_formats=["openai", "anthropic"],
        )
        if not GroupAccess.objects.filter(user_group=user_group, token_group=groups[name]).exists():
            group_access_set(actor=None, user_group=user_group, token_group=groups[name])
        channel_save(
            actor=None,
            channel=Channel.objects.filter(name=channel_name).first(),
            api_key="sk-bench-upstream",
            token_groups=[groups[name]],
            models=models,
            name=channel_name,
            kind="openai",
            base_url=upstream + path,
            allow_private_network=True,
            max_concurrency=0,
            enabled=True,
        )
    user = User.objects.filter(username=BENCH_USER).first() or user_create(
        username=BENCH_USER, user_group=user_group
    )
    if wallet_get_or_create(user=user).balance_micro < BALANCE_FLOOR_MICRO:
        wallet_recharge(user=user, amount_micro=TOP_UP_MICRO, payment_ref="bench-top-up")
    for token in Token.objects.filter(user=user):
        token_delete(token=token)
    keys = {}
    for name, (_, _, fallbacks) in GROUPS.items():
        _, keys[TOKEN_FOR_GROUP[name]] = token_create(
            user=user,
            name=f"bench {TOKEN_FOR_GROUP[name]}",
            select_group=groups[name],
            fallback_groups=[groups[f] for f in fallbacks],
        )
    return keys


def stats(since: str) -> dict:
    from django.db.models import Count, Sum
    from django.utils.dateparse import parse_datetime

    from billing.models import UsageRecord

    moment = parse_datetime(since)
    users = [BENCH_USER, *spread_usernames()]
    rows = UsageRecord.objects.filter(user__username__in=users, created_at__gte=moment)
    by_status = {r["status"]: r["n"] for r in rows.values("status").annotate(n=Count("id"))}
    fallback = rows.filter(fallback_used=True).count()
    charged = rows.aggregate(total=Sum("cost_micro"))["total"] or 0
    return {
        "usage_records": sum(by_status.values()),
        "by_status": by_status,
        "fallback_used": fallback,
        "charged_micro": charged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark setup and statistics (Django side).")
    sub = parser.add_subparsers(dest="command", required=True)
    setup_parser = sub.add_parser("setup")
    setup_parser.add_argument(
        "--upstream", required=True, help="http://127.0.0.1:PORT of the minimal upstream"
    )
    stats_parser = sub.add_parser("stats")
    stats_parser.add_argument("--since", required=True)
    args = parser.parse_args()
    _django()
    result = setup(args.upstream) if args.command == "setup" else stats(args.since)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
