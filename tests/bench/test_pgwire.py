"""bench/pgwire.py: the counting proxy counts statements and round trips as PostgreSQL sees them."""

import importlib.util
import socket
import sys
from pathlib import Path

import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def _pgwire():
    if "bench_pgwire" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_pgwire", ROOT / "bench" / "pgwire.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_pgwire"] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_pgwire"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_keyword_is_the_first_sql_word():
    keyword = _pgwire().keyword
    assert keyword(b"  -- a comment\nWITH held AS (SELECT 1) SELECT 2") == "WITH"
    assert keyword(b"begin") == "BEGIN"
    assert keyword(b"COMMIT;") == "COMMIT"
    assert keyword(b"") == ""


@pytest.mark.postgres
def test_proxy_counts_statements_round_trips_and_transaction_control(db):
    settings = connection.settings_dict
    proxy = _pgwire().PgWireCounter(
        settings["HOST"] or "127.0.0.1", int(settings["PORT"] or 5432), _free_port()
    )
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    url = (
        f"postgres://{settings['USER']}{password}@127.0.0.1:{proxy.port}/{settings['NAME']}"
        "?sslmode=disable&gssencmode=disable"
    )
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT 1").fetchone()  # simple query: 1 statement, 1 round trip
            conn.execute("SELECT %s::int", (2,)).fetchone()  # extended: Parse/Bind/Execute/Sync
            with conn.transaction():  # BEGIN, one statement, COMMIT: 3 round trips
                conn.execute("UPDATE django_migrations SET app = app WHERE false").rowcount
            with conn.pipeline():  # two statements, one Sync
                conn.execute("SELECT %s::int", (3,))
                conn.execute("SELECT %s::int", (4,))
        counts = proxy.counts.snapshot()
    finally:
        proxy.close()
    assert counts["connections"] == 1
    assert counts["statements_select"] == 4
    assert counts["statements_begin"] == 1
    assert counts["statements_commit"] == 1
    assert counts["statements_update"] == 1
    assert counts["statements"] == 7
    assert counts["round_trips"] == 6
