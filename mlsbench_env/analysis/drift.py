"""Calibration drift: does this machine reproduce the task's anchors?

Floating-point results differ between machines (CPU, the BLAS kernel picked for it, compiler),
so a task calibrated on one machine can score its reference baseline below 50 on another. The
check replays the reference and the default baseline on one of the anchors' seeds through the
code the calibration runs (``calibration.run_baseline``) and compares, per setting and metric
and for the task score, the replayed value with the anchors' value on the same seed. The
distance is counted in seed spreads: the sample standard deviation of that value over the
anchors' seeds (a change of a few spreads moves scores as much as a change of seed does).
"exact" when the value is bit-identical. A distance above ``WARN_SPREADS`` is a warning, never
a failure: the anchors still define the scale, the drift says how far to trust its last points.

``mlsbench validate`` prints it; ``mlsbench eval --check-drift`` prints it and saves it next to
the results store (``drift_path``), where ``mlsbench report`` finds it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlsbench_env.analysis.calibration import machine, run_baseline
from mlsbench_env.analysis.health import health
from mlsbench_env.errors import MLSBenchError
from mlsbench_env.scoring import mean_and_spread, score_runs
from mlsbench_env.spec import Task

__all__ = [
    "WARN_SPREADS",
    "BaselineDrift",
    "DriftReport",
    "ValueDrift",
    "check_drift",
    "drift_path",
    "load_drift",
    "save_drift",
]

WARN_SPREADS = 3.0
"""A replay further than this many seed spreads from its anchor is reported as a warning."""

SCORE = "task score"


@dataclass(frozen=True)
class ValueDrift:
    """One replayed number against the anchors' number of the same seed."""

    what: str
    """``setting/metric``, or ``task score``."""
    anchored: float
    """The anchors' value on the replayed seed (NaN: that run failed in calibration)."""
    replayed: float | None
    """None: the replay did not produce it (the run failed)."""
    spread: float
    """Sample standard deviation of the anchors' values over their seeds."""

    @property
    def exact(self) -> bool:
        return self.replayed == self.anchored

    @property
    def spreads(self) -> float:
        """Signed distance ``(replayed - anchored) / spread``: 0 when exact, +-inf off a
        spread of 0, inf when the replay failed, NaN when the calibration run had failed."""
        if math.isnan(self.anchored):
            return math.nan
        if self.replayed is None or math.isnan(self.replayed):
            return math.inf
        if self.exact:
            return 0.0
        diff = self.replayed - self.anchored
        return diff / self.spread if self.spread > 0 else math.copysign(math.inf, diff)

    def describe(self) -> str:
        if self.exact:
            return "exact"
        if self.replayed is None:
            return "replay failed"
        if math.isnan(self.anchored):
            return "failed in calibration"
        return f"{self.replayed:.4g} vs {self.anchored:.4g} ({_spreads(self.spreads)} spreads)"


@dataclass(frozen=True)
class BaselineDrift:
    name: str
    score: ValueDrift
    metrics: tuple[ValueDrift, ...]
    errors: tuple[str, ...] = ()
    cpu_s: float = 0.0
    """CPU seconds of the replayed runs (every setting, one seed), kit children included."""
    runs: int = 0
    """How many runs the replay made (one per setting)."""

    @property
    def worst(self) -> ValueDrift:
        """The value furthest from its anchor (the task score on ties)."""
        return max((self.score, *self.metrics), key=_distance)

    @property
    def worst_metric(self) -> ValueDrift | None:
        return max(self.metrics, key=_distance, default=None)


@dataclass(frozen=True)
class DriftReport:
    task: str
    seed: int
    baselines: tuple[BaselineDrift, ...]
    calibrated_on: dict[str, Any] | None
    """``anchors.json``'s machine record (None: written before it was recorded)."""
    replayed_on: dict[str, Any]
    calibration_runs: int = 0
    """Runs of a whole calibration: its methods (default included) x settings x seeds."""
    checked: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )

    @property
    def max_spreads(self) -> float:
        return max((max(_distance(b.worst), 0.0) for b in self.baselines), default=0.0)

    @property
    def drifted(self) -> bool:
        return self.max_spreads > WARN_SPREADS

    @property
    def calibration_cpu_s(self) -> float:
        """A whole calibration's CPU on this machine, estimated from the replay: the replayed
        baselines' mean CPU per run times the calibration's runs."""
        runs = sum(b.runs for b in self.baselines)
        if not runs or not self.calibration_runs:
            return math.nan
        return sum(b.cpu_s for b in self.baselines) / runs * self.calibration_runs

    def summary(self) -> str:
        """One line: each baseline's task score on the seed against its anchor, the worst
        metric, and the machines when they differ."""
        parts = []
        for b in self.baselines:
            text = f"{b.name}: {SCORE} {b.score.describe()}"
            worst = b.worst_metric
            if worst is not None and all(m.exact for m in b.metrics):
                text += ", every metric exact"
            elif worst is not None:
                text += f", worst {worst.what} {worst.describe()}"
            parts.append(text)
        line = f"{self.task} seed {self.seed}: " + "; ".join(parts)
        cpu = sum(b.cpu_s for b in self.baselines)
        return line + f"; replay {cpu:.0f} CPU-s" + self.machines()

    def machines(self) -> str:
        """`` (calibrated on X, replayed on Y)`` where the CPU or BLAS differ, else empty."""
        then, now = self.calibrated_on, self.replayed_on
        if then is None:
            return " (anchors.json does not say which machine calibrated it)"
        if (then.get("cpu"), then.get("blas")) == (now.get("cpu"), now.get("blas")):
            return ""
        return f" (calibrated on {_machine(then)}, replayed on {_machine(now)})"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DriftReport:
        def value(v: dict) -> ValueDrift:
            return ValueDrift(v["what"], v["anchored"], v["replayed"], v["spread"])

        baselines = tuple(
            BaselineDrift(
                b["name"],
                value(b["score"]),
                tuple(value(m) for m in b["metrics"]),
                tuple(b.get("errors", ())),
                b.get("cpu_s", 0.0),
                b.get("runs", 0),
            )
            for b in d["baselines"]
        )
        return cls(
            d["task"],
            d["seed"],
            baselines,
            d.get("calibrated_on"),
            d["replayed_on"],
            d.get("calibration_runs", 0),
            d["checked"],
        )


def check_drift(
    task: Task,
    *,
    seed: int | None = None,
    backend: str = "local",
    anchors: dict | None = None,
    progress: Callable[[str, str, int, object], None] | None = None,
) -> DriftReport:
    """Replay the reference and the default on ``seed`` (the anchors' first seed) and compare
    them with ``anchors`` (the task's anchors.json)."""
    anchors = task.anchors() if anchors is None else anchors
    if anchors is None:
        raise MLSBenchError(f"anchors.json: missing; run `mlsbench calibrate {task.id}`")
    seeds = list(anchors["seeds"])
    seed = seeds[0] if seed is None else seed
    if seed not in seeds:
        raise MLSBenchError(f"seed {seed}: the anchors hold seeds {seeds} only")
    reference = anchors.get("reference_baseline", task.spec.reference_baseline)
    names = [n for n in dict.fromkeys((reference, "default")) if n in anchors["results"]]
    calibrated = health(task, anchors)
    out = []
    for name in names:
        fr = run_baseline(task, name, backend=backend, seeds=[seed], progress=progress)
        out.append(_compare(task, anchors, name, seeds.index(seed), fr, calibrated))
    runs = len(anchors["results"]) * len(task.spec.settings) * len(seeds)
    return DriftReport(task.id, seed, tuple(out), anchors.get("machine"), machine(backend), runs)


def _compare(task, anchors, name, index, fr, calibrated) -> BaselineDrift:
    seed = anchors["seeds"][index]
    results = anchors["results"][name]
    metrics = []
    for r in fr.runs:
        for m in task.spec.metrics:
            values = results.get(r.label, {}).get(m.name) or [math.nan]
            finite = [v for v in values if v is not None and math.isfinite(v)]
            anchored = values[index] if index < len(values) else math.nan
            got = r.metrics.get(m.name) if r.metrics and r.error is None else None
            metrics.append(
                ValueDrift(
                    f"{r.label}/{m.name}",
                    math.nan if anchored is None else anchored,
                    got,
                    mean_and_spread(finite)[1] if finite else math.nan,
                )
            )
    seed_scores = list(calibrated.baseline(name).seed_scores)
    replayed = score_runs(task, fr.runs, anchors).seed_scores[seed].points
    score = ValueDrift(SCORE, seed_scores[index], replayed, mean_and_spread(seed_scores)[1])
    errors = tuple(f"{r.label}: {r.error}" for r in fr.runs if r.error)
    cpu = sum(r.cpu_s for r in fr.runs)
    return BaselineDrift(name, score, tuple(metrics), errors, cpu, len(fr.runs))


def drift_path(store: str | Path) -> Path:
    """Where ``eval --check-drift`` keeps the drift of a results store's tasks: beside it."""
    store = Path(store)
    return store.with_name(store.stem + ".drift.json")


def save_drift(store: str | Path, reports: list[DriftReport]) -> Path:
    """Record ``reports`` beside ``store`` (replacing earlier checks of the same tasks)."""
    path = drift_path(store)
    have = json.loads(path.read_text()) if path.is_file() else {}
    have.update({r.task: r.to_json() for r in reports})
    path.write_text(json.dumps(have, indent=1, allow_nan=True) + "\n")
    return path


def load_drift(store: str | Path) -> dict[str, DriftReport]:
    """The drift recorded beside ``store``, per task id (empty when none was checked)."""
    path = drift_path(store)
    if not path.is_file():
        return {}
    return {t: DriftReport.from_json(d) for t, d in json.loads(path.read_text()).items()}


def _distance(v: ValueDrift) -> float:
    return -1.0 if math.isnan(v.spreads) else abs(v.spreads)


def _spreads(x: float) -> str:
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    return f"{x:+.1f}"


def _machine(m: dict) -> str:
    b = m.get("blas") or {}
    lib = " ".join(str(b[k]) for k in ("internal_api", "version", "architecture") if b.get(k))
    return f"{m.get('cpu')}, {lib or 'BLAS unknown'}"
