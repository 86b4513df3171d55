"""MLS-Bench's records: the per-task leaderboard CSVs written from real runs and read back into
the same scores, their columns and rows, the area mapping, the overall mean over areas, and the
mlsbench-lite-overlap suite."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import pytest
from test_matrix import PERFECT, config, make_guess_task, scripted_agent  # tests/ is on sys.path
from typer.testing import CliRunner

from mlsbench_env.analysis.calibration import calibrate, write_anchors
from mlsbench_env.analysis.mlsbench_format import (
    AREAS,
    DOMAIN_AREAS,
    FIXED,
    OURS,
    TASK_AREAS,
    area_means,
    area_of,
    final_scores,
    read_leaderboard,
    task_table,
    write_mlsbench,
    write_task_csv,
)
from mlsbench_env.cli import app
from mlsbench_env.errors import MLSBenchError
from mlsbench_env.evaluation import SettingRun
from mlsbench_env.scale.matrix import load_suite, resolve_tasks, run_eval
from mlsbench_env.scale.store import ResultsStore
from mlsbench_env.scoring import score_runs
from mlsbench_env.spec import builtin_task_ids, load_task

ROOT = Path(__file__).resolve().parent.parent


def metric_cols(task) -> list[str]:
    return [f"{m.name}_{s.label}" for s in task.spec.settings for m in task.spec.metrics]


def runs_of(task, rows) -> list[SettingRun]:
    """The setting runs a leaderboard's per-seed rows describe."""
    return [
        SettingRun(
            s.label, r["seed"], {m.name: r[f"{m.name}_{s.label}"] for m in task.spec.metrics}, None
        )
        for r in rows
        for s in task.spec.settings
    ]


def check_mean_rows(table: list[dict], cols: list[str]) -> int:
    """Every seed=mean row is the mean (and sample std) of the seed rows before it."""
    checked, group, key = 0, [], None
    for r in table:
        if r["seed"] != "mean":
            if group and (r["model"], r["test"], r["episode"]) != key:
                group = []
            key = (r["model"], r["test"], r["episode"])
            group.append(r)
            continue
        assert (r["model"], r["test"], r["episode"]) == key and len(group) >= 2
        for c in cols:
            vals = [g[c] for g in group if g[c] is not None]
            if vals:
                assert r[c] == pytest.approx(statistics.fmean(vals), rel=1e-12)
                assert r[f"{c}_std"] == pytest.approx(statistics.stdev(vals), rel=1e-9, abs=1e-12)
        checked, group = checked + 1, []
    return checked


# --------------------------------------------------------------------------- areas
def test_every_shipped_task_maps_to_one_of_the_12_areas():
    assert len(AREAS) == 12 == len(set(AREAS))
    assert set(DOMAIN_AREAS.values()) | set(TASK_AREAS.values()) <= set(AREAS)
    for tid in builtin_task_ids():
        try:
            task = load_task(tid)
        except MLSBenchError:
            continue  # a task still being written
        assert area_of(tid, task.spec.domain) in AREAS, tid
        assert task.spec.domain in DOMAIN_AREAS, f"{tid}: map domain {task.spec.domain!r}"
    with pytest.raises(MLSBenchError, match="domain 'toy' has no MLS-Bench area; add it"):
        area_of("guess", "toy")


def test_overall_is_the_mean_over_areas_not_over_tasks():
    scores = {
        "lm-a": ("language-models", 30.0),
        "lm-b": ("language-models", 50.0),
        "comp-text": ("text", 70.0),  # Language Models too
        "causal": ("causal-discovery", 10.0),
        "diffusion-prior-inverse-solver": ("generative-models", 20.0),  # AI for Science
        "climate": ("climate-emulation", 60.0),
    }
    m = area_means(scores)
    by_hand = {"Language Models": 50.0, "Causal Reasoning": 10.0, "AI for Science": 40.0}
    assert m["areas"] == pytest.approx(by_hand)
    assert m["overall"] == pytest.approx((50 + 10 + 40) / 3)  # 33.3, where tasks average 40
    assert m["tasks"] == 6
    assert area_means({})["overall"] is None


# --------------------------------------------------------------------------- calibration rows
def test_baseline_and_vanilla_rows_of_a_shipped_calibration_round_trip(tmp_path):
    """causal-discovery-discrete's stored calibration: one row per baseline and seed, the
    unchanged scaffold as `vanilla`, mean rows over seeds, read back into the same results
    and the same scores."""
    task = load_task("causal-discovery-discrete")
    anchors = task.anchors()
    cols, table = task_table(task, [], {})
    path = write_task_csv(tmp_path / "t.csv", cols, table)
    assert next(csv.reader(path.open())) == cols
    assert cols[:4] == list(FIXED) and cols[-4:] == list(OURS)
    metrics = metric_cols(task)
    assert cols[4:-4] == metrics + [f"{c}_std" for c in metrics] + [
        f"elapsed_{s.label}" for s in task.spec.settings
    ]
    rows = read_leaderboard(path)
    models = {r["model"] for r in rows}
    names = [n for n in anchors["results"] if n != "default"]
    assert models == {"vanilla", *(f"baseline:{n}" for n in names)}
    assert check_mean_rows(rows, metrics) == len(anchors["results"])
    for name, per_setting in anchors["results"].items():
        model = "vanilla" if name == "default" else f"baseline:{name}"
        mine = [r for r in rows if r["model"] == model and r["seed"] != "mean"]
        assert [r["seed"] for r in mine] == anchors["seeds"] and all(r["is_final"] for r in mine)
        for i, r in enumerate(mine):
            for label, per_metric in per_setting.items():
                for m, values in per_metric.items():
                    assert r[f"{m}_{label}"] == values[i]  # exact: floats written by repr
        (mean,) = [r for r in rows if r["model"] == model and r["seed"] == "mean"]
        assert mean["score"] == pytest.approx(score_runs(task, runs_of(task, mine), anchors).score)
    ref = next(r for r in rows if r["model"] == f"baseline:{task.spec.reference_baseline}")
    assert ref["seed"] != "mean"
    means = {r["model"]: r["score"] for r in rows if r["seed"] == "mean"}
    assert means[f"baseline:{task.spec.reference_baseline}"] == pytest.approx(50.0, abs=1e-6)
    assert means["vanilla"] < 5


def test_the_reader_says_what_a_file_that_is_not_a_leaderboard_lacks(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(MLSBenchError, match="not an MLS-Bench leaderboard"):
        read_leaderboard(tmp_path / "x.csv")


# --------------------------------------------------------------------------- suite
def test_lite_overlap_suite_names_shipped_tasks_and_resolves(tmp_path):
    suite = load_suite("mlsbench-lite-overlap")
    assert suite == [
        "causal-discovery-discrete",
        "splat-densification",
        "diffusion-prior-inverse-solver",
        "lm-quantization-aware-training",
    ]
    for tid in suite:
        load_task(tid)
    assert resolve_tasks(["mlsbench-lite-overlap"]) == (suite, [])
    r = CliRunner().invoke(
        app,
        ["eval", "--tasks", "mlsbench-lite-overlap", "--agents", "baseline:strongest"]
        + ["--store", str(tmp_path / "s.sqlite"), "--dry-run"],
        terminal_width=200,
    )
    assert r.exit_code == 0, r.output
    assert "4 cells: 4 tasks x 1 agents x 1 seeds" in r.output


# --------------------------------------------------------------------------- real runs
TWO_TESTS = [PERFECT[2], PERFECT[1], PERFECT[2], PERFECT[3]]  # the scaffold, then `return x`


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A small real task (causal-discovery domain), calibrated for real, then played by a
    scripted agent (two tests) and the strongest baseline over two final seeds."""
    tmp = tmp_path_factory.mktemp("mlsbench")
    task = make_guess_task(tmp / "tasks", domain="causal-discovery")
    anchors, _ = calibrate(task)
    write_anchors(task, anchors)
    task = load_task(task.root)
    agents = [scripted_agent(tmp / "two.yaml", "two-tests", TWO_TESTS), "baseline:strongest"]
    cfg = config(tmp, [task], agents, env={"final_seeds": [0, 1]})
    assert run_eval(cfg).failed == 0
    rows = ResultsStore(cfg.store).episodes(status="ok")
    result = write_mlsbench(rows, tmp / "out", {"guess": task})
    return task, rows, result, tmp, cfg.store


@pytest.mark.slow
def test_leaderboard_written_from_a_real_run_reads_back_into_the_same_scores(real_run):
    task, store_rows, result, tmp, _ = real_run
    assert result["warnings"] == []
    rows = read_leaderboard(tmp / "out" / "guess.csv")
    got = final_scores(rows)
    want = {(r["agent"], str(r["seed"])): r["score"] for r in store_rows}
    assert got.keys() == want.keys() and got == pytest.approx(want)
    anchors = task.anchors()
    for (model, episode), score in want.items():
        finals = [
            r
            for r in rows
            if (r["model"], r["episode"], r["test"]) == (model, episode, "final")
            and r["seed"] != "mean"
        ]
        assert [r["seed"] for r in finals] == [0, 1]
        assert all(r[f"elapsed_{s.label}"] > 0 for r in finals for s in task.spec.settings)
        # the metrics read back score as the store recorded
        assert score_runs(task, runs_of(task, finals), anchors).score == pytest.approx(score)
    for r in store_rows:  # each test's row: the test's score, as the store's score curve
        tests = [
            x
            for x in rows
            if x["model"] == r["agent"] and isinstance(x["test"], int) and x["seed"] != "mean"
        ]
        assert [x["score"] for x in tests] == pytest.approx([s for _, s in r["score_curve"]])
        # a test records each run's wall time: its elapsed column of every visible setting
        visible = [s.label for s in task.visible_settings]
        assert all(x[f"elapsed_{label}"] > 0 for x in tests for label in visible)
        assert all(x["is_final"] is False and x["seed"] == task.spec.seeds.dev for x in tests)
        hidden = [s.label for s in task.spec.settings if s.hidden]
        assert all(x[f"error_{h}"] is None for x in tests for h in hidden)


@pytest.mark.slow
def test_real_leaderboard_has_the_columns_baseline_vanilla_and_mean_rows(real_run):
    task, _, result, tmp, _ = real_run
    path = tmp / "out" / "guess.csv"
    cols = next(csv.reader(path.open()))
    metrics = metric_cols(task)
    assert cols == [
        *FIXED,
        *metrics,
        *(f"{c}_std" for c in metrics),
        *(f"elapsed_{s.label}" for s in task.spec.settings),
        *OURS,
    ]
    rows = read_leaderboard(path)
    models = {r["model"] for r in rows}
    assert {"vanilla", "baseline:good", "vanilla:two-tests", "two-tests"} <= models
    vanilla = [r for r in rows if r["model"] == "vanilla" and r["seed"] != "mean"]
    assert [r["error_one"] for r in vanilla] == [1.0, 1.0]  # the scaffold returns 0, x = 1
    first = [r for r in rows if r["model"] == "two-tests" and r["test"] == 1]
    copy = [r for r in rows if r["model"] == "vanilla:two-tests"]
    assert [r["score"] for r in copy] == [r["score"] for r in first] == [0.0]
    assert [r["error_one"] for r in copy] == [r["error_one"] for r in first]
    assert all(r["is_final"] for r in copy)
    # final evaluations (2 agents) and calibration (2 baselines) have two seeds each
    assert check_mean_rows(rows, metrics) == 4
    (overall,) = [r for r in result["overall"] if r["agent"] == "two-tests"]
    assert overall["overall"] == pytest.approx(100.0) and overall["areas"] == 1
    assert overall["Causal Reasoning"] == pytest.approx(100.0)
    with (tmp / "out" / "overall.csv").open() as f:
        written = {r["agent"]: r for r in csv.DictReader(f)}
    assert float(written["baseline:strongest"]["overall"]) == pytest.approx(50.0)
    assert math.isclose(float(written["two-tests"]["Causal Reasoning"]), 100.0, rel_tol=1e-9)


@pytest.mark.slow
def test_report_format_mlsbench_prints_the_area_mean_and_writes_the_files(real_run, tmp_path):
    _, _, _, _, store = real_run
    out = tmp_path / "mls"
    r = CliRunner().invoke(
        app, ["report", "--format", "mlsbench", "--store", store, str(out)], terminal_width=200
    )
    assert r.exit_code == 0, r.output
    assert "overall (1 areas, 1 tasks)" in r.output and "Causal Reasoning" in r.output
    assert "two-tests" in r.output and "100.0" in r.output
    assert (out / "guess.csv").is_file() and (out / "overall.csv").is_file()
    assert "guess: does not load" in r.output  # a task folder, not shipped: no baseline rows
    r = CliRunner().invoke(app, ["report", "--format", "mlsbench", "--store", store])
    assert r.exit_code != 0 and "give a folder" in r.output
