"""Wallet writes. Every balance change is a ledger line in the same transaction.

Concurrency: a hold or settlement changes the wallet with one conditional UPDATE
(`balance_micro >= …` in its WHERE, so checks and writes cannot interleave and the balance
never goes negative), taken as late as possible so the row lock lives for about one
statement plus COMMIT. Exactly once: the usage record (unique request id) is claimed first;
unique (request_id, kind) ledger lines back that up. Lock order everywhere on the hot path:
usage record, token, wallet. Operator writes (recharge, adjust, refund) lock the wallet row.

Cost: every relay call holds and settles, so those two run a few plain SQL statements
(portable to PostgreSQL and SQLite) instead of ORM queries and model saves — hold: token,
wallet, ledger line; settlement: usage record, token, wallet, ledger lines. Both commit
durably: a settlement trusts its hold's amount (passed in by the relay), which is only
safe when the hold cannot be lost to a database crash.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import cached_property

from django.core.cache import cache
from django.db import IntegrityError, connections, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.services import audit_record, audit_snapshot, user_apply_upgrade_rules
from tokens.models import Token

from .models import (
    LedgerEntry,
    LedgerKind,
    Recharge,
    RechargeBonusTier,
    Setting,
    UsageRecord,
    UsageStatus,
    Wallet,
)
from .pricing import to_micro

logger = logging.getLogger(__name__)

# Upper bound for any single money amount: ¥10,000,000.
MAX_AMOUNT_MICRO = 10_000_000 * 1_000_000


class BillingError(Exception):
    code = "billing_error"


class InsufficientBalance(BillingError):
    code = "insufficient_balance"


class QuotaExceeded(BillingError):
    code = "token_quota_exceeded"


class InvalidAmount(BillingError, ValueError):
    code = "invalid_amount"


class PaymentRefConflict(BillingError):
    code = "payment_ref_conflict"


def _check_amount(amount_micro: int, *, allow_zero: bool = False, allow_negative: bool = False):
    if not isinstance(amount_micro, int) or isinstance(amount_micro, bool):
        raise InvalidAmount("amount must be a whole number of micro-yuan")
    if abs(amount_micro) > MAX_AMOUNT_MICRO:
        raise InvalidAmount("amount is larger than ¥10,000,000")
    if amount_micro < 0 and not allow_negative:
        raise InvalidAmount("amount must not be negative")
    if amount_micro == 0 and not allow_zero:
        raise InvalidAmount("amount must not be zero")


def wallet_get_or_create(*, user) -> Wallet:
    wallet, _ = Wallet.objects.get_or_create(user=user)
    return wallet


def _locked_wallet(**lookup) -> Wallet:
    return Wallet.objects.select_for_update().get(**lookup)


def _post(wallet: Wallet, kind: str, amount_micro: int, **extra) -> LedgerEntry:
    return LedgerEntry.objects.create(
        wallet=wallet, kind=kind, amount_micro=amount_micro, balance_after_micro=wallet.balance_micro, **extra
    )


def _table(conn, model) -> str:
    return conn.ops.quote_name(model._meta.db_table)


def _bound_cursor(conn):
    """A cursor for the one-statement hold and settlement on PostgreSQL that binds parameters
    server-side, so psycopg prepares each statement after a few runs on a connection.

    Django's default cursor renders every parameter into the SQL text in Python; for the
    settlement's ~50 parameters that cost more CPU than the statement itself.
    """
    from django.db.backends.postgresql.base import ServerBindingCursor

    conn.ensure_connection()
    with conn.wrap_database_errors:
        cursor = ServerBindingCursor(conn.connection)
    return conn.make_debug_cursor(cursor) if conn.queries_logged else conn.make_cursor(cursor)


def _wallet_move(*, balance_delta: int, held_delta: int, min_balance: int | None = None, **lookup):
    """Change one wallet in a single UPDATE … RETURNING: (wallet id, balance after) or None
    when no wallet matches (missing, or its balance is below `min_balance`)."""
    ((column, value),) = lookup.items()
    assert column in ("id", "user_id")
    conn = connections[Wallet.objects.db]
    # identifiers are the model's own; every value is a parameter
    sql = f"UPDATE {_table(conn, Wallet)} SET balance_micro = balance_micro + %s, held_micro = held_micro + %s, updated_at = %s WHERE {column} = %s"  # noqa: S608, E501
    params = [balance_delta, held_delta, conn.ops.adapt_datetimefield_value(timezone.now()), value]
    if min_balance is not None:
        sql += " AND balance_micro >= %s"
        params.append(min_balance)
    with conn.cursor() as cursor:
        cursor.execute(sql + " RETURNING id, balance_micro", params)
        return cursor.fetchone()


def _insert_sql(conn, model, columns: tuple[str, ...], rows: int = 1) -> str:
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    return (
        f"INSERT INTO {_table(conn, model)} ({', '.join(columns)}) VALUES "  # noqa: S608
        + ", ".join([placeholders] * rows)
    )


_LEDGER_COLUMNS = (
    "wallet_id",
    "kind",
    "amount_micro",
    "balance_after_micro",
    "request_id",
    "token_id",
    "memo",
    "created_at",
)


def _ledger_add(*lines: tuple) -> None:
    """Append request ledger lines in one INSERT: (wallet id, kind, amount, balance after,
    request id, token id) each. The hot path's cheap form of `LedgerEntry.objects.create`."""
    conn = connections[LedgerEntry.objects.db]
    now = conn.ops.adapt_datetimefield_value(timezone.now())
    params = [value for line in lines for value in (*line, "", now)]
    with conn.cursor() as cursor:
        cursor.execute(_insert_sql(conn, LedgerEntry, _LEDGER_COLUMNS, len(lines)), params)


def _token_hold(*, token_id: int, amount_micro: int, touch: bool) -> bool:
    """Reserve on the token unless that would pass its quota; stamp last_used_at if asked."""
    conn = connections[Token.objects.db]
    params: list = [amount_micro]
    touched = ""
    if touch:
        touched = ", last_used_at = %s"
        params.append(conn.ops.adapt_datetimefield_value(timezone.now()))
    params += [token_id, amount_micro]
    with conn.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(conn, Token)} SET held_micro = held_micro + %s{touched} WHERE id = %s "  # noqa: S608
            "AND (quota_micro IS NULL OR quota_micro >= spent_micro + held_micro + %s)",
            params,
        )
        return cursor.rowcount == 1


def _token_spend(*, token_id: int, held_delta: int, spent_delta: int) -> None:
    conn = connections[Token.objects.db]
    with conn.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table(conn, Token)} SET held_micro = held_micro + %s, spent_micro = spent_micro + %s "  # noqa: S608
            "WHERE id = %s",
            [held_delta, spent_delta, token_id],
        )


@transaction.atomic
def wallet_hold(
    *,
    user_id: int,
    request_id: str,
    amount_micro: int,
    token_id: int | None = None,
    touch_token: bool = False,
) -> int:
    """Reserve an estimate before an upstream call. Never overdraws, never exceeds a quota.

    Token (quota check; `touch_token` also stamps its last_used_at), then wallet (conditional
    UPDATE), then the ledger line: on PostgreSQL one statement, elsewhere three.
    """
    _check_amount(amount_micro, allow_zero=True)
    conn = connections[Wallet.objects.db]
    if conn.vendor == "postgresql":
        token_ok, held = _hold_in_one_statement(
            conn,
            user_id=user_id,
            request_id=request_id,
            amount_micro=amount_micro,
            token_id=token_id,
            touch=touch_token,
        )
        if not token_ok:
            raise QuotaExceeded("token quota exceeded")
        if not held:
            raise InsufficientBalance("insufficient balance")
        return amount_micro
    if token_id is not None and not _token_hold(
        token_id=token_id, amount_micro=amount_micro, touch=touch_token
    ):
        raise QuotaExceeded("token quota exceeded")
    moved = _wallet_move(
        user_id=user_id,
        balance_delta=-amount_micro,
        held_delta=amount_micro,
        min_balance=max(amount_micro, 1),
    )
    if moved is None:
        raise InsufficientBalance("insufficient balance")
    _ledger_add((moved[0], LedgerKind.HOLD.value, -amount_micro, moved[1], request_id, token_id))
    return amount_micro


def _hold_in_one_statement(
    conn, *, user_id: int, request_id: str, amount_micro: int, token_id: int | None, touch: bool
) -> tuple[bool, bool]:
    """`wallet_hold` as one PostgreSQL statement (data-modifying CTEs): (token ok, held).

    Why: rows stay locked from their UPDATE to COMMIT, and a Python client under load can
    take milliseconds per round trip; one statement leaves a single round trip (COMMIT) inside
    the lock. The wallet UPDATE waits for the token's (EXISTS), keeping the lock order. When
    the token passes and the wallet does not, the caller raises and the transaction rolls back.
    """
    now = conn.ops.adapt_datetimefield_value(timezone.now())
    token_check, params = "TRUE", []
    token_cte = ""
    if token_id is not None:
        touched = ", last_used_at = %s" if touch else ""
        token_cte = f"""t AS (
    UPDATE {_table(conn, Token)} SET held_micro = held_micro + %s{touched}
    WHERE id = %s AND (quota_micro IS NULL OR quota_micro >= spent_micro + held_micro + %s) RETURNING id
), """  # noqa: S608
        params += [amount_micro, *([now] if touch else []), token_id, amount_micro]
        token_check = "EXISTS (SELECT 1 FROM t)"
    sql = f"""WITH {token_cte}w AS (
    UPDATE {_table(conn, Wallet)} SET balance_micro = balance_micro - %s, held_micro = held_micro + %s,
        updated_at = %s
    WHERE user_id = %s AND balance_micro >= %s AND {token_check} RETURNING id, balance_micro
), l AS (
    INSERT INTO {_table(conn, LedgerEntry)} ({", ".join(_LEDGER_COLUMNS)})
    SELECT id, %s, %s, balance_micro, %s, %s::bigint, '', %s FROM w RETURNING id
)
SELECT {token_check}, EXISTS (SELECT 1 FROM l)"""  # noqa: S608
    params += [amount_micro, amount_micro, now, user_id, max(amount_micro, 1)]
    params += [LedgerKind.HOLD.value, -amount_micro, request_id, token_id, now]
    with _bound_cursor(conn) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


@functools.cache
def _usage_fields() -> dict:
    """UsageRecord's fields by attribute name (`token_id`, not `token`), without the id."""
    return {f.attname: f for f in UsageRecord._meta.concrete_fields if not f.primary_key}


def _usage_upsert(
    conn, *, request_id: str, fields: dict, create_fields: dict | None = None, expressions: dict | None = None
) -> tuple[str, list]:
    """SQL and parameters that claim the one settlement of a request: fill its pending usage
    record or create it, in one `INSERT … ON CONFLICT (request_id) DO UPDATE … WHERE
    settled_at IS NULL RETURNING id` (PostgreSQL and SQLite). No row back when the record is
    already settled; a concurrent second claim waits on the first one's row, then finds it
    settled. `fields` are written in either case, `create_fields` (a superset) only into a
    new record; `expressions` give some columns as SQL instead of a value.
    """
    row = {**(create_fields or fields), "request_id": request_id}
    assert fields.keys() <= row.keys()
    model_fields = _usage_fields()
    expressions = expressions or {}
    values = {
        name: field.get_db_prep_save(row[name] if name in row else field.get_default(), conn)
        for name, field in model_fields.items()
        if name not in expressions
    }
    values["created_at"] = conn.ops.adapt_datetimefield_value(timezone.now())
    columns = [model_fields[name].column for name in values] + list(expressions)
    placeholders = ["%s"] * len(values) + list(expressions.values())
    update = ", ".join(
        f"{model_fields[name].column} = EXCLUDED.{model_fields[name].column}" for name in fields
    )
    table = _table(conn, UsageRecord)
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(placeholders)}) "  # noqa: S608
        f"ON CONFLICT (request_id) DO UPDATE SET {update} WHERE {table}.settled_at IS NULL RETURNING id"
    )
    return sql, list(values.values())


def _usage_claim(*, request_id: str, fields: dict, create_fields: dict | None = None) -> bool:
    """Take the one settlement of a request (see `_usage_upsert`): False if already settled."""
    conn = connections[UsageRecord.objects.db]
    sql, params = _usage_upsert(conn, request_id=request_id, fields=fields, create_fields=create_fields)
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None


@dataclass(frozen=True)
class Settlement:
    request_id: str
    charged_micro: int
    already_settled: bool

    @cached_property
    def record(self) -> UsageRecord:
        """Read on demand: the relay does not need it, so settling does not pay for it."""
        return UsageRecord.objects.get(request_id=self.request_id)


@transaction.atomic
def usage_settle(
    *, request_id: str, user_id: int, cost_micro: int, record: dict, hold_micro: int | None = None
) -> Settlement:
    """Charge the actual cost, release the rest of the hold, write the usage record: once.

    A second call for the same request id changes nothing and returns the first result.
    A cost above what the hold and balance cover is recorded as uncollected, never overdrawn.
    Usage record (the exactly-once claim), token, then wallet (one conditional UPDATE), then
    the ledger lines: on PostgreSQL one statement that reads the hold itself, elsewhere four,
    plus a read of the hold unless the caller passes what its own `wallet_hold` committed
    (`hold_micro`; None when unknown).
    """
    _check_amount(cost_micro, allow_zero=True)
    fields = {
        **record,
        "user_id": user_id,
        "hold_micro": hold_micro,
        "cost_micro": cost_micro,
        "uncollected_micro": 0,
        "settled_at": timezone.now(),
    }
    token_id = record.get("token_id")
    conn = connections[UsageRecord.objects.db]
    if conn.vendor == "postgresql":
        claimed, held, hold_micro, moved = _settle_in_one_statement(
            conn,
            request_id=request_id,
            user_id=user_id,
            cost_micro=cost_micro,
            fields=fields,
            token_id=token_id,
        )
        if not claimed:
            return _already_settled(request_id)
        if moved is not None:
            return Settlement(request_id, cost_micro, False)
    else:
        held = hold_micro is not None
        if not held:
            hold = (
                LedgerEntry.objects.filter(request_id=request_id, kind=LedgerKind.HOLD)
                .values_list("amount_micro", flat=True)
                .first()
            )
            held, hold_micro = hold is not None, -(hold or 0)
        fields["hold_micro"] = hold_micro
        if not _usage_claim(request_id=request_id, fields=fields):
            return _already_settled(request_id)
        if token_id is not None and (hold_micro or cost_micro):
            _token_spend(token_id=token_id, held_delta=-hold_micro, spent_delta=cost_micro)
        moved = None
        if held or cost_micro:
            moved = _wallet_move(
                user_id=user_id,
                balance_delta=hold_micro - cost_micro,
                held_delta=-hold_micro,
                min_balance=cost_micro - hold_micro,
            )
    charged = cost_micro
    if moved is None and (held or cost_micro):
        moved, charged = _settle_short(
            request_id=request_id, user_id=user_id, cost_micro=cost_micro, hold_micro=hold_micro
        )
        if token_id is not None and charged != cost_micro:
            _token_spend(token_id=token_id, held_delta=0, spent_delta=charged - cost_micro)
    if moved is not None:
        wallet_id, balance = moved
        lines = []
        if held:
            lines.append(
                (wallet_id, LedgerKind.RELEASE.value, hold_micro, balance + charged, request_id, None)
            )
        if charged:
            lines.append((wallet_id, LedgerKind.CHARGE.value, -charged, balance, request_id, None))
        if lines:
            _ledger_add(*lines)
    return Settlement(request_id, charged, False)


def _already_settled(request_id: str) -> Settlement:
    existing = UsageRecord.objects.get(request_id=request_id)
    return Settlement(request_id, existing.cost_micro - existing.uncollected_micro, True)


def _settle_in_one_statement(conn, *, request_id: str, user_id: int, cost_micro: int, fields: dict, token_id):
    """`usage_settle`'s usual case as one PostgreSQL statement (data-modifying CTEs).

    Returns (claimed, held, hold amount, (wallet id, balance after) or None). Token, wallet
    and ledger lines change only if the usage record was claimed; the wallet UPDATE comes
    after the token's (the `count(*) FROM t` forces it: lock order) and only when hold plus
    balance cover the cost. When they do not (None back, although claimed), the caller
    finishes with `_settle_short` in the same transaction and writes the ledger lines itself.
    Why one statement: see `_hold_in_one_statement`.
    """
    hold = "COALESCE((SELECT amount FROM h), 0)"
    usage_sql, usage_params = _usage_upsert(
        conn, request_id=request_id, fields=fields, expressions={"hold_micro": hold}
    )
    now = conn.ops.adapt_datetimefield_value(timezone.now())
    ledger = _table(conn, LedgerEntry)
    sql = f"""WITH h AS (
    SELECT -amount_micro AS amount FROM {ledger} WHERE request_id = %s AND kind = %s
), u AS (
    {usage_sql}
), t AS (
    UPDATE {_table(conn, Token)} SET held_micro = held_micro - {hold}, spent_micro = spent_micro + %s
    WHERE id = %s::bigint AND EXISTS (SELECT 1 FROM u) RETURNING id
), w AS (
    UPDATE {_table(conn, Wallet)} SET balance_micro = balance_micro + {hold} - %s,
        held_micro = held_micro - {hold}, updated_at = %s
    WHERE user_id = %s AND balance_micro >= %s - {hold} AND EXISTS (SELECT 1 FROM u)
        AND (SELECT count(*) FROM t) >= 0
    RETURNING id, balance_micro
), l AS (
    INSERT INTO {ledger} (wallet_id, kind, amount_micro, balance_after_micro, request_id, memo, created_at)
    SELECT id, %s, {hold}, balance_micro + %s, %s, '', %s FROM w WHERE EXISTS (SELECT 1 FROM h)
    UNION ALL
    SELECT id, %s, -%s, balance_micro, %s, '', %s FROM w WHERE %s > 0
)
SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM h), {hold},
    (SELECT id FROM w), (SELECT balance_micro FROM w)"""  # noqa: S608
    params = [
        request_id, LedgerKind.HOLD.value,
        *usage_params,
        cost_micro, token_id,
        cost_micro, now, user_id, cost_micro,
        LedgerKind.RELEASE.value, cost_micro, request_id, now,
        LedgerKind.CHARGE.value, cost_micro, request_id, now, cost_micro,
    ]  # fmt: skip
    with _bound_cursor(conn) as cursor:
        cursor.execute(sql, params)
        claimed, held, hold_micro, wallet_id, balance = cursor.fetchone()
    return claimed, held, hold_micro, (wallet_id, balance) if wallet_id is not None else None


def _settle_short(*, request_id: str, user_id: int, cost_micro: int, hold_micro: int):
    """The rare case where hold plus balance do not cover the cost: charge what is there."""
    wallet = _locked_wallet(user_id=user_id)
    charged = max(0, min(cost_micro, wallet.balance_micro + hold_micro))
    moved = _wallet_move(user_id=user_id, balance_delta=hold_micro - charged, held_delta=-hold_micro)
    UsageRecord.objects.filter(request_id=request_id).update(uncollected_micro=cost_micro - charged)
    return moved, charged


@transaction.atomic
def wallet_refund(*, request_id: str, amount_micro: int, memo: str = "", actor=None) -> LedgerEntry:
    """Give back (part of) a settled charge; at most once per request id."""
    _check_amount(amount_micro)
    charge = LedgerEntry.objects.filter(request_id=request_id, kind=LedgerKind.CHARGE).first()
    if charge is None:
        raise InvalidAmount("no charge to refund for this request")
    if amount_micro > -charge.amount_micro:
        raise InvalidAmount("refund is larger than the charge")
    wallet = _locked_wallet(pk=charge.wallet_id)
    if LedgerEntry.objects.filter(request_id=request_id, kind=LedgerKind.REFUND).exists():
        raise InvalidAmount("this request was already refunded")
    wallet.balance_micro += amount_micro
    wallet.save(update_fields=["balance_micro", "updated_at"])
    entry = _post(wallet, LedgerKind.REFUND, amount_micro, request_id=request_id, memo=memo, created_by=actor)
    UsageRecord.objects.filter(request_id=request_id).update(cost_micro=F("cost_micro") - amount_micro)
    return entry


def bonus_tier_for(amount_micro: int) -> RechargeBonusTier | None:
    return (
        RechargeBonusTier.objects.filter(min_amount_micro__lte=amount_micro)
        .order_by("-min_amount_micro")
        .first()
    )


@transaction.atomic
def wallet_recharge(*, user, amount_micro: int, payment_ref: str, actor=None) -> Recharge:
    """Credit a paid amount and, as its own ledger line, the bonus of its tier.

    Idempotent per payment reference: replaying a reference already credited to this user for
    this amount returns that recharge and credits nothing (Back + Pay, double clicks, retries).
    """
    _check_amount(amount_micro)
    wallet_get_or_create(user=user)
    wallet = _locked_wallet(user_id=user.pk)
    existing = Recharge.objects.filter(payment_ref=payment_ref).first()
    if existing is not None:
        if existing.user_id != user.pk or existing.amount_micro != amount_micro:
            raise PaymentRefConflict("this payment reference belongs to another recharge")
        return existing
    tier = bonus_tier_for(amount_micro)
    percent = tier.bonus_percent if tier else Decimal(0)
    bonus = to_micro(Decimal(amount_micro) * percent / 100 / 1_000_000)
    recharge = Recharge.objects.create(
        user=user,
        amount_micro=amount_micro,
        bonus_micro=bonus,
        bonus_percent=percent,
        payment_ref=payment_ref,
    )
    wallet.balance_micro += amount_micro
    _post(wallet, LedgerKind.RECHARGE, amount_micro, memo=f"recharge {payment_ref}", created_by=actor)
    if bonus:
        wallet.balance_micro += bonus
        _post(wallet, LedgerKind.BONUS, bonus, memo=f"+{percent.normalize():f}% bonus", created_by=actor)
    wallet.total_recharged_micro += amount_micro
    wallet.save(update_fields=["balance_micro", "total_recharged_micro", "updated_at"])
    user_apply_upgrade_rules(user=user, total_recharged_micro=wallet.total_recharged_micro)
    return recharge


@transaction.atomic
def wallet_adjust(*, user, amount_micro: int, reason: str, actor) -> LedgerEntry:
    """Operator credit (+) or debit (−) with a reason; never below zero."""
    _check_amount(amount_micro, allow_negative=True)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidAmount("an adjustment needs a reason")
    wallet_get_or_create(user=user)
    wallet = _locked_wallet(user_id=user.pk)
    before = wallet.balance_micro
    if before + amount_micro < 0:
        raise InsufficientBalance("the adjustment would make the balance negative")
    wallet.balance_micro += amount_micro
    wallet.save(update_fields=["balance_micro", "updated_at"])
    entry = _post(wallet, LedgerKind.ADJUSTMENT, amount_micro, memo=reason[:255], created_by=actor)
    audit_record(
        actor=actor,
        action="wallet.adjust",
        obj=user,
        before={"balance_micro": before},
        after={"balance_micro": wallet.balance_micro, "reason": reason[:255]},
    )
    return entry


def usage_record_failure(*, request_id: str, user_id: int, record: dict) -> UsageRecord:
    """A call refused before any hold (auth passed): kept so the user can see why it failed."""
    fields = {**record, "user_id": user_id, "status": UsageStatus.ERROR, "settled_at": timezone.now()}
    usage, _ = UsageRecord.objects.update_or_create(request_id=request_id, defaults=fields)
    return usage


@transaction.atomic
def bonus_tier_save(
    *, actor, tier: RechargeBonusTier | None = None, min_amount_micro: int | None = None, bonus_percent=None
) -> RechargeBonusTier:
    """Create or change a recharge bonus tier, audited."""
    obj = tier or RechargeBonusTier()
    before = audit_snapshot(obj) if obj.pk else None
    if min_amount_micro is not None:
        _check_amount(min_amount_micro)
        obj.min_amount_micro = min_amount_micro
    if bonus_percent is not None:
        obj.bonus_percent = bonus_percent
    obj.full_clean()
    obj.save()
    cache.delete("billing:best_bonus")
    audit_record(
        actor=actor,
        action="bonus_tier.update" if before else "bonus_tier.create",
        obj=obj,
        before=before,
        after=audit_snapshot(obj),
    )
    return obj


@transaction.atomic
def bonus_tier_delete(*, actor, tier: RechargeBonusTier) -> None:
    audit_record(actor=actor, action="bonus_tier.delete", obj=tier, before=audit_snapshot(tier))
    tier.delete()
    cache.delete("billing:best_bonus")


@transaction.atomic
def setting_set(*, actor, key: str, value: str) -> Setting:
    """Change an operator setting (validated by Setting.clean, e.g. usd_cny_rate), audited."""
    setting = Setting.objects.select_for_update().filter(key=key).first() or Setting(key=key)
    before = {"value": setting.value} if setting.pk else None
    setting.value = str(value).strip()
    setting.full_clean()
    setting.save()
    audit_record(
        actor=actor, action="setting.update", obj=setting, before=before, after={"value": setting.value}
    )
    return setting


ABANDONED = "abandoned"


def holds_release_stale(
    *, older_than_s: int, video_older_than_s: int | None = None, limit: int = 1000
) -> int:
    """Release holds that nothing released after `older_than_s`: the process that took them died.

    Each hold gets its own transaction that first claims the request's usage record (as a
    settlement does), so concurrent sweepers (or a late settlement) release it exactly once;
    the unique (request_id, kind) ledger constraint backs that up. The usage record says
    status error / "abandoned" at zero cost, and a settlement arriving later changes
    nothing. Holds of video jobs, which the worker settles when the job ends, wait
    `video_older_than_s` instead. Returns how many holds were released.
    """
    from groups.models import Model, ModelKind

    now = timezone.now()
    released = LedgerEntry.objects.filter(kind=LedgerKind.RELEASE, request_id=OuterRef("request_id"))
    candidates = list(
        LedgerEntry.objects.filter(
            kind=LedgerKind.HOLD,
            request_id__isnull=False,
            created_at__lt=now - timedelta(seconds=older_than_s),
        )
        .exclude(Exists(released))
        .order_by("id")
        .values_list("pk", "request_id", "created_at")[:limit]
    )
    video_cutoff = now - timedelta(seconds=max(video_older_than_s or 0, older_than_s))
    video_requests = set(
        UsageRecord.objects.filter(request_id__in=[c[1] for c in candidates])
        .filter(
            Q(endpoint__startswith="/v1/videos")
            | Q(model_name__in=Model.objects.filter(kind=ModelKind.VIDEO).values("name"))
        )
        .values_list("request_id", flat=True)
    )
    count = 0
    for hold_id, request_id, created_at in candidates:
        if request_id in video_requests and created_at >= video_cutoff:
            continue
        try:
            count += _hold_release_abandoned(hold_id=hold_id)
        except IntegrityError:
            continue
    return count


@transaction.atomic
def _hold_release_abandoned(*, hold_id: int) -> bool:
    hold = LedgerEntry.objects.get(pk=hold_id)
    amount = -hold.amount_micro
    outcome = {
        "status": UsageStatus.ERROR,
        "error_code": ABANDONED,
        "error_message": "The call was abandoned (the gateway process stopped); its hold was released.",
        "hold_micro": amount,
        "cost_micro": 0,
        "uncollected_micro": 0,
        "settled_at": timezone.now(),
    }
    user_id = Wallet.objects.filter(pk=hold.wallet_id).values_list("user_id", flat=True).get()
    claimed = _usage_claim(
        request_id=hold.request_id,
        fields=outcome,
        create_fields={**outcome, "user_id": user_id, "token_id": hold.token_id},
    )
    if not claimed:
        return False
    if hold.token_id is not None and amount:
        Token.objects.filter(pk=hold.token_id).update(held_micro=Greatest(F("held_micro") - amount, 0))
    moved = _wallet_move(id=hold.wallet_id, balance_delta=amount, held_delta=-amount)
    LedgerEntry.objects.create(
        wallet_id=hold.wallet_id,
        kind=LedgerKind.RELEASE,
        amount_micro=amount,
        balance_after_micro=moved[1],
        request_id=hold.request_id,
        memo=ABANDONED,
    )
    logger.warning("released abandoned hold %s of %s micro-yuan", hold.request_id, amount)
    return True
