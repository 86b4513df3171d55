"""Calibration drift: the tiny task replayed against its own anchors, and against anchors edited
so the distance in seed spreads is known by hand."""

from __future__ import annotations

import json
import math
import shutil
import statistics

import pytest
from rich.console import Console
from test_agent_fakes import tiny_task_once
from test_report import rows
from typer.testing import CliRunner

from mlsbench_env.analysis.calibration import machine
from mlsbench_env.analysis.drift import (
    WARN_SPREADS,
    DriftReport,
    ValueDrift,
    check_drift,
    drift_path,
    load_drift,
    save_drift,
)
from mlsbench_env.analysis.health import health
from mlsbench_env.analysis.render import render_terminal
from mlsbench_env.analysis.report import build_report
from mlsbench_env.cli import app
from mlsbench_env.scale.store import ResultsStore
from mlsbench_env.scoring import combine_settings, compute_anchors, setting_score
from mlsbench_env.spec import load_task


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_task_once(tmp_path_factory)


@pytest.fixture
def edited(tiny, tmp_path):
    """A copy of the tiny task whose anchors hold two seeds: the reference `good` on setting
    one at 0.3 and 0.5 (it replays at 0.2 on seed 0), the default on setting one at 1.5 and
    1.6 (it replays at 1.0); every other value twice, as calibrated."""
    root = shutil.copytree(tiny.root, tmp_path / tiny.root.name)
    anchors = json.loads((root / "anchors.json").read_text())
    anchors["seeds"] = [0, 1]
    for per_setting in anchors["results"].values():
        for per_metric in per_setting.values():
            for name, values in per_metric.items():
                per_metric[name] = values * 2
    anchors["results"]["good"]["one"]["error"] = [0.3, 0.5]
    anchors["results"]["default"]["one"]["error"] = [1.5, 1.6]
    task = load_task(root)
    anchors["anchors"] = compute_anchors(task, anchors["results"])  # validate checks they follow
    (root / "anchors.json").write_text(json.dumps(anchors))
    return task


def test_the_replay_of_a_fresh_calibration_is_exact(tiny):
    drift = check_drift(tiny)
    assert drift.seed == 0 and [b.name for b in drift.baselines] == ["good", "default"]
    for b in drift.baselines:
        assert b.score.exact and all(m.exact for m in b.metrics) and not b.errors
        assert {m.what for m in b.metrics} == {"one/error", "two/error", "three/error"}
    assert drift.max_spreads == 0.0 and not drift.drifted
    cpu = sum(b.cpu_s for b in drift.baselines)
    assert drift.summary() == (
        "tiny-guess seed 0: good: task score exact, every metric exact; "
        f"default: task score exact, every metric exact; replay {cpu:.0f} CPU-s"
    )
    # the calibration's cost from the replay: 2 baselines x 3 settings replayed, the anchors
    # hold every method's runs (methods x 3 settings x their seeds)
    assert all(b.cpu_s > 0 for b in drift.baselines)
    methods, seeds = len(tiny.anchors()["results"]), len(tiny.anchors()["seeds"])
    assert [b.runs for b in drift.baselines] == [3, 3]
    assert drift.calibration_runs == methods * 3 * seeds
    assert drift.calibration_cpu_s == pytest.approx(cpu / 6 * methods * 3 * seeds)


def test_edited_anchors_give_the_distance_in_seed_spreads(edited):
    anchors = edited.anchors()
    drift = check_drift(edited)
    good, default = drift.baselines
    one = next(m for m in good.metrics if m.what == "one/error")
    assert one.anchored == 0.3 and one.replayed == pytest.approx(0.2)
    assert one.spread == pytest.approx(statistics.stdev([0.3, 0.5]))
    assert one.spreads == pytest.approx((0.2 - 0.3) / statistics.stdev([0.3, 0.5]))
    assert all(m.exact for m in good.metrics if m.what != "one/error")
    worst = default.worst_metric
    assert worst.what == "one/error"
    assert worst.spreads == pytest.approx((1.0 - 1.5) / statistics.stdev([1.5, 1.6]))  # -7.07
    # the task score of seed 0 against the one the health check computes from the anchors
    seed_scores = health(edited, anchors).baseline("good").seed_scores
    assert good.score.anchored == seed_scores[0] and not good.score.exact
    replayed = {"one": 0.2, "two": 0.4, "three": 0.6}  # 0.8 x against x
    by_hand = combine_settings(
        {k: setting_score(edited, k, {"error": v}, None, anchors) for k, v in replayed.items()}
    )
    assert good.score.replayed == pytest.approx(by_hand.points)
    assert good.score.spreads == pytest.approx(
        (by_hand.points - seed_scores[0]) / statistics.stdev(seed_scores)
    )
    every = [v.spreads for b in drift.baselines for v in (b.score, *b.metrics)]
    assert drift.max_spreads == pytest.approx(max(abs(x) for x in every))
    assert drift.drifted and drift.max_spreads > WARN_SPREADS
    assert "worst one/error 1 vs 1.5 (-7.1 spreads)" in drift.summary()


def test_a_change_off_a_spread_of_zero_is_infinitely_many_spreads():
    v = ValueDrift("one/error", 0.25, 0.2, 0.0)
    assert v.spreads == -math.inf and v.describe() == "0.2 vs 0.25 (-inf spreads)"
    assert ValueDrift("x", 1.0, None, 0.5).spreads == math.inf
    assert ValueDrift("x", 1.0, None, 0.5).describe() == "replay failed"
    assert math.isnan(ValueDrift("x", math.nan, 1.0, 0.5).spreads)


def test_calibration_records_the_machine_and_old_anchors_still_check(tiny, edited):
    written = json.loads((tiny.root / "anchors.json").read_text())["machine"]
    assert written == machine("local")
    assert set(written) == {"cpu", "cores", "blas", "platform", "sandbox"}
    assert written["cpu"] and written["cores"] >= 1 and written["blas"].get("numpy")
    anchors = edited.anchors()
    del anchors["machine"]  # anchors.json written before the record existed
    drift = check_drift(edited, anchors=anchors)
    assert drift.calibrated_on is None
    assert drift.summary().endswith("(anchors.json does not say which machine calibrated it)")
    other = {**written, "cpu": "Other CPU", "blas": {"internal_api": "mkl"}}
    moved = DriftReport(drift.task, drift.seed, drift.baselines, other, written)
    assert "(calibrated on Other CPU, mkl, replayed on " in moved.summary()


def three_final_seeds(task, dest):
    """A copy of ``task`` that `validate` runs (it needs 3+ final seeds); same anchors."""
    root = shutil.copytree(task.root, dest / task.root.name)
    spec = (root / "task.yaml").read_text()
    (root / "task.yaml").write_text(spec.replace("final: [0]", "final: [0, 1, 2]"))
    return root


def test_validate_prints_the_drift_as_a_warning_not_a_failure(tiny, edited, tmp_path):
    root = three_final_seeds(tiny, tmp_path / "fresh")
    r = CliRunner().invoke(app, ["validate", str(root)], terminal_width=400)
    assert "drift: tiny-guess seed 0: good: task score exact" in r.output, r.output
    assert "calibration CPU, estimated from the replay:" in r.output
    assert "calibration drift of" not in r.output
    root = three_final_seeds(edited, tmp_path / "edited")
    r = CliRunner().invoke(app, ["validate", str(root)], terminal_width=400)
    assert "-7.1 spreads" in r.output, r.output
    expected = f"warning: calibration drift of {check_drift(edited).max_spreads:.1f} seed spreads"
    assert expected + " (beyond 3)" in r.output
    assert "problem: calibration drift" not in r.output
    r = CliRunner().invoke(app, ["validate", "--no-run", str(root)], terminal_width=400)
    assert "drift" not in r.output


def test_drift_saved_beside_the_store_is_printed_by_the_report(edited, tmp_path):
    store_path = tmp_path / "results.sqlite"
    drift = check_drift(edited)
    drift = DriftReport("t1", drift.seed, drift.baselines, drift.calibrated_on, drift.replayed_on)
    assert save_drift(store_path, [drift]) == tmp_path / "results.drift.json"
    assert drift_path(store_path).is_file()
    assert load_drift(store_path)["t1"].summary() == drift.summary()
    store = ResultsStore(store_path)
    for row in rows():
        store.record_episode(row)
    r = CliRunner().invoke(
        app, ["report", "--store", str(store_path), "--out", str(tmp_path / "out")]
    )
    assert r.exit_code == 0, r.output
    assert "calibration drift: t1 seed 0: good: task score" in r.output
    saved = json.loads((tmp_path / "out" / "report.json").read_text())["drift"]
    assert saved == {"t1": drift.summary()}
    report = build_report(rows())
    report.drift = {"t2": "t2 seed 0: good: task score exact"}
    console = Console(record=True, width=200)
    render_terminal(report, console)
    assert "calibration drift: t2 seed 0: good: task score exact" in console.export_text()


def test_eval_checks_the_drift_first_when_asked(edited, tmp_path):
    store = tmp_path / "results.sqlite"
    args = [
        "eval",
        "--agents",
        "baseline:default",
        "--tasks",
        str(edited.root),
        "--store",
        str(store),
    ]
    args += ["--runs-dir", str(tmp_path / "runs")]
    r = CliRunner().invoke(app, [*args, "--check-drift"], terminal_width=400)
    assert r.exit_code == 0, r.output
    assert r.output.index("calibration drift of tiny-guess") < r.output.index("eval ")
    expected = f"warning: calibration drift of {check_drift(edited).max_spreads:.1f} seed spreads"
    assert expected in r.output
    assert load_drift(store)["tiny-guess"].drifted
    drift_path(store).unlink()
    r = CliRunner().invoke(app, args, terminal_width=400)
    assert "calibration drift" not in r.output and not drift_path(store).exists()
