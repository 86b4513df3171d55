"""Learning curves of the baselines (README): python curves.py OUT_ROOT [--png FILE]

OUT_ROOT holds one directory per run named <baseline>_<setting>_<seed> with the run.json the
harness writes (train_curve_return / train_curve_cost: the mean training-episode return and
cost of each of the 40 rollouts, recorded by the parent). Prints a markdown table of the curves
(every 5th rollout, mean over the seeds found) and, with --png, plots them with matplotlib.
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def main():
    root = Path(sys.argv[1])
    runs = defaultdict(list)
    for p in sorted(root.glob("*/run.json")):
        rec = json.loads(p.read_text())
        if rec.get("status") != "ok":
            continue
        base = p.parent.name.rsplit("_", 2)[0]
        runs[(rec["setting"], base)].append((rec["train_curve_return"], rec["train_curve_cost"]))
    for (setting, base), rs in sorted(runs.items()):
        r = np.mean([x[0] for x in rs], axis=0)
        c = np.mean([x[1] for x in rs], axis=0)
        print(
            f"| {setting} | {base} | {len(rs)} | "
            + " ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(r[4::5], c[4::5], strict=True))
            + " |"
        )
    if "--png" in sys.argv:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        settings = sorted({s for s, _ in runs})
        fig, ax = plt.subplots(2, len(settings), figsize=(3 * len(settings), 4.4), squeeze=False)
        for j, s in enumerate(settings):
            for (s2, base), rs in sorted(runs.items()):
                if s2 != s:
                    continue
                for k in range(2):
                    y = np.array([x[k] for x in rs])
                    ax[k, j].plot(y.mean(0), label=base)
                    if len(rs) > 1:
                        ax[k, j].fill_between(range(y.shape[1]), y.min(0), y.max(0), alpha=0.2)
            ax[0, j].set_title(s)
            ax[0, j].set_ylabel("train episode return")
            ax[1, j].set_ylabel("train episode cost")
            ax[1, j].axhline(5.0, color="k", ls="--", lw=0.8)
            ax[1, j].set_xlabel("rollout (3200 env steps)")
        ax[0, 0].legend(fontsize=7)
        fig.tight_layout()
        png = sys.argv[sys.argv.index("--png") + 1]
        fig.savefig(png, dpi=60)
        from PIL import Image  # a 64-colour palette keeps the committed PNG small

        Image.open(png).convert("RGB").quantize(colors=64).save(png, optimize=True)


if __name__ == "__main__":
    main()
