"""The report's statistics, from ``scipy.stats``: the Student-t interval of a task's mean over
seeds, the bootstrap intervals of domain and overall means (episodes resampled within each
task) and of paired differences, and the two-sided sign test.

Bootstraps are seeded by the caller's generator, so a report is reproducible. They use
percentile intervals: scores often tie (a baseline scores 50 on every seed), and BCa is
undefined on such samples.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

BOOTSTRAP = 2000
LEVEL = 0.95


def mean_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval (the interval collapses to the mean for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, mean, mean
    half = float(stats.t.ppf((1 + LEVEL) / 2, n - 1) * stats.sem(values))
    return mean, mean - half, mean + half


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test p-value (ties dropped before)."""
    if wins + losses == 0:
        return 1.0
    return float(stats.binomtest(wins, wins + losses, 0.5).pvalue)


def mean_over_groups(values: Sequence, groups: Sequence[str]):
    """The mean over groups of each group's mean of ``values`` (numbers, or arrays of bootstrap
    draws, which broadcast)."""
    by_group = defaultdict(list)
    for g, v in zip(groups, values, strict=True):
        by_group[g].append(v)
    return sum(sum(v) / len(v) for v in by_group.values()) / len(by_group)


def bootstrap_ci(
    samples: Sequence[np.ndarray], statistic: Callable, rng: np.random.Generator
) -> tuple[float, float]:
    """95% percentile interval of ``statistic(*samples, axis=-1)``, each sample resampled on
    its own. A one-value sample stays as it is, which is what resampling it would do (scipy
    refuses such samples)."""
    samples = [np.asarray(s, dtype=float) for s in samples]
    varied = [i for i, s in enumerate(samples) if len(s) > 1]
    if not varied:
        value = float(statistic(*samples, axis=-1))
        return value, value

    def on_draws(*drawn, axis=-1):
        full = list(samples)
        for i, d in zip(varied, drawn, strict=True):
            full[i] = d
        return statistic(*full, axis=axis)

    res = stats.bootstrap(
        [samples[i] for i in varied],
        on_draws,
        n_resamples=BOOTSTRAP,
        confidence_level=LEVEL,
        method="percentile",
        vectorized=True,
        rng=rng,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def grouped_mean_ci(
    samples: Sequence[np.ndarray], groups: Sequence[str], rng: np.random.Generator
) -> tuple[float, float, float]:
    """The mean over groups of the mean of each group's sample means (a domain's score from
    its tasks' episodes, or ``overall`` from all domains) and its bootstrap interval."""

    def statistic(*s, axis=-1):
        return mean_over_groups([x.mean(axis=axis) for x in s], groups)

    lo, hi = bootstrap_ci(samples, statistic, rng)
    return float(statistic(*[np.asarray(s, dtype=float) for s in samples])), lo, hi


def paired_stats(diffs: np.ndarray, rng: np.random.Generator) -> dict:
    """Mean of paired differences A - B with its bootstrap interval, wins/losses/ties and the
    sign test (a difference within 1e-9 is a tie)."""
    lo, hi = bootstrap_ci([diffs], np.mean, rng)
    wins, losses = int((diffs > 1e-9).sum()), int((diffs < -1e-9).sum())
    return {
        "mean_diff": float(diffs.mean()),
        "ci_lo": lo,
        "ci_hi": hi,
        "wins": wins,
        "losses": losses,
        "ties": len(diffs) - wins - losses,
        "p_sign": sign_test(wins, losses),
    }


__all__ = [
    "BOOTSTRAP",
    "bootstrap_ci",
    "grouped_mean_ci",
    "mean_ci",
    "mean_over_groups",
    "paired_stats",
    "sign_test",
]
