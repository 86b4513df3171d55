"""Calibrate this task and keep the baselines' learning curves (regenerates anchors.json,
curves.json and learning_curves.png).

    python tasks/rl-value-visual-control/tools/calibrate_curves.py [--plot-only] [--workers N]

It is `mlsbench calibrate rl-value-visual-control --workers 1` (the same library call, the same
anchors.json) plus a progress callback that keeps the `CURVE {...}` line each run prints
(training-episode return per tenth of the frame budget, the evaluation returns), then plots the
mean +- std over seeds per baseline and setting.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def calibrate(workers: int) -> None:
    from mlsbench_env.analysis.calibration import calibrate as measure
    from mlsbench_env.analysis.calibration import write_anchors
    from mlsbench_env.cli import markdown_table
    from mlsbench_env.spec import load_task

    task = load_task(HERE.name)
    curves: dict = {}
    t0 = time.time()

    def progress(name, label, seed, run):
        lines = reversed((run.log_tail or "").splitlines())
        line = next((ln for ln in lines if ln.startswith("CURVE ")), None)
        rec = json.loads(line[6:]) if line else None
        curves.setdefault(name, {}).setdefault(label, {})[str(seed)] = dict(
            curve=rec, metrics=run.metrics, error=run.error, wall_s=run.wall_s, cpu_s=run.cpu_s
        )
        print(
            f"{time.time() - t0:7.1f}s {name} {label} seed {seed}: {run.metrics} err={run.error} "
            f"wall={run.wall_s:.1f}s cpu={run.cpu_s:.1f}s",
            flush=True,
        )
        (HERE / "curves.json").write_text(json.dumps(curves, indent=1))

    anchors, rescored = measure(task, workers=workers, progress=progress)
    print("wrote", write_anchors(task, anchors))
    print(markdown_table(task, anchors, rescored))
    print(f"total wall {time.time() - t0:.0f}s")


def plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    curves = json.loads((HERE / "curves.json").read_text())
    labels = sorted({lab for per in curves.values() for lab in per})
    fig, axes = plt.subplots(1, len(labels), figsize=(4 * len(labels), 3), dpi=80)
    for ax, lab in zip(np.atleast_1d(axes), labels, strict=True):
        for name, per in curves.items():
            runs = [r["curve"]["train_curve"] for r in per.get(lab, {}).values() if r.get("curve")]
            if not runs:
                continue
            a = np.array([[np.nan if v is None else v for v in c] for c in runs], float)
            m, s = np.nanmean(a, 0), np.nanstd(a, 0)
            x = (np.arange(a.shape[1]) + 1) / a.shape[1]
            ax.plot(x, m, label=name)
            ax.fill_between(x, m - s, m + s, alpha=0.2)
        ax.set_title(lab)
        ax.set_xlabel("fraction of the frame budget")
        ax.set_ylabel("training episode return")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    png = HERE / "learning_curves.png"
    fig.savefig(png)
    from PIL import Image

    # a 64-colour palette keeps the plot readable at a fraction of the bytes
    Image.open(png).convert("RGB").quantize(colors=64).save(png, optimize=True)


if __name__ == "__main__":
    if "--plot-only" not in sys.argv:
        calibrate(int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 1)
    plot()
