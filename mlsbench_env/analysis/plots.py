"""The report's plots (matplotlib, no display): scores by domain, scores against what was spent,
and the best test score over an episode's steps."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mlsbench_env.analysis.report import Report


def write_plots(report: Report, out: Path) -> dict[str, Path]:
    """score_by_domain.png, score_vs_cost.png, score_over_steps.png (matplotlib, no display)."""
    try:
        import matplotlib
    except ImportError:
        report.warnings.append(
            "no plots: matplotlib is missing (pip install 'mlsbench-env[scale]')"
        )
        return {}
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {a: plt.get_cmap("tab10")(i % 10) for i, a in enumerate(report.agents)}
    files = {}
    for name, draw in (
        ("score_by_domain.png", _score_by_domain),
        ("score_vs_cost.png", _score_vs_cost),
        ("score_over_steps.png", _score_over_steps),
    ):
        fig = draw(plt, report, colors)
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files[name] = out / name
    return files


def _score_by_domain(plt, report: Report, colors: dict):
    """Bars with their CI per domain, vanilla as a marker, the strongest baseline as a dash."""
    cols = report.domains + ["overall"]
    width = 0.8 / max(1, len(report.leaderboard))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(cols) + 2), 4))
    for i, row in enumerate(report.leaderboard):
        xs, ys, lo, hi, van = [], [], [], [], []
        for j, d in enumerate(cols):
            x = row["domains"].get(d)
            if x is None:
                continue
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(x["score"])
            lo.append(x["score"] - x["ci_lo"])
            hi.append(x["ci_hi"] - x["score"])
            van.append(x["vanilla"] if x["vanilla"] is not None else np.nan)
        ax.bar(
            xs, ys, width, yerr=[lo, hi], capsize=3, color=colors[row["agent"]], label=row["agent"]
        )
        ax.scatter(
            xs,
            van,
            marker="v",
            color="black",
            s=18,
            zorder=3,
            label="vanilla (first test)" if i == 0 else None,
        )
    for j, d in enumerate(cols):
        base = [r["domains"][d]["baseline"] for r in report.leaderboard if d in r["domains"]]
        if base:
            ax.hlines(
                base[0],
                j - 0.45,
                j + 0.45,
                colors="gray",
                linestyles="--",
                label="strongest baseline" if j == 0 else None,
            )
    ax.set_xticks(range(len(cols)), cols)
    ax.set_ylabel("score (0 = scaffold, 50 = strongest baseline)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    return fig


def _score_vs_cost(plt, report: Report, colors: dict):
    """Score against tokens, dollars and compute seconds, one point per task."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for ax, (key, name) in zip(
        axes,
        (
            ("tokens", "tokens per episode"),
            ("cost_usd", "US$ per episode"),
            ("compute_s", "compute seconds per episode"),
        ),
        strict=True,
    ):
        for a in report.agents:
            pts = [(t[key] or 0.0, t["score"]) for t in report.tasks if t["agent"] == a]
            if pts:
                ax.scatter(*zip(*pts, strict=True), color=colors[a], label=a, alpha=0.8)
        ax.set_xlabel(name)
    axes[0].set_ylabel("score")
    axes[0].legend(fontsize=8)
    return fig


def _score_over_steps(plt, report: Report, colors: dict):
    """The best visible-settings test score so far by step, mean over episodes."""
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(7, 4))
    for a in report.agents:
        mine = [e for e in report.episodes if e["label"] == a]
        curves = [e.get("score_curve") or [] for e in mine]
        last = max([e.get("steps") or 0 for e in mine] + [c[-1][0] for c in curves if c])
        if not any(curves):
            continue
        grid = np.full((len(curves), last), np.nan)
        for i, c in enumerate(curves):
            best = -np.inf
            for step, score in c:
                best = max(best, score)
                grid[i, step - 1 :] = best
        with warnings.catch_warnings():  # a step before any test is NaN, and not drawn
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(grid, axis=0)
        ax.step(np.arange(1, last + 1), mean, where="post", color=colors[a], label=a)
        steps = np.mean([e.get("steps") or last for e in mine])
        ax.scatter(
            [steps],
            [np.mean([e["points"] for e in mine])],
            color=colors[a],
            marker="*",
            s=90,
            zorder=3,
        )
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("step (* = final score over all settings, at the mean episode length)")
    ax.set_ylabel("best test score so far (visible settings)")
    ax.legend(fontsize=8)
    return fig


__all__ = ["write_plots"]
