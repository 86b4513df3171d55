"""The calibration health check: does a task's calibration rank its baselines?

Read from the task's shipped ``anchors.json`` (its per-seed results), every number through
``score_runs`` and the functions of ``mlsbench_env.scoring``, nothing re-scored here:

- per baseline, the task score of each seed (and each setting's score of each seed), their
  mean and standard error over seeds (sample standard deviation / sqrt(n));
- the baselines ranked by mean task score, and each one's gap to the next in standard errors of
  the paired-by-seed difference: ``mean(d) / (sd(d) / sqrt(n))`` with ``d`` the per-seed
  differences of the task scores (TASKS.md: "the calibration must rank");
- failures: the reference is not ahead of the default, or of the runner-up (the best baseline
  other than the reference and the default), by at least 2 such standard errors; a baseline
  other than the reference scores above the reference's 50 on the task (its task score as
  ``score_runs`` gives it, the number of the README tables). Under ``anchor: best`` each
  metric's 50 is its best baseline, so no baseline scores above 50 and the reference scores
  50 only where it is best on every metric: the check is then a baseline scoring above the
  reference's own task score.

Competitions are handled the same way: their anchors.json holds per-seed results and their
score comes from ``score_runs`` too, though their ranking is the medal leaderboard's.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, field
from typing import Literal

from mlsbench_env.errors import MLSBenchError
from mlsbench_env.evaluation import SettingRun
from mlsbench_env.scoring import mean_and_spread, score_runs, setting_score
from mlsbench_env.spec import Task

__all__ = [
    "MIN_SEPARATION_SE",
    "BaselineHealth",
    "Estimate",
    "Failure",
    "HealthReport",
    "health",
    "health_markdown",
    "with_health_section",
]

MIN_SEPARATION_SE = 2.0
"""The reference must lead the default and the runner-up by this many standard errors."""

SECTION = "Calibration health"


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds and its standard error (NaN with fewer than 2 seeds)."""

    mean: float
    se: float

    @classmethod
    def of(cls, values: list[float]) -> Estimate:
        mean, sd = mean_and_spread(values)
        return cls(mean, sd / math.sqrt(len(values)) if len(values) > 1 else math.nan)


@dataclass(frozen=True)
class BaselineHealth:
    """One baseline: its task score, and the per-seed scores the statistics come from."""

    name: str
    score: float | None
    """The task score as the final evaluation reports it (the seed means scored)."""
    seed_scores: tuple[float, ...]
    task: Estimate
    settings: dict[str, Estimate]
    next: str | None = None
    """The baseline ranked just below (None for the last)."""
    gap_se: float | None = None
    """Lead over ``next`` in standard errors of the paired-by-seed difference."""
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Failure:
    """A failed check, with one sentence why."""

    check: Literal["separation", "above-reference"]
    baseline: str
    message: str


@dataclass(frozen=True)
class HealthReport:
    task: str
    seeds: tuple[int, ...]
    reference: str
    runner_up: str | None
    baselines: tuple[BaselineHealth, ...]
    """Ranked by mean task score, best first."""
    separation_se: dict[str, float] = field(default_factory=dict)
    """The reference's lead over the default and the runner-up, in paired standard errors."""
    failures: tuple[Failure, ...] = ()
    hidden: tuple[str, ...] = ()
    """The settings run only at the final evaluation."""
    anchor: str = "reference"
    """The anchor mode the scores were made under (the task's ``anchor``)."""

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def smallest_separation_se(self) -> float:
        """The smallest of the checked separations (the check passes from 2 up)."""
        return min(self.separation_se.values(), default=math.nan)

    @property
    def smallest_gap_se(self) -> float:
        """The smallest gap between neighbours of the ranking."""
        return min((b.gap_se for b in self.baselines if b.gap_se is not None), default=math.nan)

    def baseline(self, name: str) -> BaselineHealth:
        return next(b for b in self.baselines if b.name == name)


def paired_gap_se(a: list[float], b: list[float]) -> float:
    """How far ``a`` leads ``b`` in standard errors of the per-seed difference ``a - b``.

    Differences with no spread give +-inf (0 where they are all 0): a deterministic lead is
    infinitely many standard errors. NaN with fewer than 2 seeds."""
    if len(a) != len(b):
        raise ValueError(f"paired values need the same seeds: {len(a)} vs {len(b)}")
    d = [x - y for x, y in zip(a, b, strict=True)]
    est = Estimate.of(d)
    if math.isnan(est.se):
        return math.nan
    if est.se == 0.0:
        return 0.0 if est.mean == 0.0 else math.copysign(math.inf, est.mean)
    return est.mean / est.se


def _runs(task: Task, per_setting: dict, seeds: list[int], name: str) -> list[SettingRun]:
    """The calibration's runs of one baseline as the final evaluation recorded them: a value
    per seed in ``seeds`` order, NaN (or missing) where a run failed."""
    runs = []
    for s in task.spec.settings:
        values = per_setting.get(s.label, {})
        for i, seed in enumerate(seeds):
            metrics = {}
            for m in task.spec.metrics:
                got = values.get(m.name, [])
                if len(got) not in (0, len(seeds)):
                    raise MLSBenchError(
                        f"anchors.json: {name}/{s.label}/{m.name} has {len(got)} values for "
                        f"{len(seeds)} seeds; re-run `mlsbench calibrate {task.id}`"
                    )
                v = got[i] if got else math.nan
                if v is not None and math.isfinite(v):
                    metrics[m.name] = v
            ok = len(metrics) == len(task.spec.metrics)
            error = None if ok else "failed in calibration"
            runs.append(SettingRun(s.label, seed, metrics if ok else None, error))
    return runs


def _baseline(task: Task, anchors: dict, name: str) -> BaselineHealth:
    seeds = list(anchors["seeds"])
    fr = score_runs(task, _runs(task, anchors["results"][name], seeds, name), anchors)
    if fr.score is None:
        raise MLSBenchError(f"anchors.json: {name} cannot be scored: {fr.reason}")
    seed_scores = [fr.seed_scores[s].points for s in seeds]
    settings = {}
    for s in task.spec.settings:
        per_seed = [
            setting_score(task, r.label, r.metrics, r.error, anchors).points
            for r in fr.runs
            if r.label == s.label
        ]
        settings[s.label] = Estimate.of(per_seed)
    return BaselineHealth(name, fr.score, tuple(seed_scores), Estimate.of(seed_scores), settings)


def health(task: Task, anchors: dict | None = None) -> HealthReport:
    """The calibration health of ``task`` from its anchors.json (or ``anchors``, same format)."""
    anchors = task.anchors() if anchors is None else anchors
    if anchors is None:
        raise MLSBenchError(f"anchors.json: missing; run `mlsbench calibrate {task.id}`")
    reference = anchors.get("reference_baseline", task.spec.reference_baseline)
    mode = anchors.get("anchor", task.spec.anchor)
    names = list(anchors["results"])
    if reference not in names:
        raise MLSBenchError(f"anchors.json: no results for the reference baseline {reference!r}")
    ranked = sorted(
        (_baseline(task, anchors, n) for n in names), key=lambda b: b.task.mean, reverse=True
    )
    by_name = {b.name: b for b in ranked}
    others = [b.name for b in ranked if b.name not in (reference, "default")]
    runner_up = others[0] if others else None

    failures: list = []
    flags: dict[str, list] = {b.name: [] for b in ranked}
    separation = {}
    ref = by_name[reference]
    for name in dict.fromkeys(n for n in ("default", runner_up) if n in by_name):
        gap = paired_gap_se(list(ref.seed_scores), list(by_name[name].seed_scores))
        separation[name] = gap
        if not gap >= MIN_SEPARATION_SE:  # NaN (one seed) fails too
            role = "the default" if name == "default" else "the runner-up"
            flags[name].append(f"{_se(gap)} s.e. from reference")
            failures.append(
                Failure(
                    "separation",
                    name,
                    f"the reference {reference} leads {role} {name} by {_se(gap)} standard "
                    f"errors of the paired difference (mean {ref.task.mean:.1f} vs "
                    f"{by_name[name].task.mean:.1f}), fewer than {MIN_SEPARATION_SE:g}.",
                )
            )
    # under anchor: best the reference's score is below 50 wherever another baseline wins a
    # metric, so "above the reference" is measured against its own score
    bar = 50.0 if mode == "reference" else ref.score
    for b in ranked:
        if b.name != reference and b.score is not None and bar is not None and b.score > bar:
            if mode == "reference":
                flags[b.name].append(f"above 50 ({b.score:.1f})")
                why = f"above the reference {reference}'s 50."
            else:
                flags[b.name].append(f"above reference ({b.score:.1f} > {bar:.1f})")
                why = (
                    f"above the reference {reference}'s {bar:.1f} (anchor: best, each metric's "
                    "50 is the best baseline on it)."
                )
            failures.append(
                Failure(
                    "above-reference", b.name, f"{b.name} scores {b.score:.1f} on the task, {why}"
                )
            )
    out = []
    for i, b in enumerate(ranked):
        nxt = ranked[i + 1] if i + 1 < len(ranked) else None
        next_gap = paired_gap_se(list(b.seed_scores), list(nxt.seed_scores)) if nxt else None
        out.append(
            BaselineHealth(
                b.name,
                b.score,
                b.seed_scores,
                b.task,
                b.settings,
                nxt.name if nxt else None,
                next_gap,
                tuple(flags[b.name]),
            )
        )
    return HealthReport(
        task.id,
        tuple(anchors["seeds"]),
        reference,
        runner_up,
        tuple(out),
        separation,
        tuple(failures),
        tuple(s.label for s in task.spec.settings if s.hidden),
        mode,
    )


def _se(x: float | None) -> str:
    if x is None:
        return "–"
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.1f}"


def health_markdown(report: HealthReport) -> str:
    """The report as markdown: the ranking table, the per-setting table, the verdict."""
    n = len(report.seeds)
    above = (
        "no other baseline scores above 50"
        if report.anchor == "reference"
        else "no other baseline scores above the reference (anchor: best: each metric's 50 is "
        "the best baseline on it)"
    )
    intro = (
        f"Task score per seed (seeds {', '.join(map(str, report.seeds))}) from anchors.json: "
        f"mean, standard error (sample s.d. / √{n}), and the lead over the next baseline in "
        "standard errors of the paired-by-seed difference; score is the task score as the "
        "final evaluation reports it (seed means scored). Checks: the reference leads the "
        f"default and the runner-up by at least {MIN_SEPARATION_SE:g} s.e.; {above}. Written by "
        "`mlsbench_env.analysis.health`."
    )
    lines = [
        *textwrap.wrap(intro, 100, break_on_hyphens=False),
        "",
        "| baseline | score | mean | s.e. | gap to next (s.e.) | flag |",
        "|---|---|---|---|---|---|",
    ]
    for b in report.baselines:
        lines.append(
            f"| {_label(report, b.name)} | {_num(b.score)} | {b.task.mean:.1f} | "
            f"{_num(b.task.se)} | {_se(b.gap_se)} | {'; '.join(b.flags)} |"
        )
    labels = list(report.baselines[0].settings) if report.baselines else []
    header = [f"{k} (hidden)" if k in report.hidden else k for k in labels]
    lines += [
        "",
        "Per setting, the setting score's mean ± s.e. over the same seeds:",
        "",
        "| baseline | " + " | ".join(header) + " |",
        "|---" * (len(labels) + 1) + "|",
    ]
    for b in report.baselines:
        cells = [f"{e.mean:.1f} ± {_num(e.se)}" for e in b.settings.values()]
        lines.append(f"| {b.name} | " + " | ".join(cells) + " |")
    lines.append("")
    if report.passed:
        lines.append(
            f"Passed: the smallest separation is {_se(report.smallest_separation_se)} s.e."
        )
    else:
        lines.append("Failed:")
        lines += [f"- {f.message}" for f in report.failures]
    return "\n".join(lines) + "\n"


def _num(x: float | None) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.1f}"


def _label(report: HealthReport, name: str) -> str:
    if name == report.reference:
        return f"{name} (reference)"
    if name == report.runner_up:
        return f"{name} (runner-up)"
    return name


_FENCE = re.compile(r"^(```|~~~)")


def with_health_section(readme: str, markdown: str) -> str:
    """``readme`` with its "## Calibration health" section replaced by ``markdown`` (added after
    the "## Calibration" section, else at the end, where it has none); the rest untouched."""
    lines = readme.splitlines(keepends=True)
    headings, fenced = [], False
    for i, line in enumerate(lines):  # a "#" line inside a code block is not a heading
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            headings.append(i)
    block = [f"## {SECTION}\n", "\n", *markdown.rstrip("\n").splitlines(keepends=False)]
    block = [ln if ln.endswith("\n") else ln + "\n" for ln in block] + ["\n"]

    def end_of(start: int) -> int:
        return next((h for h in headings if h > start), len(lines))

    own = [h for h in headings if lines[h].rstrip("\n").strip() == f"## {SECTION}"]
    if own:
        start, end = own[0], end_of(own[0])
    else:
        cal = [h for h in headings if lines[h].startswith("## Calibration")]
        start = end = end_of(cal[0]) if cal else len(lines)
        if start == len(lines) and lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        if start == len(lines) and lines and lines[-1].strip():
            block.insert(0, "\n")
    if end == len(lines):  # the last section: no blank line after it
        block = block[:-1]
    return "".join(lines[:start] + block + lines[end:])
