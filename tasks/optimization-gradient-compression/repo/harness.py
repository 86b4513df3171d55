"""Fixed harness: data-parallel training simulated in one trusted parent process.

The parent owns the data, the labels, the model and the optimiser. Every step it computes each
worker's stochastic gradient on that worker's shard and sends it (float32 bytes) to the worker's
own process (a task kit Child, workers.py: it reads compressor.py and nothing else), where
the editable Compressor turns it into a payload. The parent parses each payload, counts its bits (comm.py), fails the run at once if a worker's bits for the step
exceed the budget, and forwards the canonical payloads -- and nothing else -- to the aggregator's
own process, which returns the aggregated gradient (or a reply broadcast to every worker
for another round of the same step, counted the same way). The parent applies SGD with momentum
to the aggregated gradient. The test set's labels never reach this process; it writes test
predictions, and the grader scores them. Artifacts are written after every child has exited.
"""
from __future__ import annotations

import math
import time

import numpy as np
from taskkit import Child, RunFailure, close_all

import comm

MAX_ROUNDS = 4            # rounds of communication per step (payload -> reply -> payload ...)
MSG_TIMEOUT_S = 60.0      # a child that does not answer within this fails the run


def _ask(child: Child, who: str, kind: bytes, payload: bytes, reply: tuple[bytes, ...],
         maxlength: int) -> bytes:
    """Send a frame to ``child``, return its answer (of a kind in ``reply``, at most
    ``maxlength`` bytes); a failure names who failed."""
    try:
        child.send(kind, payload)  # if it is gone, the frame it left (X, V) says why
        msg = child.recv(maxlength=maxlength)
    except RunFailure as e:
        raise RunFailure(f"{who}: {e}") from None
    if msg[:1] not in reply:
        raise RunFailure(f"protocol error from {who}: a frame of kind {msg[:1]!r}")
    return msg


def train(spec, seed):
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
    steps, batch, lr0, mom = int(spec["steps"]), int(spec["batch"]), float(spec["lr"]), float(spec["momentum"])

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
                pd, torch.stack([xt[i] for i in idx]), torch.stack([yt[i] for i in idx]))
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

    rec = dict(workers=K, ratio=ratio, numel=int(numel), budget_bits=budget, steps=steps,
               steps_done=0, max_worker_bits=0, max_reply_bits=0, total_uplink_bits=0,
               max_rounds=0, violation=None, error=None, isolation=None)
    bufs = [torch.zeros_like(p) for p in params]
    losses = []
    # the largest frame a child may send: the gradient's float32 bytes or the whole budget as
    # bool bytes (a payload over the budget is parsed, counted and refused by its bits)
    max_frame = max(4 * numel, budget) + (1 << 20)
    t0 = time.time()
    try:
        # every worker and the aggregator in a process of its own that reads compressor.py
        # and nothing else of this folder; the payloads below are all that crosses
        workers = [Child("workers:worker_main", w, K, names, shapes, budget, seed,
                         may_read=["compressor.py"], name=f"worker {w}", timeout_s=MSG_TIMEOUT_S)
                   for w in range(K)]
        server = Child("workers:server_main", K, names, shapes, budget, seed,
                       may_read=["compressor.py"], name="aggregator", timeout_s=MSG_TIMEOUT_S)
        rec["isolation"] = server.isolation
        for step in range(steps):
            lr = lr0 * 0.5 * (1.0 + math.cos(math.pi * step / steps))
            # each worker's stochastic gradient on its own shard
            idx = [torch.from_numpy(worker_rngs[w].choice(shards[w], batch, replace=False)) for w in range(K)]
            flat, step_loss = worker_grads(idx)
            msgs = [_ask(workers[w], f"worker {w}", b"G", comm.pack_ints(step) + flat[w].tobytes(),
                         (b"P",), max_frame) for w in range(K)]
            losses.append(step_loss)
            sent = [0] * K
            reply_bits = 0
            for rnd in range(MAX_ROUNDS):
                blobs = []
                for w in range(K):
                    msg = msgs[w]
                    try:
                        canon, bits, _ = comm.parse(msg[1:])
                    except comm.PayloadError as e:
                        raise RunFailure(f"worker {w}, step {step}: invalid payload: {e}") from None
                    sent[w] += bits
                    rec["total_uplink_bits"] += bits
                    if sent[w] > budget:
                        rec["max_worker_bits"] = max(rec["max_worker_bits"], sent[w])
                        rec["violation"] = (f"bit budget exceeded: worker {w} sent {sent[w]} bits at step "
                                            f"{step} (budget {budget} bits = 32 x {numel} / {ratio:g})")
                        raise RunFailure(rec["violation"])
                    blobs.append(canon)
                msg = _ask(server, "the aggregator", b"A",
                           comm.pack_ints(step, rnd, K, *[len(b) for b in blobs]) + b"".join(blobs),
                           (b"G", b"R"), max_frame)
                rec["max_rounds"] = max(rec["max_rounds"], rnd + 1)
                if msg[:1] == b"G":
                    break
                if rnd + 1 >= MAX_ROUNDS:
                    raise RunFailure(f"step {step}: the aggregator asked for more than {MAX_ROUNDS} rounds")
                try:
                    canon, bits, _ = comm.parse(msg[1:])
                except comm.PayloadError as e:
                    raise RunFailure(f"step {step}: invalid reply payload: {e}") from None
                reply_bits += bits
                rec["max_reply_bits"] = max(rec["max_reply_bits"], reply_bits)
                if reply_bits > budget:
                    rec["violation"] = (f"bit budget exceeded: the aggregator's replies at step {step} "
                                        f"total {reply_bits} bits (budget {budget} bits)")
                    raise RunFailure(rec["violation"])
                msgs = [_ask(workers[w], f"worker {w}", b"R", comm.pack_ints(step, rnd + 1) + canon,
                             (b"P",), max_frame) for w in range(K)]
            rec["max_worker_bits"] = max(rec["max_worker_bits"], max(sent))
            agg = np.frombuffer(msg, dtype="<f4", offset=1)
            if agg.size != numel:
                raise RunFailure("the aggregated gradient has the wrong size")
            if not np.all(np.isfinite(agg)):
                raise RunFailure(f"step {step}: the aggregated gradient contains NaN or inf")
            agg = torch.from_numpy(agg.copy())
            with torch.no_grad():
                i = 0
                for p, buf in zip(params, bufs):
                    n = p.numel()
                    buf.mul_(mom).add_(agg[i:i + n].view_as(p))
                    p.add_(buf, alpha=-lr)
                    i += n
            rec["steps_done"] = step + 1
        for child in [*workers, server]:  # done: each returns, and exits
            child.send(b"D")
            if child.close() != 0:
                raise RunFailure(f"the {child.name} process did not exit cleanly after the run")
    except RunFailure as e:
        rec["error"] = str(e)
    finally:
        close_all()
    rec["train_wall_s"] = round(time.time() - t0, 3)
    rec["final_train_loss"] = float(np.mean(losses[-20:])) if losses else None
    rec["mean_worker_bits_per_step"] = (rec["total_uplink_bits"] / max(1, K * rec["steps_done"]))
    preds = None
    if rec["error"] is None:
        with torch.no_grad():
            preds = model(torch.from_numpy(x_te)).argmax(1).numpy().astype(np.int64)
    rec["status"] = "ok" if rec["error"] is None else "error"
    return preds, rec
