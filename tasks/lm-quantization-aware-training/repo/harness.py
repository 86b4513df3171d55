"""Fixed harness (trusted): the parent of a run. It never imports the agent's code: the quantizers
train in the task kit's child (worker.py), which reads quantizer.py and nothing else of this
folder; the quantized model is rebuilt and scored here with the fixed model code.

  parent   reads the texts and the pretrained checkpoint
  child    gets the pretrained parameters and, one batch per step, TRAINING windows only. It
           builds one Quantizer per matrix and reports the parameters' shapes (the model's, then
           the quantizers'); the parent checks the quantizers' total against the cap and owns
           the optimizer: each of `steps` steps it sends its parameters, a batch and the progress,
           takes the loss and the gradients back, clips them and takes the AdamW step (fixed
           schedule) itself. A parameter changed in the child is caught by comparing what it
           returns with what it was sent. Last the child loads the trained parameters and sends
           export(): codes as uint8, scales and zero points as float16
  parent   checks the byte counts, that every code is < 2^bits and every scale / zero point
           finite, rebuilds every matrix itself as scale * (code - zero) per group with its own
           float parameters (byte table, LayerNorms), evaluates the validation loss with the
           fixed model code and, after the child has exited, writes quantized.npz (exactly what
           the evaluated model is made of) and result.json. The grader re-checks quantized.npz
           and recomputes the loss from it.
"""

from __future__ import annotations

import math
import os
import struct
import time
import traceback
from pathlib import Path

import numpy as np
import settings as S
from taskkit import Child, RunFailure, out_dir_from_env, write_artifacts
from taskkit.torchstate import ParentState, warmup_cosine

QUANTIZER_PARAM_FACTOR = 2  # the quantizers hold at most 2x their matrices' size in parameters
BETAS = (0.9, 0.95)
CLIP = 1.0


def model_config(spec: dict) -> dict:
    m = S.MODELS[spec["model"]]
    return dict(
        vocab_size=S.VOCAB,
        d_model=m["d_model"],
        n_layer=m["n_layer"],
        n_head=m["n_head"],
        block_size=m["block_size"],
    )


def pretrained(cfg: dict, path: str):
    """The fixed model with the checkpoint loaded, and its parameters as float32 bytes."""
    import gpt
    import torch

    model = gpt.GPT(gpt.Config(**cfg))
    with np.load(path, allow_pickle=False) as z, torch.no_grad():
        for name, p in {**model.float_params(), **model.matrix_params()}.items():
            if name not in z.files or tuple(z[name].shape) != tuple(p.shape):
                raise RunFailure(f"checkpoint: missing or misshaped {name}")
            p.copy_(torch.from_numpy(z[name].astype(np.float32)))
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return model, flat.numpy().astype("<f4").tobytes()


def finetune(rec: dict, cfg: dict, spec: dict, seed: int, text: bytes):
    """Fine-tune with the agent's quantizers in a child and the parent's AdamW; returns the
    trained float parameters (name -> array) and the raw export (codes, scales + zero points)."""
    import torch

    model, initial = pretrained(cfg, S.MODELS[spec["model"]]["checkpoint"])
    steps, T = spec["steps"], cfg["block_size"]
    data = np.frombuffer(text, dtype=np.uint8)
    own = len(initial) // 4
    matrix_total = sum(p.numel() for p in model.matrix_params().values())
    args = (cfg, initial, spec["bits"], spec["group_size"], seed)
    with Child("worker:train", *args, may_read=("quantizer.py",), name="fine-tuning") as child:
        state = ParentState.receive(child, cap=own + QUANTIZER_PARAM_FACTOR * matrix_total)
        if state.n < own or state.bytes()[: 4 * own] != initial:
            raise RunFailure("the model's parameters changed before training")
        state.adamw(S.LR, BETAS, clip=CLIP)
        rng, ce, t0 = np.random.default_rng(seed), [], time.time()
        for step in range(steps):
            ix = rng.integers(0, len(data) - T - 1, size=spec["batch_size"])
            windows = np.stack([data[i : i + T + 1] for i in ix])
            batch = struct.pack("<d", step / steps) + windows.tobytes()
            lr = warmup_cosine(step, steps, S.LR, max(1, steps // 10), floor=0.1)
            ce.append(state.step(child, step, batch, lr, n_losses=2)[1])
        train_s = time.time() - t0
        child.send(b"D", state.bytes())
        codes = np.frombuffer(child.expect(b"C", size=matrix_total), np.uint8).copy()
        n_groups = matrix_total // spec["group_size"]
        sz = np.frombuffer(child.expect(b"Z", size=4 * n_groups), "<f2").copy()
    rec.update(
        train_ce_first20=float(np.mean(ce[:20])),
        train_ce_last50=float(np.mean(ce[-50:])),
        train_s=round(train_s, 2),
        quantizer_params=state.n - own,
        isolation=child.isolation,
    )
    with torch.no_grad():
        for p, t in zip(model.parameters(), state.tensors, strict=False):
            p.copy_(t)
    return {k: v.detach().numpy().copy() for k, v in model.float_params().items()}, codes, sz


def unpack(cfg_dict: dict, group_size: int, codes: np.ndarray, sz: np.ndarray) -> dict:
    """Split the raw export into per-matrix (codes, scale, zero)."""
    import gpt

    cfg = gpt.Config(**cfg_dict)
    mats = {}
    shapes = gpt.matrix_shapes(cfg)
    n_groups = sum(o * (k // group_size) for o, k in shapes.values())
    n_codes = sum(o * k for o, k in shapes.values())
    if codes.size != n_codes or sz.size != 2 * n_groups:
        raise RunFailure(
            f"expected {n_codes} codes and {2 * n_groups} scales/zero points, "
            f"got {codes.size} and {sz.size}"
        )
    ic = ig = 0
    for name, (o, k) in shapes.items():
        ng = o * (k // group_size)
        mats[name] = (
            codes[ic : ic + o * k].reshape(o, k),
            sz[ig : ig + ng].reshape(o, k // group_size),
            sz[n_groups + ig : n_groups + ig + ng].reshape(o, k // group_size),
        )
        ic += o * k
        ig += ng
    return mats


def check_quantized(mats: dict, bits: int, group_size: int) -> int:
    """Every code < 2^bits, every scale / zero point finite float16; returns the largest number of
    distinct values found in any group (at most 2^bits by construction)."""
    levels = 0
    for name, (codes, scale, zero) in mats.items():
        if codes.dtype != np.uint8 or scale.dtype != np.float16 or zero.dtype != np.float16:
            raise RunFailure(f"{name}: codes must be uint8 and scales / zero points float16")
        if codes.size and int(codes.max()) > 2**bits - 1:
            raise RunFailure(
                f"{name}: a code is {int(codes.max())}, above {2**bits - 1} "
                f"({bits}-bit weights allow {2**bits} levels per group)"
            )
        if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(zero))):
            raise RunFailure(f"{name}: scales and zero points must be finite float16 values")
        o, k = codes.shape
        g = np.sort(codes.reshape(o, k // group_size, group_size), axis=-1)
        distinct = 1 + (np.diff(g.astype(np.int16), axis=-1) != 0).sum(axis=-1)
        levels = max(levels, int(distinct.max()))
    if levels > 2**bits:
        raise RunFailure(f"a group holds {levels} distinct weights, more than 2^{bits}")
    return levels


def dequantize(
    codes: np.ndarray, scale: np.ndarray, zero: np.ndarray, group_size: int
) -> np.ndarray:
    o, k = codes.shape
    q = codes.astype(np.float32).reshape(o, k // group_size, group_size)
    w = scale.astype(np.float32)[..., None] * (q - zero.astype(np.float32)[..., None])
    return w.reshape(o, k)


def evaluate(
    cfg_dict: dict, float_params: dict, matrices: dict, windows: np.ndarray, batch: int = 32
) -> np.ndarray:
    """Per-byte cross-entropy (nats, float64) of the given float parameters and matrices on the
    windows (inputs = window[:, :-1], targets = window[:, 1:]), with the fixed model code."""
    import gpt
    import torch

    torch.set_num_threads(1)
    cfg = gpt.Config(**cfg_dict)
    model = gpt.GPT(cfg)
    with torch.no_grad():
        for name, p in model.float_params().items():
            p.copy_(torch.from_numpy(np.ascontiguousarray(float_params[name], dtype=np.float32)))
        W = {
            name: torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))
            for name, m in matrices.items()
        }
        model.eval()
        out = []
        for b0 in range(0, len(windows), batch):
            w = torch.from_numpy(windows[b0 : b0 + batch].astype(np.int64))
            logits = model(w[:, :-1], W).double()
            nll = -torch.log_softmax(logits, dim=-1).gather(-1, w[:, 1:, None])[..., 0]
            out.append(nll.numpy())
    return np.concatenate(out).astype(np.float64)


def main_for(label: str, spec: dict) -> int:
    out_dir = out_dir_from_env()
    seed = int(os.environ.get("MLSBENCH_SEED", "0"))
    cfg = model_config(spec)
    bits, group_size = spec["bits"], spec["group_size"]
    rec = dict(
        setting=label,
        seed=seed,
        status="error",
        error=None,
        model=spec["model"],
        bits=bits,
        group_size=group_size,
        steps=spec["steps"],
        batch_size=spec["batch_size"],
    )
    arrays, t0 = None, time.time()
    try:
        if cfg["d_model"] % group_size:
            raise RunFailure(f"group size {group_size} does not divide {cfg['d_model']}")
        fl, codes, sz = finetune(rec, cfg, spec, seed, Path(S.TRAIN_TEXT).read_bytes())
        mats = unpack(cfg, group_size, codes, sz)
        rec["max_levels_per_group"] = check_quantized(mats, bits, group_size)
        arrays = {f"float/{k}": v for k, v in fl.items()}
        for name, (c, s, z) in mats.items():
            arrays[f"codes/{name}"], arrays[f"scale/{name}"], arrays[f"zero/{name}"] = c, s, z
        # ---- evaluation: the parent's own code on the dequantized weights
        text, T = np.frombuffer(Path(S.EVAL_TEXT).read_bytes(), np.uint8), cfg["block_size"]
        starts = np.linspace(0, len(text) - T - 1, spec["eval_windows"]).round().astype(int)
        win = np.stack([text[i : i + T + 1] for i in starts])  # non-overlapping, as the grader's
        deq = {name: dequantize(c, s, z, group_size) for name, (c, s, z) in mats.items()}
        nll = evaluate(cfg, fl, deq, win)
        rec.update(status="ok", bpc=float(nll.mean() / math.log(2)), n_chars=int(nll.size))
    except RunFailure as e:
        rec["error"] = str(e)
    except Exception:  # a malformed frame from the child, or a harness bug
        rec["error"] = "harness error:\n" + traceback.format_exc()[-3000:]
    rec["wall_s"] = round(time.time() - t0, 2)
    ok = rec["status"] == "ok"
    # quantized.npz: exactly what the evaluated model is made of, of a run that passed every check
    write_artifacts(out_dir, rec, npz={"quantized": arrays if ok else None})
    if not ok:
        print(f"[{label}] seed={seed} FAILED: {rec['error']}")
        return 0  # the grader fails the setting with this message (exit 0 so that it is called)
    print(
        f"[{label}] seed={seed} bpc={rec['bpc']:.4f} ({bits}-bit, groups of {group_size}; "
        f"max levels per group {rec['max_levels_per_group']}) "
        f"train_ce_last50={rec['train_ce_last50']:.4f} wall={rec['wall_s']}s "
        f"isolation={rec['isolation']}"
    )
    return 0
