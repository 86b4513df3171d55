"""Records written before the layout change (tests/data/legacy: a results store and two run
folders written by the flat-module version, commit f61dabd, by `mlsbench eval` of a scripted
LLM agent and a baseline) still read, report, export and resume."""

import shutil
from pathlib import Path

import pytest
from rich.console import Console

from mlsbench_env.agent import saved_run
from mlsbench_env.analysis import render_terminal, report_from_store
from mlsbench_env.analysis.export import export
from mlsbench_env.analysis.trajectories import load_episode
from mlsbench_env.env.log import protocol_of, read_log
from mlsbench_env.scale.store import ResultsStore

LEGACY = Path(__file__).parent / "data" / "legacy"
RUNS = sorted((LEGACY / "runs").iterdir())


@pytest.fixture
def store(tmp_path):
    shutil.copy(LEGACY / "results.sqlite", tmp_path)  # opening a store may migrate it
    return ResultsStore(tmp_path / "results.sqlite")


def test_a_legacy_store_reads_and_reports(store):
    rows = store.episodes()
    by_agent = {r["agent"]: r for r in rows}
    assert set(by_agent) == {"scripted-perfect", "baseline:strongest"}
    assert by_agent["scripted-perfect"]["score"] == pytest.approx(100.0)
    assert by_agent["baseline:strongest"]["score"] == pytest.approx(50.0)
    assert by_agent["scripted-perfect"]["model_calls"] == 4
    assert {r["protocol"] for r in rows} == {"default"}  # stores from before presets
    console = Console(record=True, width=200)
    render_terminal(report_from_store(store), console)
    text = console.export_text()
    assert "scripted-perfect" in text and "baseline:strongest" in text


def test_legacy_trajectories_read_export_and_resume(tmp_path):
    for run in RUNS:
        records = read_log(run / "trajectory.jsonl")
        assert records[0]["type"] == "header" and records[0]["task"] == "guess"
        assert protocol_of(records[0]) == "default"
        end = next(r for r in records if r["type"] == "end")
        assert end["status"] == "submitted" and end["code"]["regions"]
        episode = load_episode(run)
        assert episode.records
    llm = next(r for r in RUNS if "scripted" in r.name)
    header, config = saved_run(llm)
    assert header["seed"] == 0 and config["name"] == "scripted-perfect"
    result = export(RUNS, tmp_path / "out", fmt="chat-jsonl")
    assert len(result.episodes) == 2 and not result.skipped
