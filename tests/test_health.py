"""The calibration health check against hand computations from shipped anchors.json files."""

import copy
import math
import statistics

import pytest

from mlsbench_env.analysis.health import (
    health,
    health_markdown,
    paired_gap_se,
    with_health_section,
)
from mlsbench_env.scoring import combine_settings, compute_anchors, seed_mean, setting_score
from mlsbench_env.spec import load_task


def seed_task_scores(task, anchors, name):
    """By hand: each seed's metrics scored per setting, then combined over settings."""
    results = anchors["results"][name]
    out = []
    for i, _ in enumerate(anchors["seeds"]):
        scores = {
            s.label: setting_score(
                task,
                s.label,
                {m.name: results[s.label][m.name][i] for m in task.spec.metrics},
                None,
                anchors,
            )
            for s in task.spec.settings
        }
        out.append(combine_settings(scores).points)
    return out


def official_score(task, anchors, name):
    """By hand: the seed means of each metric scored (the number of the README tables)."""
    results = anchors["results"][name]
    scores = {
        s.label: setting_score(
            task,
            s.label,
            {m.name: seed_mean(results[s.label][m.name], m) for m in task.spec.metrics},
            None,
            anchors,
        )
        for s in task.spec.settings
    }
    return combine_settings(scores).points


@pytest.mark.parametrize(
    "task_id", ["bio-inverse-folding", "lm-quantization-aware-training", "graph-homophily-filter"]
)
def test_numbers_match_a_hand_computation(task_id):
    task = load_task(task_id)
    anchors = task.anchors()
    report = health(task)
    n = len(anchors["seeds"])
    assert [b.name for b in report.baselines] == sorted(
        anchors["results"], key=lambda b: -statistics.mean(seed_task_scores(task, anchors, b))
    )
    for b in report.baselines:
        per_seed = seed_task_scores(task, anchors, b.name)
        assert b.seed_scores == pytest.approx(per_seed, abs=1e-9)
        assert b.task.mean == pytest.approx(statistics.mean(per_seed), abs=1e-9)
        assert b.task.se == pytest.approx(statistics.stdev(per_seed) / math.sqrt(n), abs=1e-9)
        assert b.score == pytest.approx(official_score(task, anchors, b.name), abs=1e-9)
        if b.next is not None:
            d = [
                x - y
                for x, y in zip(per_seed, seed_task_scores(task, anchors, b.next), strict=True)
            ]
            want = statistics.mean(d) / (statistics.stdev(d) / math.sqrt(n))
            assert b.gap_se == pytest.approx(want, rel=1e-9)
    assert report.baseline(report.reference).score == pytest.approx(50.0)
    ref = seed_task_scores(task, anchors, report.reference)
    for name, gap in report.separation_se.items():
        d = [x - y for x, y in zip(ref, seed_task_scores(task, anchors, name), strict=True)]
        assert gap == pytest.approx(statistics.mean(d) / (statistics.stdev(d) / math.sqrt(n)))


def test_a_setting_estimate_matches_a_hand_computation():
    task = load_task("bio-inverse-folding")
    anchors = task.anchors()
    label = task.spec.settings[-1].label
    results = anchors["results"][task.spec.reference_baseline][label]
    per_seed = [
        setting_score(
            task, label, {m.name: results[m.name][i] for m in task.spec.metrics}, None, anchors
        ).points
        for i in range(len(anchors["seeds"]))
    ]
    est = health(task).baseline(task.spec.reference_baseline).settings[label]
    assert est.mean == pytest.approx(statistics.mean(per_seed))
    assert est.se == pytest.approx(statistics.stdev(per_seed) / math.sqrt(len(per_seed)))


def tied_copy(task_id):
    """A shipped task's anchors.json altered, in memory, so that its runner-up ties the
    reference seed for seed (its per-seed results a copy of the reference's)."""
    task = load_task(task_id)
    shipped = health(task)
    tied = copy.deepcopy(task.anchors())
    tied["results"][shipped.runner_up] = copy.deepcopy(tied["results"][shipped.reference])
    tied["anchors"] = compute_anchors(task, tied["results"])
    return task, tied, shipped.runner_up


def test_a_shipped_calibration_altered_to_tie_fails():
    task, tied, twin = tied_copy("splat-densification")
    assert health(task).passed  # as shipped it ranks
    report = health(task, tied)
    assert report.runner_up == twin
    assert report.separation_se[twin] == 0.0
    assert {(f.check, f.baseline) for f in report.failures} == {("separation", twin)}
    assert not report.passed


def test_the_readme_health_section_is_the_shipped_anchors_own():
    task = load_task("splat-densification")
    readme = (task.root / "README.md").read_text()
    assert with_health_section(readme, health_markdown(health(task))) == readme


def constructed(task, results):
    """An anchors.json as `mlsbench calibrate` writes it, from made-up per-seed results."""
    return {
        "seeds": [0, 1, 2],
        "reference_baseline": task.spec.reference_baseline,
        "results": results,
        "anchors": compute_anchors(task, results),
    }


def per_setting(task, values):
    return {s.label: {"accuracy": list(values)} for s in task.spec.settings}


def health_of(task, results: dict[str, list[float]]):
    """The health report of constructed anchors: each baseline's task score per seed."""
    return health(task, constructed(task, {n: per_setting(task, v) for n, v in results.items()}))


@pytest.fixture
def graph():
    return load_task("graph-homophily-filter")  # one metric: accuracy, higher, bound 100


def test_a_clean_calibration_passes(graph):
    ref = graph.spec.reference_baseline
    report = health_of(
        graph,
        {
            "default": [40.0, 42.0, 41.0],
            "other": [60.0, 61.5, 60.5],
            ref: [70.0, 71.0, 72.0],
        },
    )
    assert report.passed, report.failures
    assert report.runner_up == "other"
    assert [b.name for b in report.baselines] == [ref, "other", "default"]
    assert report.smallest_separation_se >= 2


def test_two_tied_baselines_are_flagged(graph):
    ref = graph.spec.reference_baseline
    same = [70.0, 71.0, 72.0]
    report = health_of(
        graph,
        {
            "default": [40.0, 42.0, 41.0],
            "twin": same,
            ref: same,
        },
    )
    assert not report.passed
    assert report.separation_se["twin"] == 0.0
    assert [(f.check, f.baseline) for f in report.failures] == [("separation", "twin")]
    assert "twin" in report.failures[0].message and "fewer than 2" in report.failures[0].message
    assert report.baseline("twin").flags == ("0.0 s.e. from reference",)


def test_a_baseline_above_the_reference_is_flagged(graph):
    ref = graph.spec.reference_baseline
    report = health_of(
        graph,
        {
            "default": [40.0, 42.0, 41.0],
            "strong": [74.0, 76.0, 75.5],
            "weak": [55.0, 56.0, 54.0],
            ref: [70.0, 71.0, 72.0],
        },
    )
    strong = report.baseline("strong")
    assert strong.score > 50
    assert ("above-reference", "strong") in {(f.check, f.baseline) for f in report.failures}
    assert any(f.startswith("above 50") for f in strong.flags)
    assert report.baseline(ref).score == pytest.approx(50.0)
    assert not any(f.baseline == ref for f in report.failures)


def test_a_failed_seed_scores_zero_on_its_setting(graph):
    ref = graph.spec.reference_baseline
    results = {
        "default": per_setting(graph, [40.0, 42.0, 41.0]),
        ref: per_setting(graph, [70.0, 71.0, 72.0]),
    }
    anchors = constructed(graph, results)
    broken = copy.deepcopy(anchors)
    first = graph.spec.settings[0].label
    broken["results"][ref][first]["accuracy"][1] = math.nan
    report = health(graph, broken)
    ok = health(graph, anchors)
    assert report.baseline(ref).seed_scores[1] < ok.baseline(ref).seed_scores[1]
    fine = [
        setting_score(graph, first, {"accuracy": v}, None, anchors).points for v in (70.0, 72.0)
    ]
    assert report.baseline(ref).settings[first].mean == pytest.approx(sum(fine) / 3, abs=1e-9)


def test_paired_gap_edges():
    assert paired_gap_se([2.0, 3.0, 4.0], [1.0, 2.0, 3.0]) == math.inf
    assert paired_gap_se([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert math.isnan(paired_gap_se([1.0], [0.0]))
    with pytest.raises(ValueError, match="same seeds"):
        paired_gap_se([1.0, 2.0], [1.0])


def test_markdown_has_the_columns_and_the_verdict():
    task, tied, _ = tied_copy("splat-densification")
    text = health_markdown(health(task, tied))
    assert "| baseline | score | mean | s.e. | gap to next (s.e.) | flag |" in text
    assert f"| {task.spec.reference_baseline} (reference) | 50.0 |" in text
    assert "Failed:" in text and "fewer than 2" in text
    passing = health_markdown(health(task))
    assert "Passed: the smallest separation is" in passing and "Failed:" not in passing


README = """# t

## Calibration
table

```
## not a heading
```

## Runtime
fast
"""


def test_the_readme_section_is_added_after_calibration_and_then_replaced():
    once = with_health_section(README, "first\n")
    assert once == README.replace("## Runtime", "## Calibration health\n\nfirst\n\n## Runtime")
    twice = with_health_section(once, "second\n")
    assert twice == README.replace("## Runtime", "## Calibration health\n\nsecond\n\n## Runtime")
    last = with_health_section("# t\n\nintro", "x\n")
    assert last == "# t\n\nintro\n\n## Calibration health\n\nx\n"
    assert with_health_section(last, "y\n") == "# t\n\nintro\n\n## Calibration health\n\ny\n"
