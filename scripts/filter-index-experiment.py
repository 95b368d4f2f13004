#!/usr/bin/env python3
"""What migration 13's filter indexes buy and cost, measured on the schema alone (BENCHMARKS.md,
"Web UI"). Python's sqlite3, the `traces` table and indexes of migration 12, synthetic rows.

  scripts/filter-index-experiment.py plans [ROWS]      # list query time and plan, without and
                                                       # with the indexes (default 1,000,000 rows)
  valgrind --tool=callgrind python3 scripts/filter-index-experiment.py insert base 10000
  valgrind --tool=callgrind python3 scripts/filter-index-experiment.py insert indexed 10000
                                                       # instructions per insert ("Collected" / rows)
Run python3 itself, not a pyenv shim, under valgrind. Files go to a temporary directory.
"""

import os
import random
import sqlite3
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MIGRATION_13 = os.path.join(ROOT, "crates/store/migrations/sqlite/0013_trace_filter_indexes.sql")
TABLE = """CREATE TABLE traces (seq INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL,
    id TEXT NOT NULL, session_id TEXT, user_id TEXT, user_role TEXT, environment TEXT,
    model_name TEXT, model_version TEXT, prompt_name TEXT, prompt_version TEXT,
    started_at INTEGER NOT NULL, doc TEXT NOT NULL)"""
INDEXES_OF_MIGRATION_12 = [
    "CREATE UNIQUE INDEX traces_by_id ON traces (project_id, id)",
    "CREATE INDEX traces_by_time ON traces (project_id, started_at, seq)",
    "CREATE INDEX traces_by_session ON traces (project_id, session_id, started_at) WHERE session_id IS NOT NULL",
    "CREATE INDEX traces_by_user ON traces (project_id, user_id, started_at) WHERE user_id IS NOT NULL",
]


def open_table(path: str, with_filter_indexes: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(TABLE)
    for sql in INDEXES_OF_MIGRATION_12:
        conn.execute(sql)
    if with_filter_indexes:
        with open(MIGRATION_13) as migration:
            for line in migration:
                if line.startswith("CREATE"):
                    conn.execute(line)
    return conn


def fill(conn: sqlite3.Connection, rows: int, doc_bytes: int, batch: int = 500) -> float:
    rng = random.Random(2)
    doc = "x" * doc_bytes
    start = time.perf_counter()
    for b in range(rows // batch):
        conn.executemany(
            "INSERT INTO traces (project_id, id, session_id, user_id, user_role, environment,"
            " model_name, model_version, prompt_name, prompt_version, started_at, doc)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (1, f"t{b}-{i}-{rng.random()}", f"s{rng.randrange(100_000)}",
                 f"u{rng.randrange(5_000)}", rng.choice(["admin", "user"]),
                 rng.choice(["prod", "staging"]), rng.choice(["gpt-4o", "claude", "llama"]),
                 rng.choice(["v1", "v2", "v3"]), "p", rng.choice(["1", "2"]),
                 1_700_000_000_000_000 + b * batch + i, doc)
                for i in range(batch)
            ],
        )
        conn.commit()
    return time.perf_counter() - start


def plans(rows: int) -> None:
    queries = [
        ("model_version = ?", ("no-such-version",)),
        ("model_version = ?", ("v2",)),
        ("environment = ? AND t.model_name = ?", ("staging", "no-such-model")),
    ]
    with tempfile.TemporaryDirectory() as scratch:
        for label, indexed in [("migration 12", False), ("migration 13", True)]:
            conn = open_table(os.path.join(scratch, f"{indexed}.db"), indexed)
            seconds = fill(conn, rows, 600)
            print(f"{label}: {rows} rows inserted in {seconds:.1f} s", flush=True)
            for condition, params in queries:
                sql = (f"SELECT seq, doc FROM traces t WHERE t.project_id = 1 AND t.{condition}"
                       " ORDER BY t.started_at DESC, t.seq DESC LIMIT 51")
                plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
                start = time.perf_counter()
                found = len(conn.execute(sql, params).fetchall())
                elapsed = (time.perf_counter() - start) * 1000
                print(f"  {condition} {params}: {found} rows, {elapsed:.1f} ms, plan {plan}")


def insert(label: str, rows: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        conn = open_table(os.path.join(scratch, "insert.db"), label == "indexed")
        fill(conn, rows, 1200)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "plans":
        plans(int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000)
    elif len(sys.argv) == 4 and sys.argv[1] == "insert" and sys.argv[2] in ("base", "indexed"):
        insert(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
