"""Fixed harness: train the GPT, then decode validation text token by token through the attention
module's returned cache, and count that cache's bytes. Trust layout:

  parent (this process; never imports torch or the editable attention.py)
    owns the text, the token order, every count and loss, holds the cache between steps, and
    writes run.json after every child has exited
  trainer (worker.train, a task-kit Child): builds and trains the model, sends the trained
    weights as bytes BEFORE it sees any validation token, then computes full-sequence forwards
    of the validation chunks (one per call, in a random order, mixed with causality probes
    whose later tokens are changed)
  decoders A and B (worker.decode, two more Childs): get the weights from the parent and run
    decoding steps. The parent sends each step (token, position, cache) to one of them, drawn
    from os.urandom, so whatever a module keeps outside the returned cache is missing from the
    other process at about every other step.

Every child reads attention.py and nothing else of this folder, writes only its scratch folder
and cannot see this process (the kit's privilege drop). Measurements are the parent's, on the
raw bytes it received: a step's reply is the cache's structure (dtype and shape per tensor) and
its bytes; the parent checks that the structure accounts for exactly those bytes, counts them,
and sends the same bytes (and a structure it rebuilt) with the next step. Nothing else passes
from step to step, so the count is everything the module may know about the earlier tokens.

Checks that fail the setting (run.json status "failed" with the reason): parameters above the cap
(1.1x the default multi-head model), counted from the weights' bytes; a cache that is not None or
a tuple/list of <= 16 plain tensors with >= 1 element, or bytes its structure does not account
for; a causality probe whose earlier logits changed; decoding that disagrees with the full
forward (max |delta log p|); the module's state changing while it decodes (a decoder's own check,
which names the change); any exception, timeout or protocol error in a child.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import struct
import sys
import time
from pathlib import Path

import numpy as np
from taskkit import Child, RunFailure, out_dir_from_env, write_artifacts, write_budget_verdict

MAX_TENSORS = 16
MAX_DIMS = 8
# "done" frames are read with room for a failure's traceback: the kit's expect(kind, size=0)
# would cut it at one byte
LOGP_TOL = 2e-3  # max |log p| difference between decoding and the full forward
CAUSAL_TOL = 1e-4  # max |logit| change at earlier positions in a causality probe
PARAM_CAP = 1.10
MAX_CACHE_FACTOR = 16  # a cache above 16x the float32 multi-head cache is refused, not counted
ITEMSIZE = {
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float64": 8,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "bool": 1,
}
VOCAB = 128
# the editable module; the fixed modules the children run it in (gpt.py, worker.py) are
# imported before the drop, and the kit keeps those readable (tracebacks quote them); no
# text, setting or harness file
MAY_READ = ("attention.py",)


def default_param_count(d_model: int, n_layer: int, block_size: int, vocab: int = VOCAB) -> int:
    """Parameters of gpt.GPT with the default multi-head attention (q, k, v and output
    projections with biases): the reference for the parameter cap."""
    d = d_model
    attn = 4 * d * d + 4 * d
    mlp = d * 4 * d + 4 * d + 4 * d * d + d
    per_layer = attn + mlp + 4 * d  # + two LayerNorms
    return vocab * d + block_size * d + n_layer * per_layer + 2 * d + d * vocab


def structure(header, n_bytes: int, limit: int, what: str) -> tuple[list, int]:
    """Check a child's description of a list of per-layer caches against the ``n_bytes`` it
    sent; returns (the description rebuilt from checked values only, number of values)."""

    def bad(why: str) -> RunFailure:
        return RunFailure(f"protocol error: {what}: {why}")

    if not isinstance(header, list):
        raise bad("the description is not a list of layers")
    clean, total, values = [], 0, 0
    for i, layer in enumerate(header):
        if layer is None:
            clean.append(None)
            continue
        if not isinstance(layer, dict) or set(layer) != {"kind", "tensors"}:
            raise bad(f"layer {i} is not None or {{kind, tensors}}")
        kind, tensors = layer["kind"], layer["tensors"]
        if kind not in ("tuple", "list") or not isinstance(tensors, list):
            raise bad(f"layer {i}: the cache must be None or a tuple/list of tensors")
        if len(tensors) > limit:
            raise bad(f"layer {i}: at most {limit} tensors in the cache, got {len(tensors)}")
        entries = []
        for j, entry in enumerate(tensors):
            ok = isinstance(entry, list) and len(entry) == 2 and entry[0] in ITEMSIZE
            shape = entry[1] if ok else None
            if not (
                isinstance(shape, list)
                and len(shape) <= MAX_DIMS
                and all(type(s) is int and 1 <= s < 2**40 for s in shape)
            ):
                raise bad(f"layer {i} tensor {j}: not [dtype, shape] of a non-empty tensor")
            n = math.prod(shape)
            values += n
            total += n * ITEMSIZE[entry[0]]
            entries.append([entry[0], list(shape)])
        clean.append({"kind": kind, "tensors": entries})
    if total != n_bytes:
        raise bad(f"its tensors hold {total} bytes, but {n_bytes} bytes came with it")
    return clean, values


def _unframe(payload: bytes, what: str):
    try:
        (n,) = struct.unpack_from("<I", payload)
        return json.loads(payload[4 : 4 + n]), payload[4 + n :]
    except (struct.error, ValueError) as e:
        raise RunFailure(f"protocol error: {what} is malformed ({e})") from None


def _frame(kind: bytes, meta, raw: bytes = b"") -> tuple[bytes, bytes]:
    text = json.dumps(meta).encode()
    return kind, struct.pack("<I", len(text)) + text + raw


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def read_text(path: Path) -> bytes:
    raw = Path(path).read_bytes()
    if any(b >= 128 for b in raw):
        raise SystemExit(f"{path}: non-ASCII bytes; the vocabulary is 7-bit ASCII")
    return raw


def val_chunks(val_raw: bytes, n: int, length: int) -> np.ndarray:
    """n chunks of length+1 tokens, evenly spaced over the text (fixed, not seeded)."""
    starts = np.linspace(0, len(val_raw) - length - 2, n).astype(np.int64)
    arr = np.frombuffer(val_raw, dtype=np.uint8).astype(np.int64)
    return np.stack([arr[s : s + length + 1] for s in starts])


def _full_forwards(trainer: Child, inputs: np.ndarray, rng: random.Random) -> np.ndarray:
    """The trainer's full-sequence logits of every chunk; fails a non-causal model."""
    N, T = inputs.shape
    probes = []
    for i in rng.sample(range(N), min(4, N)):
        p = rng.randrange(1, T - 1)
        pert = inputs[i].copy()
        pert[p:] = [rng.randrange(32, 127) for _ in range(T - p)]
        probes.append((i, p, pert))
    jobs = [("full", i, inputs[i]) for i in range(N)]
    jobs += [("probe", k, pr[2]) for k, pr in enumerate(probes)]
    rng.shuffle(jobs)
    full = np.zeros((N, T, VOCAB), dtype=np.float32)
    probe_out = {}
    for kind, i, toks in jobs:
        trainer.send(b"F", np.ascontiguousarray(toks, dtype="<i8").tobytes())
        raw = trainer.expect(b"L", size=T * VOCAB * 4, timeout_s=300)
        out = np.frombuffer(raw, dtype="<f4").reshape(T, VOCAB)
        if kind == "full":
            full[i] = out
        else:
            probe_out[i] = out
    trainer.send(b"D")
    trainer.expect(b"K", maxlength=1 << 16)
    if not np.all(np.isfinite(full)):
        raise RunFailure("the full-sequence forward produced NaN or inf logits")
    for k, (i, p, _) in enumerate(probes):
        delta = float(np.abs(probe_out[k][:p] - full[i][:p]).max())
        if delta > CAUSAL_TOL:
            raise RunFailure(
                f"non-causal attention: changing the tokens from position {p} on changed "
                f"the logits at earlier positions (max |delta| = {delta:.3g})"
            )
    return full


def _decode(decoders: list[Child], inputs: np.ndarray, max_cache: int, rng: random.Random):
    """Decode every chunk one token per step, each step in a decoder drawn at random; returns
    (logits (N, T, VOCAB), bytes counted over the steps, cached positions over the steps)."""
    N, T = inputs.shape
    inc = np.zeros((N, T, VOCAB), dtype=np.float32)
    header, raw = None, b""
    total_bytes = total_pos = 0
    for t in range(T):
        child = rng.choice(decoders)
        tokens = np.ascontiguousarray(inputs[:, t], dtype="<i8").tobytes()
        child.send(*_frame(b"S", {"pos": t, "header": header}, tokens + raw))
        reply = child.expect(b"C", maxlength=max_cache + N * VOCAB * 4 + (1 << 20))
        meta, rest = _unframe(reply, "a decoding step's reply")
        if len(rest) < N * VOCAB * 4:
            raise RunFailure(f"protocol error: a decoding step's reply of {len(rest)} bytes")
        raw, logits = rest[: -N * VOCAB * 4], rest[-N * VOCAB * 4 :]
        header, _ = structure(meta, len(raw), MAX_TENSORS, "the cache after a decoding step")
        if len(raw) > max_cache:
            raise RunFailure(f"the cache holds {len(raw)} bytes, over the limit of {max_cache}")
        inc[:, t] = np.frombuffer(logits, dtype="<f4").reshape(N, VOCAB)
        total_bytes += len(raw)
        total_pos += N * (t + 1)
    for child in decoders:
        child.send(b"D")
        child.expect(b"K", maxlength=1 << 16)
    return inc, total_bytes, total_pos


def run(cfg: dict, seed: int, train_raw: bytes, val_raw: bytes) -> dict:
    T, N = cfg["block_size"], cfg["val_chunks"]
    chunks = val_chunks(val_raw, N, T)  # (N, T+1)
    inputs, targets = chunks[:, :-1], chunks[:, 1:]
    cap = param_cap(cfg)
    # 16x the float32 multi-head cache of the whole batch at full context
    max_cache = MAX_CACHE_FACTOR * N * T * 8 * cfg["d_model"] * cfg["n_layer"]
    rec = {"param_cap": cap}
    t0 = time.time()
    try:
        trainer = Child(
            "trainer:train",
            cfg,
            seed,
            train_raw,
            may_read=MAY_READ,
            name="trainer",
            timeout_s=600,
        )
        rec["isolation"] = trainer.isolation
        meta, _ = _unframe(trainer.expect(b"N", maxlength=4096), "the parameter count")
        if not isinstance(meta, dict) or int(meta.get("n_params", 1 << 62)) > cap:
            raise RunFailure(
                f"parameter cap exceeded: the model has {meta.get('n_params')} parameters, "
                f"the cap is {cap} (1.1x the default multi-head model)"
            )
        # the decoders start (and import torch) while the trainer trains
        decoders = [
            Child("worker:decode", cfg, seed, N, may_read=MAY_READ, name=f"decoder {c}")
            for c in "AB"
        ]
        timeout = cfg["train_timeout_s"]
        reply = trainer.expect(b"W", maxlength=64 * cap + (1 << 24), timeout_s=timeout)
        meta, state_raw = _unframe(reply, "the trained weights")
        if not isinstance(meta, dict) or not isinstance(names := meta.get("names"), list):
            raise RunFailure("protocol error: the weights come without their names")
        header, counted = structure(meta.get("header"), len(state_raw), 10**6, "the weights")
        if len(header) != 1 or header[0] is None:
            raise RunFailure("protocol error: the weights are not one list of named tensors")
        if len(names) != len(header[0]["tensors"]):
            raise RunFailure("protocol error: the weights' names do not match their tensors")
        if counted > cap:
            raise RunFailure(
                f"parameter cap exceeded: the trained weights hold {counted} values, the cap "
                f"is {cap} (1.1x the default multi-head model)"
            )
        rec.update(
            n_params=counted,
            train_loss=float(meta.get("train_loss", math.nan)),
            train_s=meta.get("train_s"),
        )
        for d in decoders:
            d.send(*_frame(b"W", {"names": [str(n) for n in names], "header": header}, state_raw))
        rng = random.Random(int.from_bytes(os.urandom(8), "little"))
        full = _full_forwards(trainer, inputs, rng)
        trainer.close()
        for d in decoders:
            d.expect(b"K", maxlength=1 << 16, timeout_s=300)
        inc, total_bytes, total_pos = _decode(decoders, inputs, max_cache, rng)
        if not np.all(np.isfinite(inc)):
            raise RunFailure("decoding produced NaN or inf logits")
        lp_inc, lp_full = _log_softmax(inc), _log_softmax(full)
        delta = float(np.abs(lp_inc - lp_full).max())
        rec["max_logp_delta"] = delta
        if delta > LOGP_TOL:
            raise RunFailure(
                "decoding through the returned cache disagrees with the full-sequence forward "
                f"(max |delta log p| = {delta:.3g} > {LOGP_TOL}): the module keeps state outside "
                "the cache it returns, or its cache drops information the full forward uses"
            )
        nll = -np.take_along_axis(lp_inc, targets[..., None], axis=-1)[..., 0]
        rec.update(
            status="ok",
            val_bpc=float(nll.mean() / math.log(2)),
            kv_bytes_per_token=total_bytes / total_pos,
            val_tokens=int(N * T),
        )
    except RunFailure as e:
        rec.update(status="failed", reason=str(e))
    rec["wall_s"] = round(time.time() - t0, 2)
    return rec


def param_cap(cfg: dict) -> int:
    return int(PARAM_CAP * default_param_count(cfg["d_model"], cfg["n_layer"], cfg["block_size"]))


def check_budget(cfg: dict, seed: int) -> dict:
    """The cap, counted here in the parent on the weights of a freshly built model (the same
    count as on the trained weights of a run); the verdict of task.yaml's budget_check."""
    cap = param_cap(cfg)
    with Child("trainer:measure", cfg, seed, may_read=MAY_READ, name="budget check") as child:
        meta, raw = _unframe(child.expect(b"W", maxlength=64 * cap + (1 << 24)), "the weights")
        header = meta.get("header") if isinstance(meta, dict) else None
        _, counted = structure(header, len(raw), 10**6, "the weights")
    ok = counted <= cap
    message = (
        f"{'parameter cap exceeded: ' if not ok else ''}the model's weights hold {counted} "
        f"values, the cap is {cap} (1.1x the default multi-head model)"
    )
    return {"ok": ok, "message": message, "n_params": counted, "param_cap": cap}


def main(table: dict, argv=None) -> int:
    import argparse

    out_dir = out_dir_from_env()  # removed from the environment before any child exists
    ap = argparse.ArgumentParser()
    ap.add_argument("--setting", required=True, choices=sorted(table))
    args = ap.parse_args(argv)
    seed = int(os.environ.get("MLSBENCH_SEED", "0"))
    cfg = table[args.setting]
    if os.environ.get("MLSBENCH_BUDGET_CHECK") == "1":  # task.yaml's budget_check
        return write_budget_verdict(out_dir, args.setting, lambda: check_budget(cfg, seed))
    here = Path(__file__).resolve().parent
    final_val = Path("final_val.txt")
    val_path = final_val if final_val.is_file() else here / "data" / "val.txt"
    train_raw = read_text(here / "data" / "train.txt")
    val_raw = read_text(val_path)
    rec = run(cfg, seed, train_raw, val_raw)
    rec.update(
        setting=args.setting,
        seed=seed,
        val_source="final" if val_path == final_val else "visible",
        val_sha1=hashlib.sha1(val_raw).hexdigest(),
    )
    write_artifacts(out_dir, rec, record_name="run.json")
    if rec["status"] == "ok":
        print(
            f"[{args.setting}] seed={seed} val_bpc={rec['val_bpc']:.4f} "
            f"kv_bytes_per_token={rec['kv_bytes_per_token']:.1f} params={rec['n_params']}"
            f"/{rec['param_cap']} train_loss={rec['train_loss'] / math.log(2):.3f} bpc "
            f"max|dlogp|={rec['max_logp_delta']:.2e} train {rec['train_s']}s "
            f"wall {rec['wall_s']}s isolation {rec['isolation']}"
        )
        return 0
    # a failed check is a result, not a crash: run.json says why and the grader fails the
    # setting with that reason
    print(f"[{args.setting}] seed={seed} FAILED: {rec['reason']}", file=sys.stderr)
    return 0
