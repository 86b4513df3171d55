"""Fixed harness (trusted): the parent of a run. It never imports the agent's code; the model
runs in the task kit's children (worker.py), which read model.py and nothing else of this folder.

  parent   loads the data (training backbones and their sequences, test backbones; the test
           sequences are not in this directory: only the grader has them)
  train    the child builds the model and sends its state's layout and initial values; the
           parent owns the optimizer: every step it sends its state and one batch of training
           backbones and sequences, gets the loss and the gradients back, and takes the AdamW
           step itself (fixed schedule, `epochs` epochs of batch 8). A parameter the child
           changed is caught by comparing the state it returns with the one it was sent; the
           parent counts the steps and the state's numbers (the cap)
  design   a fresh child loads the trained state and answers logits for batches of test
           backbones; the parent applies log_softmax, then re-asks a re-mixed subset: the answers
           must be identical (a backbone's design depends on that backbone only)
  budget   (MLSBENCH_BUDGET_CHECK=1, task.yaml's budget_check) a child builds the model and
           sends its state; this parent counts it against the cap and writes the verdict
           (budget_check.json); nothing is trained
Artifacts (log-probabilities, record) are written after every child has exited.
"""

from __future__ import annotations

import os
import time
import traceback

import numpy as np
import settings as S
from taskkit import Child, RunFailure, out_dir_from_env, write_artifacts, write_budget_verdict
from taskkit.torchstate import ParentState, warmup_cosine

STATE_RTOL = 1e-5
AGENT_FILES = ("model.py",)  # all that the model's processes may read of this folder


def make_cfg(length: int) -> dict:
    return dict(
        length=int(length), n_aa=len(S.ALPHABET), alphabet=S.ALPHABET, max_params=S.PARAM_CAP
    )


def train(rec: dict, cfg: dict, seed: int, epochs: int, Xtr, Ytr) -> bytes:
    """Train in a child with the parent's AdamW; returns the trained state (float32 bytes)."""
    with Child("worker:train", cfg, seed, may_read=AGENT_FILES, name="training") as child:
        state = ParentState.receive(child, cap=S.PARAM_CAP)
        state.adamw(S.LR, weight_decay=S.WEIGHT_DECAY)
        rng = np.random.default_rng(seed)
        per_epoch = len(Xtr) // S.BATCH_SIZE
        total, losses = epochs * per_epoch, []
        t0 = time.time()
        for step in range(total):
            if step % per_epoch == 0:
                perm = rng.permutation(len(Xtr))
            idx = perm[(step % per_epoch) * S.BATCH_SIZE :][: S.BATCH_SIZE]
            batch = Xtr[idx].tobytes() + Ytr[idx].tobytes()
            lr = warmup_cosine(step, total, S.LR, max(1, total // 20))  # 5% warmup, decay to 0
            losses.append(state.step(child, step, batch, lr)[0])
        child.send(b"D")
        rec.update(
            n_params=int(state.layout["count"]),
            n_state=state.n,
            steps=total,
            n_train=len(Xtr),
            n_trainable=state.n_trained,
            train_loss_last_epoch=float(np.mean(losses[-per_epoch:])),
            train_s=round(time.time() - t0, 2),
            isolation=child.isolation,
        )
    return state.bytes()


def check_budget(cfg: dict, seed: int) -> dict:
    """The cap, counted here in the parent on the state the model's process sends (what
    training would hold); the verdict of task.yaml's budget_check."""
    with Child("worker:measure", cfg, seed, may_read=AGENT_FILES, name="budget check") as child:
        state = ParentState.receive(child)
    return state.budget_verdict(S.PARAM_CAP)


def measure_budget(spec: dict, seed: int) -> dict:
    length = np.load(spec["train_x"], allow_pickle=False, mmap_mode="r").shape[1]
    return check_budget(make_cfg(length), seed)


def design(cfg: dict, seed: int, state: bytes, Xte, eval_batch: int = 64):
    """Log-probabilities of the test backbones from a fresh child, re-asked once re-mixed."""
    import torch

    L, A = cfg["length"], cfg["n_aa"]
    with Child("worker:design", cfg, seed, state, may_read=AGENT_FILES, name="design") as child:

        def ask(x):
            child.send(b"Q", np.ascontiguousarray(x, dtype="<f4").tobytes())
            out = np.frombuffer(child.expect(b"O", size=4 * len(x) * L * A), "<f4")
            if not np.all(np.isfinite(out)):
                raise RunFailure("the model returned non-finite predictions")
            return torch.log_softmax(torch.from_numpy(out.reshape(-1, L, A).copy()), -1).numpy()

        pred = np.concatenate(
            [ask(Xte[b : b + eval_batch]) for b in range(0, len(Xte), eval_batch)]
        )
        rows = np.random.default_rng(10_000 + seed).permutation(len(Xte))
        rows = rows[: min(eval_batch, len(Xte)) - 1]
        d = float(np.abs(ask(Xte[rows]).astype(np.float64) - pred[rows]).max())
        if d > STATE_RTOL * (1.0 + float(np.abs(pred[rows]).max())) + 1e-4:
            raise RunFailure(
                "the model answered the same backbones differently when asked again in another "
                f"batch (max diff {d:.3g}): it keeps state between calls or mixes the backbones "
                "of a batch"
            )
        child.send(b"D")
    return pred


def main_for(label: str, spec: dict, test_x_path: str) -> int:
    out_dir = out_dir_from_env()
    seed = int(os.environ.get("MLSBENCH_SEED", "0"))
    if os.environ.get("MLSBENCH_BUDGET_CHECK") == "1":
        return write_budget_verdict(out_dir, label, lambda: measure_budget(spec, seed))
    epochs = int(spec["epochs"])
    rec = {"setting": label, "seed": seed, "status": "error", "error": None, "epochs": epochs}
    rec.update(batch_size=S.BATCH_SIZE, lr=S.LR, param_cap=S.PARAM_CAP)
    pred, t0 = None, time.time()
    try:
        Xtr = np.load(spec["train_x"], allow_pickle=False).astype("<f4")
        Ytr = np.load(spec["train_seq"], allow_pickle=False).astype(np.int8)
        Xte = np.load(test_x_path, allow_pickle=False).astype("<f4")
        if Xte.shape[1] != Xtr.shape[1]:
            raise RunFailure("test and training backbones differ in length")
        cfg = make_cfg(Xtr.shape[1])
        state = train(rec, cfg, seed, epochs, Xtr, Ytr)
        pred = design(cfg, seed, state, Xte)
        rec.update(status="ok", n_test=len(Xte))
    except RunFailure as e:
        rec["error"] = str(e)
    except Exception:  # a malformed frame from a child, or a harness bug
        rec["error"] = "harness error:\n" + traceback.format_exc()[-3000:]
    rec["wall_s"] = round(time.time() - t0, 2)
    write_artifacts(out_dir, rec, arrays={"pred": pred if rec["status"] == "ok" else None})
    if rec["status"] != "ok":
        print(f"[{label}] seed={seed} FAILED: {rec['error']}")
        return 0  # the grader fails the setting with this message (exit 0 so that it is called)
    print(
        f"[{label}] seed={seed} epochs={epochs} params={rec['n_params']}/{rec['param_cap']} "
        f"train_ce={rec['train_loss_last_epoch']:.4f} train_s={rec['train_s']} "
        f"wall={rec['wall_s']}s isolation={rec['isolation']} (test recovery/perplexity are "
        "computed by the grader; the test sequences are not in this directory)"
    )
    return 0
