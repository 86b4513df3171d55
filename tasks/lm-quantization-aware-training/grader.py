"""Trusted grader for lm-quantization-aware-training (runs outside the sandbox).

The harness parent (repo/harness.py) writes, after the training child has exited, result.json
(status, the checks' verdict, steps, bit-width, group size) and quantized.npz: the uint8 codes
and float16 scales / zero points of every quantized matrix and the float32 byte table and
LayerNorms - exactly what the evaluated model is made of.  The grader takes the setting's
budgets from the pristine task files (never from the artifacts), re-checks quantized.npz (every
name and shape of the fixed model, nothing else; codes < 2^bits; at most 2^bits distinct values
per group; finite float16 scales / zero points; finite float32 float parameters) and recomputes
the validation loss itself with the pristine model code (repo/gpt.py) on the pristine validation
text: bits per character = mean cross-entropy (nats) / ln 2.
A failed run (export outside the grid, a parameter changed outside the optimizer, a forbidden
construct, a crash) fails the setting with the harness's message.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np

HIDDEN = {
    "d64-l2-int2-g64-s150": dict(
        model="d64-l2", bits=2, group_size=64, steps=150, batch_size=16, eval_windows=128
    ),
}


def _module(task_dir: Path, name: str):
    spec = importlib.util.spec_from_file_location(
        f"_lmqat_grader_{name}", task_dir / "repo" / f"{name}.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # (dataclasses look their module up)
    spec.loader.exec_module(mod)
    return mod


def grade(setting: str, seed: int, out_dir: Path, task_dir: Path) -> dict[str, float]:
    task_dir, out_dir = Path(task_dir), Path(out_dir)
    S = _module(task_dir, "settings")
    spec = S.SETTINGS.get(setting) or HIDDEN.get(setting)
    if spec is None:
        raise ValueError(f"unknown setting {setting!r}")
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
    bits, g = int(spec["bits"]), int(spec["group_size"])
    for k in ("bits", "group_size", "steps", "batch_size"):
        if int(rec.get(k, -1)) != int(spec[k]):
            raise ValueError(f"the run used {k}={rec.get(k)}, the setting fixes {spec[k]}")
    qpath = out_dir / "quantized.npz"
    if not qpath.is_file():
        raise ValueError("no quantized.npz in the output directory")

    # the pristine model code, imported from the task (not from the run's directory)
    repo = task_dir / "repo"
    gpt = _module(task_dir, "gpt")
    import torch

    torch.set_num_threads(1)
    m = S.MODELS[spec["model"]]
    cfg_d = dict(
        vocab_size=S.VOCAB,
        d_model=m["d_model"],
        n_layer=m["n_layer"],
        n_head=m["n_head"],
        block_size=m["block_size"],
    )
    cfg = gpt.Config(**cfg_d)
    fshapes, mshapes = gpt.float_shapes(cfg), gpt.matrix_shapes(cfg)
    expected = {f"float/{k}" for k in fshapes}
    for k in mshapes:
        expected |= {f"codes/{k}", f"scale/{k}", f"zero/{k}"}
    with np.load(qpath, allow_pickle=False) as z:
        names = set(z.files)
        if names != expected:
            extra, missing = sorted(names - expected), sorted(expected - names)
            raise ValueError(
                f"quantized.npz holds other arrays than the fixed model's: "
                f"unexpected {extra[:5]}, missing {missing[:5]}"
            )
        arr = {k: z[k] for k in z.files}
    float_params = {}
    for k, shape in fshapes.items():
        a = arr[f"float/{k}"]
        if a.dtype != np.float32 or a.shape != tuple(shape) or not np.all(np.isfinite(a)):
            raise ValueError(
                f"float parameter {k}: expected finite float32 {tuple(shape)}, "
                f"got {a.dtype} {a.shape}"
            )
        float_params[k] = a
    mats = {}
    for k, (o, i) in mshapes.items():
        c, s, zp = arr[f"codes/{k}"], arr[f"scale/{k}"], arr[f"zero/{k}"]
        if c.dtype != np.uint8 or c.shape != (o, i):
            raise ValueError(f"{k}: codes must be uint8 of shape {(o, i)}, got {c.dtype} {c.shape}")
        for nm, a in (("scale", s), ("zero", zp)):
            if a.dtype != np.float16 or a.shape != (o, i // g) or not np.all(np.isfinite(a)):
                raise ValueError(
                    f"{k}: {nm} must be finite float16 of shape {(o, i // g)}, "
                    f"got {a.dtype} {a.shape}"
                )
        if int(c.max()) > 2**bits - 1:
            raise ValueError(
                f"{k}: code {int(c.max())} exceeds {2**bits - 1}: more than 2^{bits} "
                "levels per group"
            )
        grouped = np.sort(c.reshape(o, i // g, g), axis=-1).astype(np.int16)
        distinct = 1 + (np.diff(grouped, axis=-1) != 0).sum(axis=-1)
        if int(distinct.max()) > 2**bits:
            raise ValueError(
                f"{k}: a group holds {int(distinct.max())} distinct weights, more than 2^{bits}"
            )
        q = c.astype(np.float32).reshape(o, i // g, g)
        w = s.astype(np.float32)[..., None] * (q - zp.astype(np.float32)[..., None])
        mats[k] = torch.from_numpy(w.reshape(o, i))
    model = gpt.GPT(cfg)
    with torch.no_grad():
        for k, p in model.float_params().items():
            p.copy_(torch.from_numpy(float_params[k]))
        text = np.frombuffer((repo / S.EVAL_TEXT).read_bytes(), dtype=np.uint8)
        T, n = cfg.block_size, int(spec["eval_windows"])
        starts = np.linspace(0, len(text) - T - 1, n).round().astype(np.int64)
        win = np.stack([text[s0 : s0 + T + 1] for s0 in starts]).astype(np.int64)
        total, count = 0.0, 0
        for b0 in range(0, n, 32):
            w_ = torch.from_numpy(win[b0 : b0 + 32])
            logits = model(w_[:, :-1], mats).double()
            nll = -torch.log_softmax(logits, dim=-1).gather(-1, w_[:, 1:, None])[..., 0]
            total += float(nll.sum())
            count += nll.numel()
    bpc = total / count / math.log(2)
    if not math.isfinite(bpc):
        raise ValueError("the quantized model's validation loss is not finite")
    return {"bpc": bpc}
