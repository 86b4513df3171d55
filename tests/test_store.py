"""The SQLite results store: schema version, first finished result wins, concurrent writers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from mlsbench_env.errors import StoreError
from mlsbench_env.scale.store import SCHEMA_VERSION, ResultsStore


def row(key, status="ok", score=10.0, **kw):
    return {
        "cell_key": key,
        "status": status,
        "task": "t",
        "agent": "a",
        "agent_hash": "h",
        "seed": 0,
        "score": score,
        "setting_scores": {"s": score},
        **kw,
    }


def test_schema_is_versioned_and_a_newer_store_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    assert ResultsStore(path).schema_version() == SCHEMA_VERSION
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer mlsbench-env"):
        ResultsStore(path)


def test_rows_round_trip_with_json_columns(tmp_path):
    s = ResultsStore(tmp_path / "s.sqlite")
    assert s.record_episode(row("k1", tamper_report=[{"kind": "x"}], tokens_estimated=True))
    (r,) = s.episodes()
    assert r["setting_scores"] == {"s": 10.0} and r["tamper_report"] == [{"kind": "x"}]
    assert r["tokens_estimated"] == 1
    with pytest.raises(StoreError, match="unknown episode field"):
        s.record_episode({**row("k2"), "bogus": 1})


def test_first_finished_result_wins_and_a_failure_is_replaced(tmp_path):
    s = ResultsStore(tmp_path / "s.sqlite")
    s.record_episode(row("k", status="failed", score=None, error="boom"))
    assert s.statuses() == {"k": "failed"}
    assert s.record_episode(row("k", score=20.0))
    assert not s.record_episode(row("k", score=30.0))  # a second finished result: ignored
    assert not s.record_episode(row("k", status="failed", error="late"))
    (r,) = s.episodes(status=None)
    assert (r["status"], r["score"]) == ("ok", 20.0)


def test_concurrent_writers_lose_and_double_nothing(tmp_path):
    """Four processes write 40 rows each (half of the keys shared) and an attempt per write."""
    path = tmp_path / "s.sqlite"
    ResultsStore(path)
    code = textwrap.dedent(
        f"""
        import sys
        from mlsbench_env.scale.store import ResultsStore
        w = int(sys.argv[1])
        s = ResultsStore({str(path)!r})
        for i in range(40):
            key = f"shared-{{i}}" if i % 2 else f"w{{w}}-{{i}}"
            s.record_episode({{"cell_key": key, "status": "ok", "task": "t", "agent": "a",
                              "agent_hash": "h", "seed": i, "score": float(w)}})
            s.record_attempt(key, 1, "ok", pid=w)
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(w)]) for w in range(4)]
    assert [p.wait(120) for p in procs] == [0] * 4
    s = ResultsStore(path)
    rows = s.episodes()
    assert len(rows) == 4 * 20 + 20 and len({r["cell_key"] for r in rows}) == len(rows)
    assert len(s.attempts()) == 4 * 40
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_filters_and_rescores(tmp_path):
    s = ResultsStore(tmp_path / "s.sqlite")
    s.record_episode(row("k1"))
    s.record_episode({**row("k2"), "task": "u", "agent": "b", "agent_hash": "hb"})
    assert [r["cell_key"] for r in s.episodes(tasks=["u"])] == ["k2"]
    assert [r["cell_key"] for r in s.episodes(agents=["hb"])] == ["k2"]
    s.record_rescore({"cell_key": "k1", "old_score": 1.0, "new_score": 2.0, "seeds": [0]})
    assert s.rescores()[0]["seeds"] == [0]
