"""The task's ``anchor`` mode: what scores 50 on each metric (the reference baseline, or the best
baseline on that metric as MLS-Bench anchors), and the shipped anchors still following from
their stored results under each task's mode."""

import dataclasses
import json

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from mlsbench_env.analysis.calibration import anchor_drift
from mlsbench_env.analysis.health import health, health_markdown
from mlsbench_env.cli import app
from mlsbench_env.cli.tasks import task_table
from mlsbench_env.scoring import compute_anchors, seed_mean, setting_score
from mlsbench_env.spec import TaskSpec, builtin_task_ids, load_task


def with_anchor(task, mode):
    return dataclasses.replace(task, spec=task.spec.model_copy(update={"anchor": mode}))


@pytest.fixture
def folding():
    # two metrics (recovery higher, bounded; perplexity lower, log); the made-up results below
    # name their reference pifold, so it is pinned here (the shipped task's is spin2)
    task = load_task("bio-inverse-folding")
    return dataclasses.replace(
        task, spec=task.spec.model_copy(update={"reference_baseline": "pifold"})
    )


def results_where_gnn_wins_recovery(task):
    """gnn is best on recovery, the reference pifold best on perplexity, on every setting."""
    per_seed = {
        "default": ([0.20, 0.21, 0.19], [12.0, 12.5, 11.5]),
        "gnn": ([0.45, 0.46, 0.44], [6.5, 6.6, 6.4]),
        "mpnn": ([0.25, 0.26, 0.24], [8.0, 8.1, 7.9]),
        "pifold": ([0.30, 0.31, 0.29], [6.0, 6.1, 5.9]),
    }
    return {
        name: {
            s.label: {"recovery": list(rec), "perplexity": list(ppl)} for s in task.spec.settings
        }
        for name, (rec, ppl) in per_seed.items()
    }


def metric_scores(task, anchors, results, name):
    """Each setting's per-metric scores of a baseline's seed means, as the final evaluation
    scores them."""
    out = {}
    for s in task.spec.settings:
        means = {m.name: seed_mean(results[name][s.label][m.name], m) for m in task.spec.metrics}
        out[s.label] = setting_score(task, s.label, means, None, {"anchors": anchors}).parts
    return out


def test_reference_mode_is_the_default_and_anchors_at_the_reference(folding):
    assert folding.spec.anchor == "reference"
    results = results_where_gnn_wins_recovery(folding)
    anchors = compute_anchors(folding, results)
    for s in folding.spec.settings:
        for m in folding.spec.metrics:
            assert anchors[s.label][m.name] == {
                "floor": seed_mean(results["default"][s.label][m.name], m),
                "reference": seed_mean(results["pifold"][s.label][m.name], m),
            }
    ref = metric_scores(folding, anchors, results, "pifold")
    gnn = metric_scores(folding, anchors, results, "gnn")
    for label in ref:
        assert ref[label] == pytest.approx({"recovery": 50.0, "perplexity": 50.0})
        assert gnn[label]["recovery"] > 50.0 > gnn[label]["perplexity"]


def test_best_mode_puts_50_at_the_best_baseline_of_each_metric(folding):
    best = with_anchor(folding, "best")
    results = results_where_gnn_wins_recovery(best)
    anchors = compute_anchors(best, results)
    ref = metric_scores(best, anchors, results, "pifold")
    gnn = metric_scores(best, anchors, results, "gnn")
    for label in ref:
        assert gnn[label]["recovery"] == pytest.approx(50.0)
        assert ref[label]["recovery"] < 50.0
        assert ref[label]["perplexity"] == pytest.approx(50.0)
        for name in results:  # nothing is above the best
            parts = metric_scores(best, anchors, results, name)[label]
            assert all(v <= 50.0 + 1e-9 for v in parts.values()), (name, parts)
    # the floor does not depend on the mode
    plain = compute_anchors(folding, results)
    for label, per_metric in anchors.items():
        for name, a in per_metric.items():
            assert a["floor"] == plain[label][name]["floor"]


def test_the_default_scaffold_is_never_the_best(folding):
    best = with_anchor(folding, "best")
    results = results_where_gnn_wins_recovery(best)
    for per_metric in results["default"].values():
        per_metric["perplexity"] = [1.5, 1.5, 1.5]  # far the best perplexity
    anchors = compute_anchors(best, results)
    for s in best.spec.settings:
        assert anchors[s.label]["perplexity"]["reference"] == pytest.approx(6.0, rel=0.01)


def test_the_health_check_measures_above_reference_against_its_score_in_best_mode(folding):
    best = with_anchor(folding, "best")
    results = results_where_gnn_wins_recovery(best)
    anchors = {
        "seeds": [0, 1, 2],
        "reference_baseline": "pifold",
        "anchor": "best",
        "results": results,
        "anchors": compute_anchors(best, results),
    }
    report = health(best, anchors)
    assert report.anchor == "best"
    ref = report.baseline("pifold").score
    assert ref < 50.0
    above = {b.name for b in report.baselines if b.name != "pifold" and b.score > ref}
    flagged = {f.baseline for f in report.failures if f.check == "above-reference"}
    assert flagged == above
    for b in report.baselines:
        assert b.score <= 50.0 + 1e-9
    for f in report.failures:
        if f.check == "above-reference":
            assert f"pifold's {ref:.1f}" in f.message and "anchor: best" in f.message
    # gnn wins recovery by far more than it loses on perplexity here: it is flagged
    assert "gnn" in flagged
    assert any(fl.startswith("above reference") for fl in report.baseline("gnn").flags)
    assert "scores above the reference (anchor: best" in " ".join(health_markdown(report).split())


def test_anchor_is_reference_or_best():
    # the shipped spec: the fixture's pinned reference is not one of its listed baselines
    data = load_task("bio-inverse-folding").spec.model_dump()
    assert TaskSpec.model_validate({**data, "anchor": "best"}).anchor == "best"
    with pytest.raises(ValidationError, match="anchor"):
        TaskSpec.model_validate({**data, "anchor": "median"})


@pytest.mark.parametrize("task_id", builtin_task_ids())
def test_shipped_anchors_follow_from_their_stored_results(task_id):
    """Recomputed from anchors.json's per-seed results under the task's mode, the anchors are
    the shipped ones (a hand edit, a changed mode or a changed rule shows here)."""
    task = load_task(task_id)
    shipped = task.anchors()
    assert shipped is not None
    recomputed = compute_anchors(task, shipped["results"])
    assert recomputed.keys() == shipped["anchors"].keys()
    for label, per_metric in recomputed.items():
        for name, a in per_metric.items():
            assert a == pytest.approx(shipped["anchors"][label][name], rel=1e-9), (label, name)
    assert anchor_drift(task, shipped) == []


def test_validate_reports_anchors_made_under_another_mode_or_edited():
    # UniPC beats the reference iPNDM on intra_fd of one setting (its README), so best differs
    task = load_task("diffusion-fixed-budget-sampler")
    shipped = task.anchors()
    best = with_anchor(task, "best")
    [problem] = anchor_drift(best, shipped)
    assert "made with anchor: reference" in problem and "says anchor: best" in problem
    stale = {**shipped, "anchor": "best"}  # labelled best, values still the reference's
    problems = anchor_drift(best, stale)
    assert problems and all("under anchor: best" in p for p in problems)
    assert any("intra_fd reference" in p for p in problems)
    edited = json.loads(json.dumps(shipped))
    label = task.spec.settings[0].label
    edited["anchors"][label]["sw2"]["floor"] *= 2
    [problem] = anchor_drift(task, edited)
    assert f"{label}/sw2 floor" in problem and "re-run `mlsbench calibrate" in problem


def test_list_says_each_tasks_anchor_mode():
    runner = CliRunner()
    rows = json.loads(runner.invoke(app, ["list", "--json"]).output)
    for row in rows:
        assert row["anchor"] == load_task(row["id"]).spec.anchor
    out = runner.invoke(app, ["list"]).output
    assert "(best: no task)" in " ".join(out.split())
    rows[0] = {**rows[0], "anchor": "best"}
    table = task_table(rows, 250)
    anchor_cells = list(next(c for c in table.columns if c.header == "anchor").cells)
    assert anchor_cells[0] == "best" and set(anchor_cells[1:]) == {"reference"}


def test_calibrate_records_the_mode_and_its_anchors_pass_validate(tmp_path_factory):
    from test_agent_fakes import tiny_task_once

    from mlsbench_env.analysis.calibration import validate

    task = tiny_task_once(tmp_path_factory)
    assert task.anchors()["anchor"] == "reference"
    assert anchor_drift(task, task.anchors()) == []
    assert not [p for p in validate(task, run=False) if p.startswith("anchors.json")]
