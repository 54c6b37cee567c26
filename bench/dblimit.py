"""The database's own limit: small durable transactions per second, pgbench-like, on the bench's database.

Each transaction updates one row of a 1,000-row table and inserts one history row, then commits (pgbench's
"simple update" minus the selects). ``clients`` threads, each with its own connection, for ``seconds``; the same
connection settings as the project's (PostgreSQL: the cluster's settings, durable unless the bench switched them;
SQLite: WAL, synchronous=NORMAL, BEGIN IMMEDIATE, busy timeout). Every steps/s figure is read against this.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time

ROWS = 1000


def _connect():
    from django.db import connection

    params = connection.get_connection_params()
    if connection.vendor == "postgresql":
        import psycopg

        params = {k: v for k, v in params.items() if k not in ("cursor_factory", "context", "prepare_threshold")}
        conn = psycopg.connect(**params, autocommit=True)
        return conn, "%s", "BEGIN"
    conn = sqlite3.connect(params["database"], timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn, "?", "BEGIN IMMEDIATE"


def _setup() -> None:
    conn, _, _ = _connect()
    serial = "SERIAL" if not isinstance(conn, sqlite3.Connection) else "INTEGER"
    conn.execute("DROP TABLE IF EXISTS bench_limit_accounts")
    conn.execute("DROP TABLE IF EXISTS bench_limit_history")
    conn.execute("CREATE TABLE bench_limit_accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)")
    conn.execute(f"CREATE TABLE bench_limit_history (id {serial} PRIMARY KEY, aid INTEGER, delta INTEGER, at REAL)")
    values = ", ".join(f"({i}, 0)" for i in range(1, ROWS + 1))
    conn.execute(f"INSERT INTO bench_limit_accounts (id, balance) VALUES {values}")
    conn.close()


def measure(seconds: float = 5.0, clients: int = 2) -> float:
    """Committed transactions per second over ``seconds``, ``clients`` at once."""
    _setup()
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def client(k: int) -> None:
        conn, p, begin = _connect()
        rnd = random.Random(k)
        while time.monotonic() < stop:
            aid, delta = rnd.randint(1, ROWS), rnd.randint(-5000, 5000)
            conn.execute(begin)
            conn.execute(f"UPDATE bench_limit_accounts SET balance = balance + {p} WHERE id = {p}", (delta, aid))
            conn.execute(f"INSERT INTO bench_limit_history (aid, delta, at) VALUES ({p}, {p}, {p})",
                         (aid, delta, time.time()))  # fmt: skip
            conn.execute("COMMIT")
            counts[k] += 1
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)
