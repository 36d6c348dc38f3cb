"""A batch of one takes a shorter path through the batched ledger's functions (billing/ledger.py).

When the relay is idle every hold and settlement is a batch of one, and there the general
path (lock the tokens, then the wallets, with `SELECT … FOR UPDATE`, keep running balances in
arrays, then write each row) cost more than the writes themselves: 0.7 ms of PostgreSQL per
hold against 0.4 ms for the same change as conditional UPDATEs (bench/PROFILE.md). With one
call there is no running balance to keep, so each row is changed by one conditional UPDATE, in
the same lock order (usage record, token, wallet). The rare outcomes (the wallet cannot cover a
hold after the token reserved it; a settlement larger than hold and balance) correct the rows
already changed, in the same transaction. Same arguments and answers as the general path,
which is 0004's unchanged: this migration inserts the batch-of-one branch at its start.

A hold's transaction also commits without waiting for its WAL flush (`synchronous_commit`
off for that transaction only; a settlement still waits). A hold lost in a database crash
is harmless: the whole transaction is lost (wallet, token and ledger line alike), and the
settlement reads the hold from its ledger line, so it then charges the balance directly
(never overdrawn; a shortfall is recorded as uncollected) — the same as a call settled
after the sweeper released its hold. It saves a WAL flush per call (~0.1 ms here).
"""

from importlib import import_module

from django.db import migrations

general = import_module("billing.migrations.0004_ledger_batch_functions")

HOLD_ONE = """
    -- A hold need not wait for its WAL flush: see the module docstring.
    PERFORM set_config('synchronous_commit', 'off', true);
    IF n = 1 THEN
        DECLARE
            one_wallet bigint;
            one_balance bigint;
        BEGIN
            IF p_token[1] IS NOT NULL THEN
                UPDATE tokens_token SET held_micro = held_micro + p_amount[1],
                       last_used_at = CASE WHEN p_touch[1] THEN p_now ELSE last_used_at END
                 WHERE id = p_token[1]
                   AND (quota_micro IS NULL OR quota_micro - spent_micro - held_micro >= p_amount[1]);
                IF NOT FOUND THEN
                    RETURN ARRAY[2::smallint];
                END IF;
            END IF;
            UPDATE billing_wallet SET balance_micro = balance_micro - p_amount[1],
                   held_micro = held_micro + p_amount[1], updated_at = p_now
             WHERE user_id = p_user[1] AND balance_micro >= greatest(p_amount[1], 1)
            RETURNING id, balance_micro INTO one_wallet, one_balance;
            IF NOT FOUND THEN
                UPDATE tokens_token SET held_micro = held_micro - p_amount[1] WHERE id = p_token[1];
                RETURN ARRAY[1::smallint];
            END IF;
            INSERT INTO billing_ledgerentry
                   (wallet_id, kind, amount_micro, balance_after_micro, request_id, token_id, memo, created_at)
            VALUES (one_wallet, 'hold', -p_amount[1], one_balance, p_request[1], p_token[1], '', p_now);
            RETURN ARRAY[0::smallint];
        END;
    END IF;
"""

SETTLE_ONE = """
    IF n = 1 THEN
        DECLARE
            one_hold bigint;
            one_held boolean;
            one_charge bigint;
            one_wallet bigint;
            one_balance bigint;
        BEGIN
            SELECT -amount_micro INTO one_hold FROM billing_ledgerentry
             WHERE request_id = p_request[1] AND kind = 'hold';
            one_held := FOUND;
            INSERT INTO billing_usagerecord
            SELECT u.* FROM jsonb_populate_record(NULL::billing_usagerecord, p_records->0 || jsonb_build_object(
                     'id', nextval(seq), 'hold_micro', coalesce(one_hold, 0))) AS u
            ON CONFLICT (request_id) DO NOTHING;
            IF NOT FOUND THEN
                SELECT settled_at IS NOT NULL, cost_micro - uncollected_micro INTO done, prior
                  FROM billing_usagerecord WHERE request_id = p_request[1];
                outcome[1] := CASE WHEN done THEN 1 ELSE 2 END;
                charged[1] := CASE WHEN done THEN prior ELSE 0 END;
                RETURN;
            END IF;
            IF NOT one_held AND p_cost[1] = 0 THEN
                RETURN;
            END IF;
            one_hold := coalesce(one_hold, 0);
            -- The token first (lock order), charged in full: corrected below if the wallet falls short.
            UPDATE tokens_token SET held_micro = held_micro - one_hold, spent_micro = spent_micro + p_cost[1]
             WHERE id = p_token[1];
            UPDATE billing_wallet SET balance_micro = balance_micro + one_hold - p_cost[1],
                   held_micro = held_micro - one_hold, updated_at = p_now
             WHERE user_id = p_user[1] AND balance_micro + one_hold >= p_cost[1]
            RETURNING id, balance_micro INTO one_wallet, one_balance;
            IF FOUND THEN
                one_charge := p_cost[1];
            ELSE
                -- What hold and balance cover: the rest is uncollected, never overdrawn.
                SELECT id, balance_micro INTO one_wallet, one_balance FROM billing_wallet
                 WHERE user_id = p_user[1] FOR UPDATE;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'no wallet for user %', p_user[1] USING ERRCODE = 'no_data_found';
                END IF;
                one_charge := least(p_cost[1], one_balance + one_hold);
                one_balance := one_balance + one_hold - one_charge;
                UPDATE billing_wallet SET balance_micro = one_balance, held_micro = held_micro - one_hold,
                       updated_at = p_now
                 WHERE id = one_wallet;
                UPDATE tokens_token SET spent_micro = spent_micro - (p_cost[1] - one_charge) WHERE id = p_token[1];
                UPDATE billing_usagerecord SET uncollected_micro = p_cost[1] - one_charge
                 WHERE request_id = p_request[1];
            END IF;
            charged[1] := one_charge;
            INSERT INTO billing_ledgerentry (wallet_id, kind, amount_micro, balance_after_micro, request_id, memo, created_at)
            SELECT one_wallet, l.line_kind, l.amount, l.balance_after, p_request[1], '', p_now
              FROM (VALUES (1, 'release', one_hold, one_balance + one_charge, one_held),
                           (2, 'charge', -one_charge, one_balance, one_charge > 0))
                   AS l(pos, line_kind, amount, balance_after, wanted)
             WHERE l.wanted
             ORDER BY l.pos;
            RETURN;
        END;
    END IF;
"""


def _with_batch_of_one(function: str, branch: str) -> str:
    head, body = function.split("\nBEGIN\n", 1)
    return f"{head}\nBEGIN\n{branch}{body}"


HOLD_BATCH = _with_batch_of_one(general.HOLD_BATCH, HOLD_ONE)
# the general settlement fills its outcome arrays first thing: the branch goes after that
SETTLE_BATCH = general.SETTLE_BATCH.replace(
    "    charged := array_fill(0::bigint, ARRAY[n]);\n",
    "    charged := array_fill(0::bigint, ARRAY[n]);\n" + SETTLE_ONE,
    1,
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(HOLD_BATCH, None)
        schema_editor.execute(SETTLE_BATCH, None)


def restore(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(general.HOLD_BATCH, None)
        schema_editor.execute(general.SETTLE_BATCH, None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_ledger_batch_functions")]

    operations = [migrations.RunPython(create, restore)]
