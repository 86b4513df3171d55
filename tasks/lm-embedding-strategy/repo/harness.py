"""Fixed harness (trusted): the parent of a run. It never imports the agent's code; the model runs
in the task kit's children (worker.py), which read embedding.py and nothing else of this folder.

  parent   reads the texts
  train    a child builds Embedding(cfg) + the fixed body, checks causality
           and sends the parameters' shapes and initial values. The parent owns the optimizer:
           each of `steps` steps it draws a batch of TRAINING windows, sends them with its
           parameters, takes the loss and the gradients back, clips them and takes the AdamW step
           (fixed schedule) itself. A parameter the child changed is caught by comparing what it
           returns with what it was sent; the parent counts the steps and the parameters (the cap)
  evaluate a fresh child loads the trained parameters and answers logits for validation windows
           (inputs only, never the last target); the parent computes the cross-entropy itself
           and probes every batch with a copy whose tokens after a random cut are replaced: the
           logits up to the cut must not change. Finally it re-asks a re-mixed batch: the answers
           must be identical (no state, no mixing across windows)
  budget   (MLSBENCH_BUDGET_CHECK=1, task.yaml's budget_check) a child builds the model and
           sends its parameters; this parent counts them against the cap and writes the verdict
           (budget_check.json); nothing is trained
Artifacts are written after every child has exited.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from pathlib import Path

import numpy as np
import settings as S
from taskkit import Child, RunFailure, out_dir_from_env, write_artifacts, write_budget_verdict
from taskkit.torchstate import ParentState, warmup_cosine

CAUSAL_RTOL = 1e-4
LR = 3e-3
READABLE = ("embedding.py",)  # what the model's processes may read of this folder


def train(rec: dict, cfg: dict, seed: int, steps: int, batch_size: int, text: bytes) -> bytes:
    """Train in a child with the parent's AdamW; returns the trained parameters (float32)."""
    data = np.frombuffer(text, dtype=np.uint8)
    T = cfg["block_size"]
    probe = np.stack([data[i : i + T] for i in (1000, 500000)]).tobytes()
    with Child("worker:train", cfg, seed, probe, may_read=READABLE, name="training") as child:
        state = ParentState.receive(child, cap=cfg["max_params"])
        state.adamw(LR, (0.9, 0.95), weight_decay=0.1, clip=1.0, matrices_only=True)
        rng, losses, t0 = np.random.default_rng(seed), [], time.time()
        for step in range(steps):
            ix = rng.integers(0, len(data) - T - 1, size=batch_size)
            batch = np.stack([data[i : i + T + 1] for i in ix]).tobytes()
            lr = warmup_cosine(step, steps, LR, max(1, steps // 10), floor=0.1)
            losses.append(state.step(child, step, batch, lr)[0])
        child.send(b"D")
    rec.update(
        n_params=state.n,
        train_loss_last50=float(np.mean(losses[-50:])),
        train_s=round(time.time() - t0, 2),
        isolation=child.isolation,
    )
    return state.bytes()


def check_budget(cfg: dict, seed: int) -> dict:
    """The cap, counted here in the parent on the parameters the model's process sends (what
    training would hold); the verdict of task.yaml's budget_check."""
    with Child("worker:measure", cfg, seed, may_read=READABLE, name="budget check") as child:
        n = ParentState.receive(child).n
    cap, body = cfg["max_params"], cfg["body_params"]
    ok = n <= cap
    message = (
        f"{'parameter cap exceeded: ' if not ok else ''}the model has {n} trainable parameters "
        f"(body {body} + embedding {n - body}), the cap is {cap} (embedding budget "
        f"{cap - body})"
    )
    return {"ok": ok, "message": message, "n_params": n, "param_cap": cap}


def eval_windows(text: bytes, T: int, n: int) -> np.ndarray:
    """n windows of T+1 bytes at evenly spaced, non-overlapping starts over the whole text."""
    data = np.frombuffer(text, dtype=np.uint8)
    starts = np.linspace(0, len(data) - T - 1, n).round().astype(np.int64)
    if n > 1 and np.diff(starts).min() < T + 1:
        raise ValueError("evaluation text too short for the requested windows")
    return np.stack([data[s : s + T + 1] for s in starts])


def log_softmax_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    m = z.max(axis=-1, keepdims=True)
    lse = m[..., 0] + np.log(np.exp(z - m).sum(axis=-1))
    return lse - np.take_along_axis(z, targets[..., None].astype(np.int64), axis=-1)[..., 0]


def evaluate(
    rec: dict, cfg: dict, seed: int, state: bytes, text: bytes, n_windows: int, eval_batch: int = 32
) -> np.ndarray:
    """Per-character loss (nats) of the validation windows, computed here from the logits of a
    fresh child, with the causality probes and the re-ask."""
    V, T = S.VOCAB, cfg["block_size"]
    win = eval_windows(text, T, n_windows)
    x_all, y_all = win[:, :-1], win[:, 1:]
    rng = np.random.default_rng(10_000 + seed)
    pool = np.frombuffer(text, dtype=np.uint8)
    with Child("worker:evaluate", cfg, seed, state, may_read=READABLE, name="evaluation") as child:

        def ask(x):
            child.send(b"Q", np.ascontiguousarray(x, dtype=np.uint8).tobytes())
            out = np.frombuffer(child.expect(b"O", size=len(x) * T * V * 4), "<f4")
            if not np.all(np.isfinite(out)):
                raise RunFailure("the model returned non-finite logits")
            return out.reshape(len(x), T, V)

        logits_all = np.empty((len(x_all), T, V), dtype=np.float32)
        probe_max = 0.0
        for b0 in range(0, len(x_all), eval_batch):
            x = x_all[b0 : b0 + eval_batch]
            cut = rng.integers(0, T - 1, size=len(x))  # positions <= cut are kept
            xp = x.copy()
            for r, k in enumerate(cut):
                xp[r, k + 1 :] = pool[rng.integers(0, len(pool), size=T - k - 1)]
            first_real = bool(rng.integers(0, 2))
            lp = None if first_real else ask(xp)
            real = ask(x)
            lp = ask(xp) if first_real else lp
            for r, k in enumerate(cut):
                a, b = real[r, : k + 1].astype(np.float64), lp[r, : k + 1].astype(np.float64)
                d = float(np.abs(a - b).max())
                probe_max = max(probe_max, d)
                if d > CAUSAL_RTOL * (1.0 + max(np.abs(a).max(), np.abs(b).max())):
                    raise RunFailure(
                        "non-causal model: changing the tokens after position "
                        f"{int(k)} changed the logits at or before it (max diff {d:.3g})"
                    )
            logits_all[b0 : b0 + eval_batch] = real
        # re-ask a re-mixed batch: windows must be answered identically (stateless, independent)
        n = len(x_all)
        half = min(eval_batch // 2, n // 2)
        rows = np.concatenate([np.arange(half), np.arange(n - half, n)])[::-1].copy()
        d = float(np.abs(ask(x_all[rows]).astype(np.float64) - logits_all[rows]).max())
        child.send(b"D")
    if d > CAUSAL_RTOL * (1.0 + float(np.abs(logits_all[rows]).max())):
        raise RunFailure(
            "the model answered the same windows differently when asked again in another "
            f"batch (max diff {d:.3g}): it keeps state between calls or mixes windows of a batch"
        )
    rec.update(probe_max_diff=probe_max, eval_windows=n)
    return log_softmax_nll(logits_all, y_all)


def main_for(label: str, spec: dict, eval_text_path: str) -> int:
    seed = int(os.environ.get("MLSBENCH_SEED", "0"))
    out_dir = out_dir_from_env()
    d, L, T = spec["d_model"], spec["n_layer"], spec["block_size"]
    cfg = dict(
        vocab_size=S.VOCAB,
        d_model=d,
        n_layer=L,
        n_head=spec["n_head"],
        block_size=T,
        max_params=S.param_cap(d, L, T),
        body_params=S.body_params(d, L),
    )
    if os.environ.get("MLSBENCH_BUDGET_CHECK") == "1":
        return write_budget_verdict(out_dir, label, lambda: check_budget(cfg, seed))
    budget = {k: spec[k] for k in ("steps", "batch_size")}
    rec = dict(setting=label, seed=seed, status="error", error=None, block_size=T, **budget)
    rec["param_cap"] = cfg["max_params"]
    nll, t0 = None, time.time()
    try:
        text = Path(S.TRAIN_TEXT).read_bytes()
        state = train(rec, cfg, seed, spec["steps"], spec["batch_size"], text)
        eval_text = Path(eval_text_path).read_bytes()
        nll = evaluate(rec, cfg, seed, state, eval_text, spec["eval_windows"])
        rec.update(status="ok", bpc=float(nll.mean() / math.log(2)), n_chars=int(nll.size))
    except Exception as e:  # RunFailure: a rule broken; else a malformed frame or a harness bug
        known = isinstance(e, RunFailure)
        rec["error"] = str(e) if known else "harness error:\n" + traceback.format_exc()[-3000:]
        nll = None
    rec["wall_s"] = round(time.time() - t0, 2)
    write_artifacts(out_dir, rec, arrays={"nll": nll})
    if rec["status"] != "ok":
        print(f"[{label}] seed={seed} FAILED: {rec['error']}")
    else:
        print(
            f"[{label}] seed={seed} bpc={rec['bpc']:.4f} params={rec['n_params']}/"
            f"{rec['param_cap']} train_loss={rec['train_loss_last50']:.4f} "
            f"wall={rec['wall_s']}s isolation={rec['isolation']}"
        )
    return 0  # the grader fails a failed setting with the message above
