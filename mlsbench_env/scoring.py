"""Scoring: the one place where metrics become points. Every number the env shows comes from here.

Per metric, against the task's anchors (``anchors.json``, written by ``mlsbench calibrate``):
values are first put on a "higher is better" axis ``u`` (log10 if the metric says so, negated
for lower-is-better metrics); then

- floor F = the worst of the default scaffold and the baselines (mean over seeds) -> 0 points,
- reference R = the task's reference (strongest) baseline -> 50 points; under the task's
  ``anchor: best``, the best baseline on that metric and setting instead (MLS-Bench's rule),
- bound B = the metric's known best value, where it has one -> 100 points.

Bounded metrics follow a power curve through the three points, ``100 * ((u-F)/(B-F))**g`` with
``g = log(0.5) / log((R-F)/(B-F))``; unbounded metrics a logistic curve through F -> 0 and
R -> 50, which is ``100 * tanh(ln(3)/2 * (u-F)/(R-F))``. Below the floor: 0.

A setting's score is the weighted mean of its metrics' scores; a failed setting scores 0. The
task score is the **shifted geometric mean** over settings, ``exp(mean(log(s + 1))) - 1``: the
+1 shift is how zeros enter it, so one collapsed setting drags the score far down (a method
must transfer) without wiping out all signal from the others.

Over seeds: each metric is first averaged over the seeds (``seed_mean``: on the log axis for
log-scaled metrics, as the anchors are), then scored, so the calibrated default scores 0 and
the reference 50 exactly; a seed that failed scales its setting's score by the fraction of
seeds that succeeded. The reported spread is the standard deviation of the per-seed scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlsbench_env.spec import Metric, Task

if TYPE_CHECKING:  # the run record only; scoring imports nothing of evaluation at run time
    from mlsbench_env.evaluation.run import SettingRun


@dataclass(frozen=True)
class Score:
    """A score value object: ``value`` in [0, 100], or None when invalid (with ``reason``)."""

    value: float | None
    reason: str | None = None
    parts: dict = field(default_factory=dict)

    @property
    def points(self) -> float:
        return 0.0 if self.value is None else self.value


def _axis(x: float, m: Metric) -> float:
    t = math.log10(max(x, m.log_eps)) if m.log else x
    return t if m.direction == "higher" else -t


def metric_score(x: float, m: Metric, floor: float, reference: float) -> float:
    u, f, r = _axis(x, m), _axis(floor, m), _axis(reference, m)
    if not math.isfinite(u) or u <= f:
        return 0.0
    if r <= f:  # the reference is no better than the floor: only "at least as good" counts
        return 50.0
    if m.bound is not None:
        b = _axis(m.bound, m)
        if u >= b:
            return 100.0
        if r >= b:
            return 50.0 + 50.0 * min(1.0, (u - r) / max(b - r, 1e-12))
        g = math.log(0.5) / math.log((r - f) / (b - f))
        return 100.0 * ((u - f) / (b - f)) ** g
    return 100.0 * math.tanh(math.log(3.0) / 2.0 * (u - f) / (r - f))


def setting_score(
    task: Task,
    label: str,
    metrics: dict[str, float] | None,
    error: str | None,
    anchors: dict | None,
) -> Score:
    if error is not None or metrics is None:
        return Score(0.0, error or "no metrics")
    if anchors is None or label not in anchors.get("anchors", {}):
        return Score(None, "uncalibrated: run `mlsbench calibrate` to write anchors.json")
    ref = anchors["anchors"][label]
    parts, total, weights = {}, 0.0, 0.0
    for m in task.spec.metrics:
        a = ref[m.name]
        s = metric_score(metrics[m.name], m, a["floor"], a["reference"])
        parts[m.name] = s
        total += m.weight * s
        weights += m.weight
    return Score(total / weights, None, parts)


def combine_settings(scores: dict[str, Score]) -> Score:
    """The task score over settings: shifted geometric mean (see the module docstring)."""
    if not scores:
        return Score(None, "no settings were run")
    invalid = [
        k
        for k, s in scores.items()
        if s.value is None and s.reason and s.reason.startswith("uncalibrated")
    ]
    if invalid:
        return Score(None, scores[invalid[0]].reason)
    logs = [math.log(s.points + 1.0) for s in scores.values()]
    value = math.exp(sum(logs) / len(logs)) - 1.0
    return Score(value, None, {k: s.points for k, s in scores.items()})


def seed_mean(values: list[float], m: Metric) -> float:
    """Mean over seeds on the metric's own axis (geometric for log-scaled metrics)."""
    if m.log:
        return 10 ** (sum(math.log10(max(v, m.log_eps)) for v in values) / len(values))
    return sum(values) / len(values)


def mean_and_spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def compute_anchors(task: Task, results: dict[str, dict[str, dict[str, list[float]]]]) -> dict:
    """Floor and 50-point anchor per setting and metric from calibration results.

    ``results[baseline][setting][metric]`` is the list of per-seed values (NaN when a run
    failed). The floor is the worst baseline mean (default included). The 50 point, stored as
    ``reference``, follows the task's ``anchor``: the reference baseline's mean, or under
    ``anchor: best`` the best baseline mean on that metric and setting (never the default
    scaffold's: it is the scale's 0, not a method).
    """
    anchors: dict[str, dict] = {}
    for s in task.spec.settings:
        anchors[s.label] = {}
        for m in task.spec.metrics:
            means = {}
            for name, per_setting in results.items():
                vals = [
                    v
                    for v in per_setting.get(s.label, {}).get(m.name, [])
                    if v is not None and math.isfinite(v)
                ]
                if vals:
                    means[name] = seed_mean(vals, m)
            if task.spec.reference_baseline not in means:
                raise ValueError(
                    f"reference baseline {task.spec.reference_baseline!r} produced no "
                    f"{m.name} on setting {s.label}; cannot calibrate"
                )
            fifty = means[task.spec.reference_baseline]
            if task.spec.anchor == "best":
                fifty = max(
                    (v for n, v in means.items() if n != "default"), key=lambda v: _axis(v, m)
                )
            floor = min(means.values(), key=lambda v: _axis(v, m))
            anchors[s.label][m.name] = {"floor": floor, "reference": fifty}
    return anchors


@dataclass
class FinalResult:
    """All settings x all seeds; the score per seed, and its mean and spread."""

    runs: list[SettingRun]
    seed_scores: dict[int, Score]
    setting_scores: dict[str, float] = field(default_factory=dict)
    score: float | None = None
    spread: float | None = None
    reason: str | None = None

    def record(self) -> dict:
        return {
            "score": self.score,
            "spread": self.spread,
            "reason": self.reason,
            "seed_scores": {s: sc.value for s, sc in self.seed_scores.items()},
            "setting_scores": self.setting_scores,
            "runs": [r.record() for r in self.runs],
        }


def score_runs(task: Task, runs: list[SettingRun], anchors: dict | None) -> FinalResult:
    """The final score and its spread over seeds (rules in the module docstring)."""
    seeds = sorted({r.seed for r in runs})
    seed_scores = {}
    for seed in seeds:
        scores = {
            r.label: setting_score(task, r.label, r.metrics, r.error, anchors)
            for r in runs
            if r.seed == seed
        }
        seed_scores[seed] = combine_settings(scores)
    result = FinalResult(runs, seed_scores)
    setting_scores = {}
    for label in dict.fromkeys(r.label for r in runs):
        mine = [r for r in runs if r.label == label]
        ok = [r.metrics for r in mine if r.metrics is not None and r.error is None]
        if not ok:
            setting_scores[label] = Score(0.0, next(r.error for r in mine))
            continue
        means = {m.name: seed_mean([o[m.name] for o in ok], m) for m in task.spec.metrics}
        sc = setting_score(task, label, means, None, anchors)
        if sc.value is not None and len(ok) < len(mine):  # failed seeds count as 0
            sc = Score(sc.value * len(ok) / len(mine), "some seeds failed", sc.parts)
        setting_scores[label] = sc
    total = combine_settings(setting_scores)
    if total.value is None:
        result.reason = total.reason
        return result
    result.score = total.value
    result.spread = mean_and_spread([s.points for s in seed_scores.values()])[1]
    result.setting_scores = {k: v.points for k, v in setting_scores.items()}
    return result


# Kaggle's medal rules exactly as MLE-bench's grade_helpers.py applies them: the last rank that
# wins each medal on a leaderboard of n teams, fractions rounded down (int), at least rank 1.
def _medal_ranks(n: int) -> dict[str, int]:
    if n < 100:
        ranks = {"gold": int(0.1 * n), "silver": int(0.2 * n), "bronze": int(0.4 * n)}
    elif n < 250:
        ranks = {"gold": 10, "silver": int(0.2 * n), "bronze": int(0.4 * n)}
    elif n < 1000:
        ranks = {"gold": 10 + int(0.002 * n), "silver": 50, "bronze": 100}
    else:
        ranks = {"gold": 10 + int(0.002 * n), "silver": int(0.05 * n), "bronze": int(0.1 * n)}
    return {k: max(1, min(n, v)) for k, v in ranks.items()}


def medal_thresholds(values: list[float], direction: str) -> dict[str, float]:
    """The score a submission must reach for each medal on a leaderboard of ``values``: the
    value of the last medal-winning rank (Kaggle's rules for the leaderboard's size)."""
    ranked = sorted((v for v in values if math.isfinite(v)), reverse=direction == "higher")
    if not ranked:
        return {}
    return {k: ranked[r - 1] for k, r in _medal_ranks(len(ranked)).items()}


def medal(value: float, thresholds: dict[str, float], direction: str) -> str | None:
    for name in ("gold", "silver", "bronze"):
        t = thresholds.get(name)
        if t is not None and (value >= t if direction == "higher" else value <= t):
            return name
    return None


def final_info(result, runs, task: Task, seeds: list[int], vanilla_score) -> dict:
    """The terminal step's info: the scored result plus each setting's metrics (mean over
    seeds) and its first error."""
    metrics: dict[str, dict[str, list[float]]] = {}
    errors: dict[str, str] = {}
    for run in runs:
        if run.error:
            errors.setdefault(run.label, run.error)
        elif run.metrics:
            for k, v in run.metrics.items():
                metrics.setdefault(run.label, {}).setdefault(k, []).append(v)
    means = {label: {k: sum(v) / len(v) for k, v in m.items()} for label, m in metrics.items()}
    for s in task.spec.settings:
        means.setdefault(s.label, {})
    return {
        "score": result.score,
        "score_spread": result.spread,
        "reason": result.reason,
        "seeds": seeds,
        "seed_scores": {s: v.value for s, v in result.seed_scores.items()},
        "setting_scores": result.setting_scores,
        "metrics": means,
        "errors": errors,
        "vanilla_score": vanilla_score,
        "final_runs": [r.record() for r in runs],
    }
