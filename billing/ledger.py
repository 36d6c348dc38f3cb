"""The ledger: holds and settlements of relay calls, and the refusal records kept beside them.

One small interface (`PortableLedger`'s `hold`, `settle`, `release`, `refuse`) with two sync
implementations chosen by the database vendor (`get_ledger`): `PostgresLedger` runs a hold
and a settlement as one statement each (data-modifying CTEs), `PortableLedger` as a few plain
SQL statements that run anywhere (SQLite, and PostgreSQL too); and an async, batched one for
the relay (below). tests/billing/test_ledger_contract.py holds all three to the same contract.

Concurrency: a hold or settlement changes the wallet with one conditional UPDATE
(`balance_micro >= …` in its WHERE, so checks and writes cannot interleave and the balance
never goes negative), taken as late as possible so the row lock lives for about one
statement plus COMMIT. Exactly once: the usage record (unique request id) is claimed first;
unique (request_id, kind) ledger lines back that up. Lock order everywhere on the hot path:
usage record, token, wallet.

Cost: every relay call holds and settles, so those two run plain SQL instead of ORM queries
and model saves — hold: token, wallet, ledger line; settlement: usage record, token, wallet,
ledger lines. Both commit durably: a settlement trusts its hold's amount (passed in by the
relay), which is only safe when the hold cannot be lost to a database crash.

The batched ledger (`BatchedLedger`, `batched_ledger()`; PostgreSQL, `BILLING_LEDGER_BATCHED`)
is the relay's money path: the same calls as coroutines, run on the event loop over a psycopg
`AsyncConnectionPool` of its own (opened lazily per event loop from DATABASES["default"]; no
thread hop, no Django connection). Modelled on TigerBeetle's batched two-phase transfers
(pending = hold, post/void = settlement/release):

- One micro-batcher per kind (hold, settlement/release, refusal) per event loop. A call goes
  out at once when no batch of its kind is in flight (a batch of one: no added latency when
  idle); calls arriving meanwhile queue and go out together with the next batch, as ONE
  statement in autocommit (its own transaction, one round trip), up to `MAX_BATCH`. Each call
  awaits its own future and gets its own answer (held, `InsufficientBalance`, `QuotaExceeded`,
  settled, already settled). Calls with the same request id never share a batch.
- Holds and settlements run as PL/pgSQL functions looping over arrays (`billing_hold_batch`,
  `billing_settle_batch`, migration billing 0004) rather than one `unnest` CTE: a batch may
  hold the same wallet many times, and whether each hold fits depends on the ones before it
  (a greedy running balance), which a set-based UPDATE cannot express — an UPDATE changes a
  row once per statement. The function locks every token, then every wallet of the batch in
  id order (usage records first, in request id order, for settlements: the lock order of the
  one-call path, so batches and single calls never deadlock), decides each call in array
  order against the locked balances and quotas, then writes each token and wallet once and
  all ledger lines in one INSERT. So a batch equals running its calls one after the other in
  that order: no overdraft, quotas respected, every balance_after exact. Settlements claim
  their usage record first (`INSERT … ON CONFLICT (request_id) DO NOTHING`, generic over the
  record's columns through `jsonb_populate_record`): exactly once by request id, as before. A
  request whose pending record already exists (a video job's) is settled by the one-call path,
  which keeps the columns it does not write. Refusals are one statement of CTEs built here.
- Failures: a batch of several that fails on its data (an integrity error) runs again call by
  call, so the error reaches only its cause. A connection found broken (the database
  restarted) is retried once on a fresh one: safe, since a repeated hold breaks the unique
  (request_id, kind) ledger line instead of holding twice, and a repeated settlement finds its
  usage record claimed. Errors are Django's (`django.db.DatabaseError`), so callers catch them
  whichever path ran; after a batch found no connection within the pool timeout, the calls
  that queued behind it fail at once (they waited already), and so do that call's later units.
- `batch_stats()`: calls, batches and statements (round trips) so far in this process.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import dataclasses
import functools
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

import orjson
import psycopg
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db import utils as db_utils
from django.db.models import JSONField
from django.utils import timezone
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.db import UNREACHABLE, _no_connection, db_async_detached
from core.db import _call as _db_call
from core.pricing import MAX_AMOUNT_MICRO
from tokens.models import Token

from .models import LedgerEntry, LedgerKind, UsageRecord, UsageStatus, Wallet


class BillingError(Exception):
    code = "billing_error"


class InsufficientBalance(BillingError):
    code = "insufficient_balance"


class QuotaExceeded(BillingError):
    code = "token_quota_exceeded"


class InvalidAmount(BillingError, ValueError):
    code = "invalid_amount"


def check_amount(amount_micro: int, *, allow_zero: bool = False, allow_negative: bool = False):
    if not isinstance(amount_micro, int) or isinstance(amount_micro, bool):
        raise InvalidAmount("amount must be a whole number of micro-yuan")
    if abs(amount_micro) > MAX_AMOUNT_MICRO:
        raise InvalidAmount("amount is larger than ¥10,000,000")
    if amount_micro < 0 and not allow_negative:
        raise InvalidAmount("amount must not be negative")
    if amount_micro == 0 and not allow_zero:
        raise InvalidAmount("amount must not be zero")


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


def wallet_move(*, balance_delta: int, held_delta: int, min_balance: int | None = None, **lookup):
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


def _hold_in_one_statement(
    conn, *, user_id: int, request_id: str, amount_micro: int, token_id: int | None, touch: bool
) -> tuple[bool, bool]:
    """`PortableLedger.hold` as one PostgreSQL statement (data-modifying CTEs): (token ok, held).

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


def usage_claim(*, request_id: str, fields: dict, create_fields: dict | None = None) -> bool:
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


def _already_settled(request_id: str) -> Settlement:
    existing = UsageRecord.objects.get(request_id=request_id)
    return Settlement(request_id, existing.cost_micro - existing.uncollected_micro, True)


def _settle_in_one_statement(conn, *, request_id: str, user_id: int, cost_micro: int, fields: dict, token_id):
    """`PortableLedger.settle`'s usual case as one PostgreSQL statement (data-modifying CTEs).

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
    wallet = Wallet.objects.select_for_update().get(user_id=user_id)
    charged = max(0, min(cost_micro, wallet.balance_micro + hold_micro))
    moved = wallet_move(user_id=user_id, balance_delta=hold_micro - charged, held_delta=-hold_micro)
    UsageRecord.objects.filter(request_id=request_id).update(uncollected_micro=cost_micro - charged)
    return moved, charged


def usage_record_failure(*, request_id: str, user_id: int, record: dict) -> UsageRecord:
    """A call refused before any hold (auth passed): kept so the user can see why it failed."""
    fields = {**record, "user_id": user_id, "status": UsageStatus.ERROR, "settled_at": timezone.now()}
    usage, _ = UsageRecord.objects.update_or_create(request_id=request_id, defaults=fields)
    return usage


class PortableLedger:
    """Holds and settlements in plain SQL that any backend runs: hold three statements,
    settlement four (plus a read of the hold when the caller does not pass its amount)."""

    @transaction.atomic
    def hold(
        self,
        *,
        user_id: int,
        request_id: str,
        amount_micro: int,
        token_id: int | None = None,
        touch_token: bool = False,
    ) -> int:
        """Reserve an estimate before an upstream call. Never overdraws, never exceeds a quota.

        Token (quota check; `touch_token` also stamps its last_used_at), then wallet
        (conditional UPDATE), then the ledger line. Raising rolls back what was written.
        """
        check_amount(amount_micro, allow_zero=True)
        token_ok, held = self._reserve(
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

    def _reserve(
        self, *, user_id: int, request_id: str, amount_micro: int, token_id: int | None, touch: bool
    ) -> tuple[bool, bool]:
        """(token ok, held)."""
        if token_id is not None and not _token_hold(
            token_id=token_id, amount_micro=amount_micro, touch=touch
        ):
            return False, False
        moved = wallet_move(
            user_id=user_id,
            balance_delta=-amount_micro,
            held_delta=amount_micro,
            min_balance=max(amount_micro, 1),
        )
        if moved is None:
            return True, False
        _ledger_add((moved[0], LedgerKind.HOLD.value, -amount_micro, moved[1], request_id, token_id))
        return True, True

    @transaction.atomic
    def settle(
        self, *, request_id: str, user_id: int, cost_micro: int, record: dict, hold_micro: int | None = None
    ) -> Settlement:
        """Charge the actual cost, release the rest of the hold, write the usage record: once.

        A second call for the same request id changes nothing and returns the first result.
        A cost above what the hold and balance cover is recorded as uncollected, never
        overdrawn. `hold_micro`: what the caller's own `hold` committed (None when unknown:
        then the hold is read back).
        """
        check_amount(cost_micro, allow_zero=True)
        fields = {
            **record,
            "user_id": user_id,
            "hold_micro": hold_micro,
            "cost_micro": cost_micro,
            "uncollected_micro": 0,
            "settled_at": timezone.now(),
        }
        token_id = record.get("token_id")
        outcome = self._claim_and_move(
            request_id=request_id, user_id=user_id, cost_micro=cost_micro, fields=fields, token_id=token_id
        )
        if outcome is None:
            return _already_settled(request_id)
        held, hold_micro, moved, lines_written = outcome
        if lines_written:
            return Settlement(request_id, cost_micro, False)
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

    def _claim_and_move(self, *, request_id: str, user_id: int, cost_micro: int, fields: dict, token_id):
        """Claim the usage record, then move token and wallet: None when already settled, else
        (held, hold amount, (wallet id, balance after) or None, ledger lines written)."""
        hold_micro = fields["hold_micro"]
        held = hold_micro is not None
        if not held:
            hold = (
                LedgerEntry.objects.filter(request_id=request_id, kind=LedgerKind.HOLD)
                .values_list("amount_micro", flat=True)
                .first()
            )
            held, hold_micro = hold is not None, -(hold or 0)
        fields["hold_micro"] = hold_micro
        if not usage_claim(request_id=request_id, fields=fields):
            return None
        if token_id is not None and (hold_micro or cost_micro):
            _token_spend(token_id=token_id, held_delta=-hold_micro, spent_delta=cost_micro)
        moved = None
        if held or cost_micro:
            moved = wallet_move(
                user_id=user_id,
                balance_delta=hold_micro - cost_micro,
                held_delta=-hold_micro,
                min_balance=cost_micro - hold_micro,
            )
        return held, hold_micro, moved, False

    def release(
        self, *, request_id: str, user_id: int, record: dict, hold_micro: int | None = None
    ) -> Settlement:
        """Give the whole hold back (the call failed or was cut before any cost): a settlement at zero."""
        return self.settle(
            request_id=request_id, user_id=user_id, cost_micro=0, record=record, hold_micro=hold_micro
        )

    def refuse(
        self, *, request_id: str, user_id: int, record: dict, touch_token_id: int | None = None
    ) -> None:
        """A call refused after authentication, before any hold: recorded at no cost so its
        request id can be looked up; `touch_token_id` also stamps that token's last_used_at."""
        with transaction.atomic():
            usage_record_failure(request_id=request_id, user_id=user_id, record=record)
            if touch_token_id is not None:
                Token.objects.filter(pk=touch_token_id).update(last_used_at=timezone.now())


class PostgresLedger(PortableLedger):
    """A hold and a settlement's usual case as one statement each: rows stay locked from their
    UPDATE to COMMIT, and one statement leaves a single round trip (COMMIT) inside the lock."""

    def _reserve(
        self, *, user_id: int, request_id: str, amount_micro: int, token_id: int | None, touch: bool
    ) -> tuple[bool, bool]:
        return _hold_in_one_statement(
            connections[Wallet.objects.db],
            user_id=user_id,
            request_id=request_id,
            amount_micro=amount_micro,
            token_id=token_id,
            touch=touch,
        )

    def _claim_and_move(self, *, request_id: str, user_id: int, cost_micro: int, fields: dict, token_id):
        claimed, held, hold_micro, moved = _settle_in_one_statement(
            connections[UsageRecord.objects.db],
            request_id=request_id,
            user_id=user_id,
            cost_micro=cost_micro,
            fields=fields,
            token_id=token_id,
        )
        if not claimed:
            return None
        return held, hold_micro, moved, moved is not None


@functools.cache
def _ledger_for(vendor: str) -> PortableLedger:
    return PostgresLedger() if vendor == "postgresql" else PortableLedger()


def get_ledger() -> PortableLedger:
    """The ledger implementation for the database the wallets live in (read from settings:
    no connection is made, so the relay may ask on its event loop)."""
    engine = connections.settings[Wallet.objects.db]["ENGINE"]
    return _ledger_for("postgresql" if engine.endswith("postgresql") else "portable")


# --- the batched ledger: PostgreSQL, on the event loop ---------------------------------------

# Most calls of one kind in one statement: bounds the statement's size and a batch's lock time.
MAX_BATCH = 256

_HOLD_SQL = (
    "SELECT billing_hold_batch(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::boolean[], %s)"
)
_SETTLE_SQL = (
    "SELECT outcome, charged FROM billing_settle_batch("
    "%s::jsonb, %s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s)"
)
_HELD, _SHORT_OF_BALANCE, _OVER_QUOTA = 0, 1, 2
_SETTLED, _SETTLED_BEFORE, _PENDING_RECORD = 0, 1, 2

_stats: collections.Counter[str] = collections.Counter()


def batch_stats() -> dict[str, int]:
    """Cumulative counters of the batched path in this process: `calls` (holds, settlements,
    refusals asked for), `batches` (statements they were grouped into), `statements` (round
    trips to PostgreSQL, retries included), and the same per kind (`hold_calls`, ...)."""
    return dict(_stats)


def _count(kind: str, what: str, n: int = 1) -> None:
    _stats[what] += n
    _stats[f"{kind}_{what}"] += n


def _django_error(exc: Exception) -> Exception:
    """psycopg's (or the pool's) error as Django's class of the same name, the original as its
    cause, so callers catch `django.db.DatabaseError` whichever path ran."""
    if isinstance(exc, PoolTimeout):
        error: Exception = db_utils.OperationalError(*exc.args)
    else:
        cls = next(
            (getattr(db_utils, c.__name__) for c in type(exc).__mro__ if c.__module__ == "psycopg"),
            db_utils.DatabaseError,
        )
        error = cls(*exc.args)
    error.__cause__ = exc
    return error


def _json_value(value):
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _usage_json(row: dict) -> dict:
    """A usage record as PostgreSQL's `jsonb_populate_record` reads it: every column but the id,
    by column name, model defaults for what `row` lacks."""
    out = {}
    for name, field in _usage_fields().items():
        value = row[name] if name in row else field.get_default()
        out[field.column] = value if isinstance(field, JSONField) else field.get_prep_value(value)
    out["created_at"] = timezone.now()
    return out


@dataclass
class _Pending:
    key: str
    args: dict
    future: asyncio.Future
    sent: asyncio.Future | None = None  # resolved when its batch's statement goes out
    queued_at: float = dataclasses.field(default_factory=time.monotonic)


def mark_sent(sent: asyncio.Future | None) -> None:
    """Resolve a `sent` future (see `BatchedLedger`) unless that happened already."""
    if sent is not None and not sent.done():
        sent.set_result(None)


def _retrieve(future: asyncio.Future) -> None:
    """A call that stopped waiting still has its future resolved: read its error, if any."""
    if not future.cancelled():
        future.exception()


class _Batcher:
    """One kind of ledger call on one event loop: a call goes out at once when no batch of its
    kind is in flight, else it waits for the batch in flight and goes with the next one. Calls
    with the same key (request id) never share a batch."""

    def __init__(self, kind: str, owner: _LoopLedger):
        self.kind = kind
        self.owner = owner
        self.queue: list[_Pending] = []
        self.flying: asyncio.Task | None = None
        # When a batch last found no connection: calls queued before then fail at once (they
        # waited for that batch already), so a call waits at most one pool timeout.
        self.unreachable_since = -1.0

    async def submit(self, key: str, args: dict, sent: asyncio.Future | None = None):
        """The call's answer. `sent` (if given) is resolved once its statement is on its way,
        or the call failed before that: the caller may do other work in the meantime."""
        try:
            return await self._submit(key, args, sent)
        finally:
            mark_sent(sent)

    async def _submit(self, key: str, args: dict, sent: asyncio.Future | None):
        reach = _db_call.get()
        if reach is not None and reach.unreachable:
            raise db_utils.OperationalError(UNREACHABLE)
        loop = asyncio.get_running_loop()
        pending = _Pending(key, args, loop.create_future(), sent)
        self.queue.append(pending)
        _count(self.kind, "calls")
        if self.flying is None:
            self.flying = loop.create_task(self._drain(), context=contextvars.Context())
        try:
            # However many batches are ahead of it, a call waits at most about one pool timeout
            # (its batch may still commit later: holds are swept, settlements replay idempotently).
            return await asyncio.wait_for(asyncio.shield(pending.future), self.owner.wait_limit())
        except TimeoutError:
            pending.future.add_done_callback(_retrieve)
            if reach is not None:
                reach.unreachable = True
            raise db_utils.OperationalError(UNREACHABLE) from None
        except DatabaseError as exc:
            if reach is not None and (_no_connection(exc) or isinstance(exc, db_utils.OperationalError)):
                reach.unreachable = True
            raise

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        rest: list[_Pending] = []
        keys: set[str] = set()
        for pending in self.queue:
            if pending.queued_at < self.unreachable_since:
                _resolve(pending, error=db_utils.OperationalError(UNREACHABLE))
            elif len(batch) < MAX_BATCH and pending.key not in keys:
                keys.add(pending.key)
                batch.append(pending)
            else:
                rest.append(pending)
        self.queue = rest
        return batch

    async def _drain(self) -> None:
        try:
            while batch := self._take():
                await self.owner.run(self, batch)
        finally:
            self.flying = None


def _resolve(pending: _Pending, result=None, error: BaseException | None = None) -> None:
    if pending.future.done():  # its caller went away: nothing to tell
        return
    if error is not None:
        pending.future.set_exception(error)
    else:
        pending.future.set_result(result)


class _LoopLedger:
    """The pool and batchers of one event loop (a pool cannot be shared across loops)."""

    def __init__(self):
        self.pool: AsyncConnectionPool | None = None
        self.opening = asyncio.Lock()
        self.connections: list[psycopg.AsyncConnection] = []
        self.batchers = {kind: _Batcher(kind, self) for kind in ("hold", "settle", "refuse")}

    @staticmethod
    def _pool_options() -> dict:
        return connections[Wallet.objects.db].settings_dict.get("OPTIONS", {}).get("pool") or {}

    def wait_limit(self) -> float:
        return float(self._pool_options().get("timeout", 10)) + 0.5

    async def _pool(self) -> AsyncConnectionPool:
        async with self.opening:
            if self.pool is None:
                alias = Wallet.objects.db
                params = connections[alias].get_connection_params()
                params.pop("cursor_factory", None)
                params.pop("context", None)
                options = self._pool_options()
                pool = AsyncConnectionPool(
                    kwargs={**params, "autocommit": True},
                    min_size=1,
                    max_size=len(self.batchers) + 1,
                    timeout=options.get("timeout", 10),
                    reconnect_timeout=options.get("reconnect_timeout", 5),
                    configure=self._configure,
                    name="billing-ledger",
                    open=False,
                )
                await pool.open(wait=False)
                self.pool = pool
            return self.pool

    async def _configure(self, conn) -> None:
        self.connections[:] = [c for c in self.connections if not c.closed]
        self.connections.append(conn)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    def abandon(self) -> None:
        """Close the sockets of a pool whose event loop is gone (it cannot be awaited any more)."""
        for conn in self.connections:
            if not conn.closed:
                conn.pgconn.finish()

    async def execute(self, kind: str, sql: str, params: list):
        """One statement, autocommit (its own transaction: one round trip); the first row back.
        A connection that turns out broken (the database restarted) is retried once on a fresh
        one: every batch is safe to repeat (see the module docstring)."""
        pool = await self._pool()
        for attempt in (1, 2):
            if attempt == 2:
                await pool.check()  # the database restarted: drop every idle connection it broke
            try:
                async with pool.connection() as conn:
                    _count(kind, "statements")
                    try:
                        cursor = await conn.execute(sql, params)
                        return await cursor.fetchone()
                    except psycopg.OperationalError:
                        if attempt == 1 and conn.broken:
                            continue
                        raise
            except (psycopg.Error, PoolTimeout) as exc:
                raise _django_error(exc) from exc
        raise AssertionError("unreachable")

    async def run(self, batcher: _Batcher, batch: list[_Pending]) -> None:
        """Run one batch. A batch of several that fails on its data (not on the connection) runs
        again one call at a time, so the error reaches only the call that caused it."""
        _count(batcher.kind, "batches")
        # Nothing below waits before the statement is written (unless the pool has no idle
        # connection), and a resolved future wakes its waiter only on a later turn of the loop.
        for pending in batch:
            mark_sent(pending.sent)
        try:
            run = {"hold": self._hold, "settle": self._settle, "refuse": self._refuse}[batcher.kind]
            results = await run(batch)
        except DatabaseError as exc:
            if _no_connection(exc) or isinstance(exc, db_utils.OperationalError):
                batcher.unreachable_since = time.monotonic()
            if len(batch) > 1 and not isinstance(exc, db_utils.OperationalError):
                for pending in batch:
                    await self.run(batcher, [pending])
                return
            for pending in batch:
                _resolve(pending, error=exc)
            return
        except Exception as exc:
            for pending in batch:
                _resolve(pending, error=exc)
            return
        for pending, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                _resolve(pending, error=result)
            else:
                _resolve(pending, result)

    async def _hold(self, batch: list[_Pending]) -> list:
        calls = [p.args for p in batch]
        params = [
            [c["user_id"] for c in calls],
            [c["token_id"] for c in calls],
            [c["amount_micro"] for c in calls],
            [c["request_id"] for c in calls],
            [c["touch_token"] for c in calls],
            timezone.now(),
        ]
        (outcomes,) = await self.execute("hold", _HOLD_SQL, params)
        results: list = []
        for call, outcome in zip(calls, outcomes, strict=True):
            if outcome == _HELD:
                results.append(call["amount_micro"])
            elif outcome == _OVER_QUOTA:
                results.append(QuotaExceeded("token quota exceeded"))
            else:
                results.append(InsufficientBalance("insufficient balance"))
        return results

    async def _settle(self, batch: list[_Pending]) -> list:
        batch.sort(key=lambda p: p.key)  # usage records are locked in request id order
        calls = [p.args for p in batch]
        now = timezone.now()
        records = []
        for c in calls:
            fields = {
                **c["record"],
                "user_id": c["user_id"],
                "hold_micro": c["hold_micro"],
                "cost_micro": c["cost_micro"],
                "uncollected_micro": 0,
                "settled_at": now,
                "request_id": c["request_id"],
            }
            records.append(_usage_json(fields))
        params = [
            orjson.dumps(records, default=_json_value).decode(),
            [c["request_id"] for c in calls],
            [c["user_id"] for c in calls],
            [c["record"].get("token_id") for c in calls],
            [c["cost_micro"] for c in calls],
            now,
        ]
        outcomes, charged = await self.execute("settle", _SETTLE_SQL, params)
        results: list = []
        for c, outcome, amount in zip(calls, outcomes, charged, strict=True):
            if outcome == _PENDING_RECORD:
                # A pending record (a job's) keeps the columns this settlement does not write:
                # the one-call path does that; it claims the record itself.
                try:
                    results.append(await _settle_pending(c))
                except Exception as exc:
                    results.append(exc)
            else:
                results.append(Settlement(c["request_id"], amount, outcome == _SETTLED_BEFORE))
        return results

    async def _refuse(self, batch: list[_Pending]) -> list:
        now = timezone.now()
        groups: dict[tuple, list[dict]] = {}
        for p in batch:
            fields = {
                **p.args["record"],
                "user_id": p.args["user_id"],
                "status": UsageStatus.ERROR,
                "settled_at": now,
                "request_id": p.key,
            }
            groups.setdefault(tuple(sorted(fields)), []).append(_usage_json(fields))
        conn = connections[UsageRecord.objects.db]
        table = _table(conn, UsageRecord)
        model_fields = _usage_fields()
        columns = ", ".join(f.column for f in model_fields.values())
        ctes: list[str] = []
        params: list[object] = []
        for i, (names, rows) in enumerate(groups.items()):
            update = ", ".join(
                f"{model_fields[n].column} = EXCLUDED.{model_fields[n].column}"
                for n in names
                if n != "request_id"
            )
            ctes.append(
                f"u{i} AS (INSERT INTO {table} ({columns}) SELECT {columns} "  # noqa: S608
                f"FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb) "
                f"ON CONFLICT (request_id) DO UPDATE SET {update} RETURNING 1)"
            )
            params.append(orjson.dumps(rows, default=_json_value).decode())
        touched = sorted({p.args["touch_token_id"] for p in batch} - {None})
        token_table = _table(conn, Token)
        ctes.append(
            f"t AS (UPDATE {token_table} SET last_used_at = %s "  # noqa: S608
            "WHERE id = ANY(%s::bigint[]) RETURNING 1)"
        )
        params += [now, touched]
        await self.execute("refuse", f"WITH {', '.join(ctes)} SELECT 1", params)
        return [None] * len(batch)


async def _settle_pending(call: dict) -> Settlement:
    return await db_async_detached(PostgresLedger().settle)(**call)


_loops: dict[asyncio.AbstractEventLoop, _LoopLedger] = {}


def _for_this_loop() -> _LoopLedger:
    loop = asyncio.get_running_loop()
    ledger = _loops.get(loop)
    if ledger is None:
        for old in [old for old in _loops if old.is_closed()]:
            _loops.pop(old).abandon()
        ledger = _loops[loop] = _LoopLedger()
    return ledger


async def close_batched_ledger() -> None:
    """Close this event loop's pool (ASGI lifespan shutdown)."""
    ledger = _loops.pop(asyncio.get_running_loop(), None)
    if ledger is not None:
        await ledger.close()


class BatchedLedger:
    """`PortableLedger`'s calls as coroutines, micro-batched per kind on the event loop (see
    the module docstring). Same arguments, same answers, same errors; `hold` and `settle` also
    take `sent`, a future resolved once the call's statement is on its way to PostgreSQL, so
    that the caller can do its own round trips (Redis) while PostgreSQL works."""

    async def hold(
        self,
        *,
        user_id: int,
        request_id: str,
        amount_micro: int,
        token_id: int | None = None,
        touch_token: bool = False,
        sent: asyncio.Future | None = None,
    ) -> int:
        check_amount(amount_micro, allow_zero=True)
        args = {
            "user_id": user_id,
            "request_id": request_id,
            "amount_micro": amount_micro,
            "token_id": token_id,
            "touch_token": touch_token,
        }
        return await _for_this_loop().batchers["hold"].submit(request_id, args, sent)

    async def settle(
        self,
        *,
        request_id: str,
        user_id: int,
        cost_micro: int,
        record: dict,
        hold_micro: int | None = None,
        sent: asyncio.Future | None = None,
    ) -> Settlement:
        check_amount(cost_micro, allow_zero=True)
        args = {
            "request_id": request_id,
            "user_id": user_id,
            "cost_micro": cost_micro,
            "record": record,
            "hold_micro": hold_micro,
        }
        return await _for_this_loop().batchers["settle"].submit(request_id, args, sent)

    async def release(
        self, *, request_id: str, user_id: int, record: dict, hold_micro: int | None = None
    ) -> Settlement:
        return await self.settle(
            request_id=request_id, user_id=user_id, cost_micro=0, record=record, hold_micro=hold_micro
        )

    async def refuse(
        self, *, request_id: str, user_id: int, record: dict, touch_token_id: int | None = None
    ) -> None:
        args = {"user_id": user_id, "record": record, "touch_token_id": touch_token_id}
        await _for_this_loop().batchers["refuse"].submit(request_id, args)


_batched = BatchedLedger()


def batched_ledger() -> BatchedLedger | None:
    """The async money path when it is on (`BILLING_LEDGER_BATCHED`, PostgreSQL only), else None:
    then callers run `get_ledger()`'s calls as database units (a thread hop)."""
    if not settings.BILLING_LEDGER_BATCHED or not isinstance(get_ledger(), PostgresLedger):
        return None
    return _batched
