"""The results store: one SQLite file holding every episode of every evaluation.

One row per matrix cell (task x agent config x seed x env options), keyed by ``cell_key``, so a
cell can never be recorded twice; every try of a cell (including killed and retried ones) is a
row of ``attempts``; ``rescores`` keeps old vs new scores from ``mlsbench rescore``.

Safe under concurrent writers (several evaluations, or worker processes, on one machine): the
database runs in WAL mode, every write is one short ``BEGIN IMMEDIATE`` transaction with a busy
timeout, and a result never replaces a finished (``ok``) row: the first finished result of a cell
wins. The schema is versioned (``PRAGMA user_version``); a store written by a newer version is
refused with a message instead of being misread. SQLite needs a local file system: put the store
on a local disk, not on NFS (https://www.sqlite.org/faq.html#q5).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlsbench_env.errors import StoreError

SCHEMA_VERSION = 4
DEFAULT_PATH = "runs/results.sqlite"

# (name, SQL type); JSON columns hold dicts/lists and are decoded on read
EPISODE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("cell_key", "TEXT NOT NULL UNIQUE"),
    ("status", "TEXT NOT NULL"),  # ok | failed
    ("eval_id", "TEXT"),
    ("task", "TEXT NOT NULL"),
    ("task_version", "INTEGER"),
    ("domain", "TEXT"),
    ("task_kind", "TEXT"),  # research | competition
    ("agent", "TEXT NOT NULL"),  # the label reports show
    ("agent_hash", "TEXT NOT NULL"),
    ("agent_kind", "TEXT"),  # baseline | llm
    ("agent_source", "TEXT"),  # what the user named: baseline:strongest, agents/a.yaml
    ("agent_config", "JSON"),
    ("model", "TEXT"),
    ("seed", "INTEGER NOT NULL"),
    ("options", "JSON"),  # env options of the cell (final_seeds, budgets, sandbox)
    ("options_hash", "TEXT"),
    ("exit_status", "TEXT"),  # submitted | truncated | max_model_calls | ...
    ("score", "REAL"),  # final score 0..100, NULL when there is none
    ("score_reason", "TEXT"),  # why there is no score
    ("score_spread", "REAL"),
    ("vanilla_score", "REAL"),
    ("medal", "TEXT"),  # competitions: gold | silver | bronze against the baselines' leaderboard
    ("setting_scores", "JSON"),
    ("seed_scores", "JSON"),
    ("score_curve", "JSON"),  # [[step, visible-settings test score], ...]
    ("reward", "REAL"),
    ("steps", "INTEGER"),
    ("tests_used", "INTEGER"),
    ("model_calls", "INTEGER"),
    ("input_tokens", "INTEGER"),
    ("cached_input_tokens", "INTEGER"),
    ("output_tokens", "INTEGER"),
    ("tokens_estimated", "INTEGER"),
    ("cost_usd", "REAL"),
    ("wall_s", "REAL"),
    ("compute_s", "REAL"),
    ("tamper_events", "INTEGER"),
    ("tamper_report", "JSON"),
    ("task_hash", "TEXT"),
    ("anchors_hash", "TEXT"),
    ("sandbox", "TEXT"),
    ("protocol", "TEXT"),  # the protocol preset (env/protocol.py); NULL in old rows: default
    ("isolation", "TEXT"),  # the sandbox's: full | rootless | none
    ("agent_isolation", "TEXT"),  # around agent code in the task kit's child: landlock | uid | none
    ("image_digest", "TEXT"),
    ("versions", "JSON"),
    ("git_revision", "TEXT"),
    ("host", "TEXT"),
    ("executor", "TEXT"),
    ("trajectory", "TEXT"),
    ("attempts", "INTEGER"),
    ("error", "TEXT"),
    ("started", "REAL"),
    ("finished", "REAL"),
)
JSON_COLUMNS = {n for n, t in EPISODE_COLUMNS if t == "JSON"}
EPISODE_FIELDS = tuple(n for n, _ in EPISODE_COLUMNS)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS evals (
    eval_id TEXT PRIMARY KEY, started REAL, host TEXT, config JSON
);
CREATE TABLE IF NOT EXISTS episodes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{n} {t}" for n, t in EPISODE_COLUMNS)}
);
CREATE INDEX IF NOT EXISTS episodes_task_agent ON episodes (task, agent_hash);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cell_key TEXT NOT NULL, eval_id TEXT, attempt INTEGER, status TEXT, error TEXT,
    host TEXT, pid INTEGER, trajectory TEXT, started REAL, finished REAL
);
CREATE INDEX IF NOT EXISTS attempts_cell ON attempts (cell_key);
CREATE TABLE IF NOT EXISTS rescores (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cell_key TEXT, trajectory TEXT, time REAL, task TEXT, agent TEXT, seed INTEGER,
    old_score REAL, new_score REAL, new_spread REAL, setting_scores JSON, seeds JSON,
    task_hash_then TEXT, task_hash_now TEXT, anchors_hash_then TEXT, anchors_hash_now TEXT,
    error TEXT
);
"""


class ResultsStore:
    """A SQLite results store at ``path`` (created with its folder on first use)."""

    def __init__(self, path: str | Path = DEFAULT_PATH, *, timeout_s: float = 120.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout = timeout_s
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: results store schema {version} was written by a newer "
                    f"mlsbench-env (this one reads up to {SCHEMA_VERSION}); upgrade mlsbench-env "
                    "or use another --store"
                )
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            for v in range(version + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS.get(v, lambda db: None)(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # ------------------------------------------------------------------ connection
    def _connect(self) -> sqlite3.Connection:
        # a connection must not cross a fork: reopen in a child process
        if self._conn is None or self._pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.row_factory = sqlite3.Row
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _write(self):
        return _Transaction(self._connect())

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    # ------------------------------------------------------------------ writes
    def begin_eval(self, eval_id: str, config: dict) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO evals VALUES (?, ?, ?, ?)",
                (eval_id, time.time(), socket.gethostname(), json.dumps(config, default=str)),
            )

    def record_episode(self, row: dict[str, Any]) -> bool:
        """Insert or complete a cell's row. A finished (``ok``) row is never replaced; a
        ``failed`` one is replaced by a later result. Returns whether the row was written."""
        unknown = set(row) - set(EPISODE_FIELDS)
        if unknown:
            raise StoreError(f"unknown episode field(s) {sorted(unknown)}; known: {EPISODE_FIELDS}")
        names = [n for n in EPISODE_FIELDS if n in row]
        values = [_encode(n, row[n]) for n in names]
        updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != "cell_key")
        sql = (
            f"INSERT INTO episodes ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT(cell_key) DO UPDATE SET {updates} WHERE episodes.status != 'ok'"
        )
        with self._write() as db:
            return db.execute(sql, values).rowcount > 0

    def record_attempt(
        self,
        cell_key: str,
        attempt: int,
        status: str,
        *,
        eval_id: str | None = None,
        error: str | None = None,
        host: str | None = None,
        pid: int | None = None,
        trajectory: str | None = None,
        started: float | None = None,
        finished: float | None = None,
    ) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO attempts (cell_key, eval_id, attempt, status, error, host, pid, "
                "trajectory, started, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    cell_key,
                    eval_id,
                    attempt,
                    status,
                    error,
                    host or socket.gethostname(),
                    pid,
                    trajectory,
                    started,
                    finished or time.time(),
                ),
            )

    def record_rescore(self, row: dict[str, Any]) -> None:
        names = list(row)
        with self._write() as db:
            db.execute(
                f"INSERT INTO rescores ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                [json.dumps(v) if isinstance(v, dict | list) else v for v in row.values()],
            )

    # ------------------------------------------------------------------ reads
    def statuses(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        """``{cell_key: status}`` of the recorded cells (all, or those among ``keys``)."""
        rows = self._connect().execute("SELECT cell_key, status FROM episodes").fetchall()
        wanted = None if keys is None else set(keys)
        return {r[0]: r[1] for r in rows if wanted is None or r[0] in wanted}

    def episodes(
        self,
        *,
        status: str | None = "ok",
        tasks: Iterable[str] | None = None,
        agents: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Episode rows as dicts (JSON columns decoded), oldest first; ``agents`` matches the
        label or the config hash."""
        sql, args = "SELECT * FROM episodes", []
        if status is not None:
            sql += " WHERE status = ?"
            args.append(status)
        rows = [_decode(r) for r in self._connect().execute(sql + " ORDER BY id", args)]
        if tasks:
            wanted = set(tasks)
            rows = [r for r in rows if r["task"] in wanted]
        if agents:
            wanted = set(agents)
            rows = [r for r in rows if r["agent"] in wanted or r["agent_hash"] in wanted]
        return rows

    def attempts(self, cell_key: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM attempts", []
        if cell_key is not None:
            sql, args = sql + " WHERE cell_key = ?", [cell_key]
        return [dict(r) for r in self._connect().execute(sql + " ORDER BY id", args)]

    def rescores(self) -> list[dict[str, Any]]:
        rows = self._connect().execute("SELECT * FROM rescores ORDER BY id").fetchall()
        out = []
        for r in rows:
            d = dict(r)
            for k in ("setting_scores", "seeds"):
                d[k] = json.loads(d[k]) if d[k] else None
            out.append(d)
        return out

    def evals(self) -> list[dict[str, Any]]:
        rows = self._connect().execute("SELECT * FROM evals ORDER BY started").fetchall()
        return [{**dict(r), "config": json.loads(r["config"] or "{}")} for r in rows]

    def schema_version(self) -> int:
        return self._connect().execute("PRAGMA user_version").fetchone()[0]

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on an exception): takes the write lock at
    the start, so concurrent writers queue on the busy timeout instead of failing mid-way."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


# schema version -> function that upgrades a store from the previous version in place
def _add_kind_and_medal(db) -> None:
    have = {row[1] for row in db.execute("PRAGMA table_info(episodes)")}
    for name in ("task_kind", "medal"):
        if name not in have:
            db.execute(f"ALTER TABLE episodes ADD COLUMN {name} TEXT")


def _add_isolation(db) -> None:
    have = {row[1] for row in db.execute("PRAGMA table_info(episodes)")}
    for name in ("isolation", "agent_isolation"):
        if name not in have:
            db.execute(f"ALTER TABLE episodes ADD COLUMN {name} TEXT")


def _add_protocol(db) -> None:
    have = {row[1] for row in db.execute("PRAGMA table_info(episodes)")}
    if "protocol" not in have:
        db.execute("ALTER TABLE episodes ADD COLUMN protocol TEXT")


_MIGRATIONS: dict[int, Any] = {2: _add_kind_and_medal, 3: _add_isolation, 4: _add_protocol}


def _encode(name: str, value: Any) -> Any:
    if name in JSON_COLUMNS:
        return None if value is None else json.dumps(value, default=str)
    if isinstance(value, bool):
        return int(value)
    return value


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    if "protocol" in d and d["protocol"] is None:  # a row from before protocol presets
        d["protocol"] = "default"
    for k in JSON_COLUMNS:
        if d.get(k) is not None:
            d[k] = json.loads(d[k])
    return d
