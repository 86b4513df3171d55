"""Fixed harness: data-parallel training simulated in one trusted parent process.

The parent owns the data, the labels, the model and the optimiser. Every step it computes each
worker's stochastic gradient on that worker's shard and sends it (float32 bytes) to the worker's
own spawned process, where the editable Compressor turns it into a payload. The parent parses
each payload, counts its bits (comm.py), fails the run at once if a worker's bits for the step
exceed the budget, and forwards the canonical payloads -- and nothing else -- to the aggregator's
own spawned process, which returns the aggregated gradient (or a reply broadcast to every worker
for another round of the same step, counted the same way). The parent applies SGD with momentum
to the aggregated gradient. The test set's labels never reach this process; it writes test
predictions, and the grader scores them. Artifacts are written after every child has exited.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

import comm

MAX_ROUNDS = 4  # rounds of communication per step (payload -> reply -> payload ...)
MSG_TIMEOUT_S = 60.0  # a child that does not answer within this fails the run


class RunFailed(Exception):
    pass


def _recv(conn, who):
    if not conn.poll(MSG_TIMEOUT_S):
        raise RunFailed(f"{who} did not answer within {MSG_TIMEOUT_S:.0f} s")
    try:
        msg = conn.recv_bytes()
    except EOFError:
        raise RunFailed(f"{who} exited unexpectedly") from None
    if msg[:1] == b"X":
        raise RunFailed(msg[1:].decode("utf-8", "replace"))
    return msg


def _send(conn, data, who):
    try:
        conn.send_bytes(data)
    except OSError:  # the child is gone: report what it said before it exited, if anything
        msg = ""
        try:
            if conn.poll(1.0):
                raw = conn.recv_bytes()
                msg = raw[1:].decode("utf-8", "replace") if raw[:1] == b"X" else ""
        except (EOFError, OSError):
            pass
        raise RunFailed(msg or f"{who} exited unexpectedly") from None


def train(spec, seed):
    import multiprocessing as mp

    import torch
    import torch.nn.functional as F

    import data
    import models

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    np.random.seed(seed)
    x_tr, y_tr = data.load_train(spec["dataset"])
    x_te = data.load_test_images(spec["dataset"])
    side = x_tr.shape[-1]
    model = models.build(spec, side)
    params = list(model.parameters())
    names = [n for n, _ in model.named_parameters()]
    shapes = [list(p.shape) for p in params]
    numel = sum(p.numel() for p in params)
    K, ratio = int(spec["workers"]), float(spec["ratio"])
    budget = int(math.floor(32 * numel / ratio))
    steps, batch, lr0, mom = (
        int(spec["steps"]),
        int(spec["batch"]),
        float(spec["lr"]),
        float(spec["momentum"]),
    )

    rng = np.random.default_rng(seed)
    shards = np.array_split(rng.permutation(len(x_tr)), K)
    worker_rngs = [np.random.default_rng([seed, w]) for w in range(K)]
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)

    def worker_grads(idx):
        """-> (K, numel) float32 array of the workers' minibatch gradients, mean loss."""
        if spec["model"] == "cnn":  # one vmapped pass over the K workers (same maths, faster)
            from torch.func import functional_call, grad_and_value, vmap

            pd = {n: p.detach() for n, p in model.named_parameters()}

            def loss_fn(pp, x, y):
                return F.cross_entropy(functional_call(model, pp, (x,)), y)

            gd, lv = vmap(grad_and_value(loss_fn), in_dims=(None, 0, 0))(
                pd, torch.stack([xt[i] for i in idx]), torch.stack([yt[i] for i in idx])
            )
            g = torch.cat([gd[n].reshape(K, -1) for n in names], dim=1)
            return g.numpy().astype("<f4"), float(lv.mean())
        out, tot = np.empty((K, numel), dtype="<f4"), 0.0
        for w in range(K):
            model.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xt[idx[w]]), yt[idx[w]])
            loss.backward()
            tot += float(loss.detach()) / K
            out[w] = torch.cat([p.grad.reshape(-1) for p in params]).numpy()
        return out, tot

    ctx = mp.get_context("spawn")
    procs, wconns = [], []
    for w in range(K):
        a, b = ctx.Pipe(duplex=True)
        p = ctx.Process(
            target=comm.worker_main, args=(b, w, K, names, shapes, budget, seed), daemon=True
        )
        procs.append(p)
        wconns.append(a)
    sa, sb = ctx.Pipe(duplex=True)
    sp = ctx.Process(
        target=comm.server_main, args=(sb, K, names, shapes, budget, seed), daemon=True
    )
    procs.append(sp)
    for p in procs:
        p.start()

    rec = dict(
        workers=K,
        ratio=ratio,
        numel=int(numel),
        budget_bits=budget,
        steps=steps,
        steps_done=0,
        max_worker_bits=0,
        max_reply_bits=0,
        total_uplink_bits=0,
        max_rounds=0,
        violation=None,
        error=None,
    )
    bufs = [torch.zeros_like(p) for p in params]
    losses = []
    t0 = time.time()
    try:
        for step in range(steps):
            lr = lr0 * 0.5 * (1.0 + math.cos(math.pi * step / steps))
            # each worker's stochastic gradient on its own shard
            idx = [
                torch.from_numpy(worker_rngs[w].choice(shards[w], batch, replace=False))
                for w in range(K)
            ]
            flat, step_loss = worker_grads(idx)
            for w in range(K):
                _send(wconns[w], b"G" + comm.pack_ints(step) + flat[w].tobytes(), f"worker {w}")
            losses.append(step_loss)
            sent = [0] * K
            reply_bits = 0
            for rnd in range(MAX_ROUNDS):
                blobs = []
                for w in range(K):
                    msg = _recv(wconns[w], f"worker {w}")
                    if msg[:1] != b"P":
                        raise RunFailed(f"protocol error from worker {w}")
                    try:
                        canon, bits, _ = comm.parse(msg[1:])
                    except comm.PayloadError as e:
                        raise RunFailed(f"worker {w}, step {step}: invalid payload: {e}") from None
                    sent[w] += bits
                    rec["total_uplink_bits"] += bits
                    if sent[w] > budget:
                        rec["max_worker_bits"] = max(rec["max_worker_bits"], sent[w])
                        rec["violation"] = (
                            f"bit budget exceeded: worker {w} sent {sent[w]} bits at step "
                            f"{step} (budget {budget} bits = 32 x {numel} / {ratio:g})"
                        )
                        raise RunFailed(rec["violation"])
                    blobs.append(canon)
                _send(
                    sa,
                    b"A" + comm.pack_ints(step, rnd, K, *[len(b) for b in blobs]) + b"".join(blobs),
                    "the aggregator",
                )
                msg = _recv(sa, "the aggregator")
                rec["max_rounds"] = max(rec["max_rounds"], rnd + 1)
                if msg[:1] == b"G":
                    break
                if msg[:1] != b"R":
                    raise RunFailed("protocol error from the aggregator")
                if rnd + 1 >= MAX_ROUNDS:
                    raise RunFailed(
                        f"step {step}: the aggregator asked for more than {MAX_ROUNDS} rounds"
                    )
                try:
                    canon, bits, _ = comm.parse(msg[1:])
                except comm.PayloadError as e:
                    raise RunFailed(f"step {step}: invalid reply payload: {e}") from None
                reply_bits += bits
                rec["max_reply_bits"] = max(rec["max_reply_bits"], reply_bits)
                if reply_bits > budget:
                    rec["violation"] = (
                        f"bit budget exceeded: the aggregator's replies at step {step} "
                        f"total {reply_bits} bits (budget {budget} bits)"
                    )
                    raise RunFailed(rec["violation"])
                for w in range(K):
                    _send(wconns[w], b"R" + comm.pack_ints(step, rnd + 1) + canon, f"worker {w}")
            rec["max_worker_bits"] = max(rec["max_worker_bits"], max(sent))
            agg = np.frombuffer(msg, dtype="<f4", offset=1)
            if agg.size != numel:
                raise RunFailed("the aggregated gradient has the wrong size")
            if not np.all(np.isfinite(agg)):
                raise RunFailed(f"step {step}: the aggregated gradient contains NaN or inf")
            agg = torch.from_numpy(agg.copy())
            with torch.no_grad():
                i = 0
                for p, buf in zip(params, bufs):
                    n = p.numel()
                    buf.mul_(mom).add_(agg[i : i + n].view_as(p))
                    p.add_(buf, alpha=-lr)
                    i += n
            rec["steps_done"] = step + 1
    except RunFailed as e:
        rec["error"] = str(e)
    finally:
        for c in wconns + [sa]:
            try:
                c.send_bytes(b"Q")
            except Exception:  # noqa: BLE001
                pass
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()
        for c in wconns + [sa]:
            c.close()
    rec["train_wall_s"] = round(time.time() - t0, 3)
    rec["final_train_loss"] = float(np.mean(losses[-20:])) if losses else None
    rec["mean_worker_bits_per_step"] = rec["total_uplink_bits"] / max(1, K * rec["steps_done"])
    preds = None
    if rec["error"] is None:
        with torch.no_grad():
            preds = model(torch.from_numpy(x_te)).argmax(1).numpy().astype(np.int64)
    rec["status"] = "ok" if rec["error"] is None else "error"
    return preds, rec


def write_artifacts(out_dir: Path, preds, record: dict) -> None:
    """Called after every child has exited: wipe out_dir, then write ours."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in out_dir.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    if preds is not None:
        np.save(out_dir / "preds.npy", preds, allow_pickle=False)
    (out_dir / "run.json").write_text(json.dumps(record, indent=1))


def out_dir_from_env() -> Path:
    """Read MLSBENCH_OUT and remove it from the environment before any child starts."""
    out = os.environ.pop("MLSBENCH_OUT", None)
    return Path(out) if out else Path("out")
