"""PL/pgSQL functions of the batched ledger (billing/ledger.py `BatchedLedger`), PostgreSQL only.

Each takes a batch of holds or settlements as arrays and applies them in array order, as if
they ran one after the other: one statement (one round trip, one transaction) for the batch,
one row lock and one write per token and per wallet. Rows are locked tokens first, then
wallets, each in id order (usage records before both, in request id order), so concurrent
batches and single calls never wait on each other in a cycle.
"""

from django.db import migrations

HOLD_BATCH = """
CREATE OR REPLACE FUNCTION billing_hold_batch(
    p_user bigint[], p_token bigint[], p_amount bigint[], p_request text[], p_touch boolean[],
    p_now timestamptz
) RETURNS smallint[] LANGUAGE plpgsql AS $fn$
-- Per hold: 0 held, 1 insufficient balance, 2 token quota exceeded (or no such token).
DECLARE
    n int := coalesce(array_length(p_user, 1), 0);
    outcome smallint[] := array_fill(0::smallint, ARRAY[n]);
    t_id bigint[]; t_room bigint[]; t_add bigint[]; t_touch boolean[];
    w_user bigint[]; w_id bigint[]; w_balance bigint[]; w_add bigint[]; w_hits int[];
    l_wallet bigint[] := '{}'; l_amount bigint[] := '{}'; l_after bigint[] := '{}';
    l_request text[] := '{}'; l_token bigint[] := '{}';
    i int; ti int; wi int;
BEGIN
    SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(quota_micro - spent_micro - held_micro), '{}')
      INTO t_id, t_room
      FROM (SELECT id, quota_micro, spent_micro, held_micro FROM tokens_token
             WHERE id = ANY(p_token) ORDER BY id FOR UPDATE) t;
    SELECT coalesce(array_agg(user_id), '{}'), coalesce(array_agg(id), '{}'), coalesce(array_agg(balance_micro), '{}')
      INTO w_user, w_id, w_balance
      FROM (SELECT user_id, id, balance_micro FROM billing_wallet
             WHERE user_id = ANY(p_user) ORDER BY id FOR UPDATE) w;
    t_add := array_fill(0::bigint, ARRAY[coalesce(array_length(t_id, 1), 0)]);
    t_touch := array_fill(false, ARRAY[coalesce(array_length(t_id, 1), 0)]);
    w_add := array_fill(0::bigint, ARRAY[coalesce(array_length(w_id, 1), 0)]);
    w_hits := array_fill(0, ARRAY[coalesce(array_length(w_id, 1), 0)]);
    FOR i IN 1..n LOOP
        wi := array_position(w_user, p_user[i]);
        ti := CASE WHEN p_token[i] IS NULL THEN NULL ELSE array_position(t_id, p_token[i]) END;
        IF p_token[i] IS NOT NULL AND (ti IS NULL OR t_room[ti] < p_amount[i]) THEN
            outcome[i] := 2;
        ELSIF wi IS NULL OR w_balance[wi] < greatest(p_amount[i], 1) THEN
            outcome[i] := 1;
        ELSE
            w_balance[wi] := w_balance[wi] - p_amount[i];
            w_add[wi] := w_add[wi] + p_amount[i];
            w_hits[wi] := w_hits[wi] + 1;
            IF ti IS NOT NULL THEN
                t_room[ti] := t_room[ti] - p_amount[i];
                t_add[ti] := t_add[ti] + p_amount[i];
                t_touch[ti] := t_touch[ti] OR p_touch[i];
            END IF;
            l_wallet := array_append(l_wallet, w_id[wi]);
            l_amount := array_append(l_amount, -p_amount[i]);
            l_after := array_append(l_after, w_balance[wi]);
            l_request := array_append(l_request, p_request[i]);
            l_token := array_append(l_token, p_token[i]);
        END IF;
    END LOOP;
    UPDATE tokens_token t SET held_micro = t.held_micro + d.add,
           last_used_at = CASE WHEN d.touch THEN p_now ELSE t.last_used_at END
      FROM unnest(t_id, t_add, t_touch) AS d(id, add, touch)
     WHERE t.id = d.id AND (d.add <> 0 OR d.touch);
    UPDATE billing_wallet w SET balance_micro = w.balance_micro - d.add, held_micro = w.held_micro + d.add,
           updated_at = p_now
      FROM unnest(w_id, w_add, w_hits) AS d(id, add, hits)
     WHERE w.id = d.id AND d.hits > 0;
    INSERT INTO billing_ledgerentry
           (wallet_id, kind, amount_micro, balance_after_micro, request_id, token_id, memo, created_at)
    SELECT l.wallet, 'hold', l.amount, l.after, l.request, l.token, '', p_now
      FROM unnest(l_wallet, l_amount, l_after, l_request, l_token) WITH ORDINALITY
           AS l(wallet, amount, after, request, token, k)
     ORDER BY l.k;
    RETURN outcome;
END
$fn$;
"""

SETTLE_BATCH = """
CREATE OR REPLACE FUNCTION billing_settle_batch(
    p_records jsonb, p_request text[], p_user bigint[], p_token bigint[], p_cost bigint[],
    p_now timestamptz, OUT outcome smallint[], OUT charged bigint[]
) LANGUAGE plpgsql AS $fn$
-- p_records: one usage record per settlement (a JSON object keyed by column, every column but
-- id), in the order of the other arrays; request ids are distinct. Per settlement: outcome 0
-- settled (charged: what was charged), 1 already settled (charged: what that settlement
-- charged), 2 a pending usage record exists (nothing done: the caller settles it on its own).
DECLARE
    n int := coalesce(array_length(p_request, 1), 0);
    seq text := pg_get_serial_sequence('billing_usagerecord', 'id');
    claimed text[];
    is_claimed boolean[];
    holds bigint[];
    done boolean;
    prior bigint;
    t_id bigint[]; t_held bigint[]; t_spent bigint[];
    w_user bigint[]; w_id bigint[]; w_balance bigint[]; w_held bigint[]; w_hits int[];
    l_wallet bigint[] := '{}'; l_kind text[] := '{}'; l_amount bigint[] := '{}'; l_after bigint[] := '{}';
    l_request text[] := '{}';
    s_request text[] := '{}'; s_uncollected bigint[] := '{}';
    i int; ti int; wi int; h bigint; c bigint; before bigint;
BEGIN
    outcome := array_fill(0::smallint, ARRAY[n]);
    charged := array_fill(0::bigint, ARRAY[n]);
    -- Claim: a new usage record per settlement, its hold read from the hold's ledger line. A
    -- request whose record exists (settled, or pending) is not claimed here.
    WITH ins AS (
        INSERT INTO billing_usagerecord
        SELECT u.* FROM jsonb_array_elements(p_records) WITH ORDINALITY AS r(j, k),
             LATERAL jsonb_populate_record(NULL::billing_usagerecord, r.j || jsonb_build_object(
                 'id', nextval(seq),
                 'hold_micro', coalesce((SELECT -e.amount_micro FROM billing_ledgerentry e
                                          WHERE e.request_id = r.j->>'request_id' AND e.kind = 'hold'), 0)
             )) AS u
         ORDER BY r.k
        ON CONFLICT (request_id) DO NOTHING
        RETURNING request_id
    )
    SELECT coalesce(array_agg(request_id), '{}') INTO claimed FROM ins;
    SELECT array_agg(q.request IS NOT NULL ORDER BY p.k), array_agg(-e.amount_micro ORDER BY p.k)
      INTO is_claimed, holds
      FROM unnest(p_request) WITH ORDINALITY AS p(request, k)
      LEFT JOIN unnest(claimed) AS q(request) ON q.request = p.request
      LEFT JOIN billing_ledgerentry e ON e.request_id = p.request AND e.kind = 'hold' AND q.request IS NOT NULL;
    SELECT coalesce(array_agg(id), '{}') INTO t_id
      FROM (SELECT id FROM tokens_token WHERE id IN (
                SELECT p_token[k] FROM generate_subscripts(p_request, 1) AS k WHERE is_claimed[k])
             ORDER BY id FOR UPDATE) t;
    SELECT coalesce(array_agg(user_id), '{}'), coalesce(array_agg(id), '{}'), coalesce(array_agg(balance_micro), '{}')
      INTO w_user, w_id, w_balance
      FROM (SELECT user_id, id, balance_micro FROM billing_wallet WHERE user_id IN (
                SELECT p_user[k] FROM generate_subscripts(p_request, 1) AS k WHERE is_claimed[k])
             ORDER BY id FOR UPDATE) w;
    t_held := array_fill(0::bigint, ARRAY[coalesce(array_length(t_id, 1), 0)]);
    t_spent := array_fill(0::bigint, ARRAY[coalesce(array_length(t_id, 1), 0)]);
    w_held := array_fill(0::bigint, ARRAY[coalesce(array_length(w_id, 1), 0)]);
    w_hits := array_fill(0, ARRAY[coalesce(array_length(w_id, 1), 0)]);
    FOR i IN 1..n LOOP
        IF NOT is_claimed[i] THEN
            SELECT settled_at IS NOT NULL, cost_micro - uncollected_micro INTO done, prior
              FROM billing_usagerecord WHERE request_id = p_request[i];
            outcome[i] := CASE WHEN done THEN 1 ELSE 2 END;
            charged[i] := CASE WHEN done THEN prior ELSE 0 END;
            CONTINUE;
        END IF;
        h := coalesce(holds[i], 0);
        IF holds[i] IS NULL AND p_cost[i] = 0 THEN
            CONTINUE;  -- nothing held, nothing to charge: the usage record is all there is
        END IF;
        wi := array_position(w_user, p_user[i]);
        IF wi IS NULL THEN
            RAISE EXCEPTION 'no wallet for user %', p_user[i] USING ERRCODE = 'no_data_found';
        END IF;
        before := w_balance[wi];
        -- What hold and balance cover: the rest is uncollected, never overdrawn.
        c := least(p_cost[i], before + h);
        w_balance[wi] := before + h - c;
        w_held[wi] := w_held[wi] + h;
        w_hits[wi] := w_hits[wi] + 1;
        charged[i] := c;
        ti := CASE WHEN p_token[i] IS NULL THEN NULL ELSE array_position(t_id, p_token[i]) END;
        IF ti IS NOT NULL THEN
            t_held[ti] := t_held[ti] + h;
            t_spent[ti] := t_spent[ti] + c;
        END IF;
        IF holds[i] IS NOT NULL THEN
            l_wallet := array_append(l_wallet, w_id[wi]);
            l_kind := array_append(l_kind, 'release');
            l_amount := array_append(l_amount, h);
            l_after := array_append(l_after, before + h);
            l_request := array_append(l_request, p_request[i]);
        END IF;
        IF c > 0 THEN
            l_wallet := array_append(l_wallet, w_id[wi]);
            l_kind := array_append(l_kind, 'charge');
            l_amount := array_append(l_amount, -c);
            l_after := array_append(l_after, w_balance[wi]);
            l_request := array_append(l_request, p_request[i]);
        END IF;
        IF c < p_cost[i] THEN
            s_request := array_append(s_request, p_request[i]);
            s_uncollected := array_append(s_uncollected, p_cost[i] - c);
        END IF;
    END LOOP;
    UPDATE tokens_token t SET held_micro = t.held_micro - d.held, spent_micro = t.spent_micro + d.spent
      FROM unnest(t_id, t_held, t_spent) AS d(id, held, spent)
     WHERE t.id = d.id AND (d.held <> 0 OR d.spent <> 0);
    UPDATE billing_wallet w SET balance_micro = d.balance, held_micro = w.held_micro - d.held, updated_at = p_now
      FROM unnest(w_id, w_balance, w_held, w_hits) AS d(id, balance, held, hits)
     WHERE w.id = d.id AND d.hits > 0;
    INSERT INTO billing_ledgerentry (wallet_id, kind, amount_micro, balance_after_micro, request_id, memo, created_at)
    SELECT l.wallet, l.kind, l.amount, l.after, l.request, '', p_now
      FROM unnest(l_wallet, l_kind, l_amount, l_after, l_request) WITH ORDINALITY
           AS l(wallet, kind, amount, after, request, k)
     ORDER BY l.k;
    UPDATE billing_usagerecord u SET uncollected_micro = s.uncollected
      FROM unnest(s_request, s_uncollected) AS s(request, uncollected)
     WHERE u.request_id = s.request;
END
$fn$;
"""

DROP = """
DROP FUNCTION IF EXISTS billing_hold_batch(bigint[], bigint[], bigint[], text[], boolean[], timestamptz);
DROP FUNCTION IF EXISTS billing_settle_batch(jsonb, text[], bigint[], bigint[], bigint[], timestamptz);
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(HOLD_BATCH, None)
        schema_editor.execute(SETTLE_BATCH, None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, None)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_usagerecord_refusal_reason"),
        ("tokens", "0001_initial"),
    ]

    operations = [migrations.RunPython(create, drop)]
