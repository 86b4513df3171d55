"""Trusted grader for bio-inverse-folding (runs outside the sandbox).

The harness parent (repo/harness.py) writes, after both children have exited, result.json
(status, the checks' verdict, parameter count, epochs, steps) and pred.npy (per-residue
log-probabilities of the 20 amino acids for every test backbone).  The grader takes the
setting's budgets from the pristine task files (never from the artifacts), checks them, and
scores the designs against the native test sequences in private/ (never visible to the agent):

  recovery    native sequence recovery: the fraction of residues whose most probable amino acid
              is the native one (Ingraham et al. 2019; Dauparas et al. 2022; Gao et al. 2023)
  perplexity  per-residue perplexity exp(mean negative log-likelihood of the native residues)
              under the model's (renormalized) distributions
A failed run (parameter cap exceeded, a parameter changed outside the optimizer, answers that
depend on the batch, a forbidden construct, a crash) fails the setting with the harness's message.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

HIDDEN = {"held-out-fold": dict(base="short", targets="fold_test_seq.npy")}


def _settings(task_dir: Path):
    spec = importlib.util.spec_from_file_location(
        "_bif_grader_settings", task_dir / "repo" / "settings.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def scores(logp: np.ndarray, seq: np.ndarray) -> dict[str, float]:
    lp = logp.astype(np.float64)
    m = lp.max(-1, keepdims=True)
    lp = lp - (m + np.log(np.exp(lp - m).sum(-1, keepdims=True)))
    nat = seq.astype(np.int64)
    nll = -np.take_along_axis(lp, nat[..., None], -1)[..., 0]
    return {
        "recovery": float((lp.argmax(-1) == nat).mean()),
        "perplexity": float(np.exp(nll.mean())),
    }


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    task_dir = Path(task_dir)
    S = _settings(task_dir)
    if setting in S.SETTINGS:
        base, targets = setting, f"{setting}_test_seq.npy"
    elif setting in HIDDEN:
        base, targets = HIDDEN[setting]["base"], HIDDEN[setting]["targets"]
    else:
        raise ValueError(f"unknown setting {setting!r}")
    spec = S.SETTINGS[base]
    out_dir = Path(out_dir)
    path = out_dir / "result.json"
    if not path.is_file():
        raise ValueError("no result.json in the output directory: the harness did not finish")
    rec = json.loads(path.read_text())
    if rec.get("setting") != setting or int(rec.get("seed", -1)) != int(seed):
        raise ValueError(
            f"result.json is for {rec.get('setting')!r} seed {rec.get('seed')}, "
            f"expected {setting!r} seed {seed}"
        )
    if rec.get("status") != "ok":
        raise ValueError(f"the run failed: {rec.get('error')}")
    n_params = int(rec.get("n_params", -1))
    if not 0 < n_params <= S.PARAM_CAP:
        raise ValueError(
            f"parameter cap exceeded: {n_params} parameters and buffers, cap {S.PARAM_CAP}"
        )
    n_train = int(np.load(task_dir / "repo" / spec["train_seq"], mmap_mode="r").shape[0])
    steps = int(spec["epochs"]) * (n_train // S.BATCH_SIZE)
    if (
        int(rec.get("epochs", -1)) != int(spec["epochs"])
        or int(rec.get("steps", -1)) != steps
        or int(rec.get("batch_size", -1)) != S.BATCH_SIZE
    ):
        raise ValueError("the run used other epochs / steps / batch size than the setting fixes")
    seq = np.load(task_dir / "private" / targets, allow_pickle=False)
    pred_path = out_dir / "pred.npy"
    if not pred_path.is_file():
        raise ValueError("no pred.npy in the output directory")
    pred = np.load(pred_path, allow_pickle=False)
    if pred.dtype != np.float32 or pred.shape != seq.shape + (20,):
        raise ValueError(
            f"pred.npy must be float32 of shape {seq.shape + (20,)}, got {pred.dtype} {pred.shape}"
        )
    if not np.all(np.isfinite(pred)):
        raise ValueError("pred.npy contains non-finite values")
    return scores(pred, seq)
