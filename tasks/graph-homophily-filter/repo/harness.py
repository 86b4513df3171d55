"""Fixed experiment harness: data -> graph filter (child process) -> trained readout -> artifacts.

The parent process generates the graph, owns every label and the train/val/test split, and runs
the editable `filters.build_filter` in the task kit's least-privileged child (filter_child.py:
it reads filters.py and nothing else of this folder, writes only its scratch folder), which
receives only the adjacency, the features, the training nodes and their labels. The child
returns the basis matrices as raw float64 bytes; the parent checks them, trains the readout
(readout.py) on the training labels, selects it on the validation labels, predicts the test
nodes and, after the child has exited, writes $MLSBENCH_OUT/predictions.npy and
$MLSBENCH_OUT/run.json for the grader.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import struct
import sys
import time
import zlib

import numpy as np

# taskkit is imported where used: the grader imports this module (generate, fingerprint)
# outside the workspace, where the kit is not on the path

MAX_BASES = 32  # at most 32 basis matrices (a degree-31 polynomial)
MAX_WIDTH = 256  # columns of each basis matrix
MAX_TOTAL_WIDTH = 2048  # number of bases x columns
FILTER_TIMEOUT_S = 120.0  # wall-clock limit of build_filter in the child


def data_seed(label: str, seed: int, salt: int | None) -> np.random.SeedSequence:
    entropy = [int(seed), zlib.crc32(label.encode())]
    if salt is not None:
        entropy.append(int(salt))
    return np.random.SeedSequence(entropy)


def generate(settings: dict, label: str, seed: int, salt: int | None):
    """settings[label] = (generator, kwargs); the generator takes a numpy Generator first."""
    generator, kwargs = settings[label]
    return generator(np.random.default_rng(data_seed(label, seed, salt)), **kwargs)


def read_salt() -> int | None:
    """Extra data-seed entropy that only the final evaluation's runs receive (secrets channel)."""
    from taskkit import read_secret

    text = read_secret("data_salt.json")
    return int(json.loads(text)["salt"]) if text else None


def fingerprint(data) -> str:
    h = hashlib.sha256()
    for arr in (data.adj.indptr, data.adj.indices, data.features, data.test_idx):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def run_filter(data) -> tuple[list[np.ndarray], np.ndarray, bool, dict]:
    """build_filter in the kit's least-privileged child (it reads filters.py only); its one
    frame is checked here on the raw bytes. Returns bases, coef_init, learn_coef, timings."""
    from taskkit import Child

    n, p = data.features.shape
    adj = data.adj
    args = (
        n,
        np.ascontiguousarray(adj.indptr, dtype="<i4").tobytes(),
        np.ascontiguousarray(adj.indices, dtype="<i4").tobytes(),
        np.ascontiguousarray(data.features, dtype="<f8").tobytes(),
        p,
        np.ascontiguousarray(data.train_idx, dtype="<i8").tobytes(),
        np.ascontiguousarray(data.labels[data.train_idx], dtype="<i8").tobytes(),
        data.num_classes,
    )
    t0 = time.perf_counter()
    with Child("filter_child:child_main", *args, may_read=["filters.py"], name="filter",
               timeout_s=FILTER_TIMEOUT_S) as child:
        # the largest output within the limits; a larger frame is refused by its size alone
        msg = child.expect(b"O", maxlength=9 + 8 * MAX_BASES + 8 * n * MAX_TOTAL_WIDTH)
        timing = {"filter_s": round(time.perf_counter() - t0, 3),
                  "filter_cpu_s": round(child.cpu_ns() / 1e9, 3),
                  "isolation": child.isolation}
    return (*check_output(msg, n), timing)


def check_output(msg: bytes, n: int) -> tuple[list[np.ndarray], np.ndarray, bool]:
    """The filter's frame (int32 K, int32 f, uint8 learn_coef, float64 coef[K], float64
    bases[K, n, f]) against the contract; see filters.py."""
    from taskkit import RunFailure

    if len(msg) < 9:
        raise RunFailure(f"protocol error: the filter's output has {len(msg)} bytes")
    K, width, learn = struct.unpack("<iiB", msg[:9])
    if not 1 <= K <= MAX_BASES:
        raise RunFailure(f"'bases' must be a list of 1..{MAX_BASES} arrays, got {K}")
    if not 1 <= width <= MAX_WIDTH:
        raise RunFailure(f"all bases must have the same number of columns f, 1 <= f <= "
                         f"{MAX_WIDTH}; got {width}")
    if K * width > MAX_TOTAL_WIDTH:
        raise RunFailure(f"len(bases) * f = {K * width} exceeds {MAX_TOTAL_WIDTH}")
    if learn > 1 or len(msg) != 9 + 8 * K + 8 * K * n * width:
        raise RunFailure(f"protocol error: the filter's output has {len(msg)} bytes for "
                         f"K={K}, f={width}, n={n}")
    coef = np.frombuffer(msg, dtype="<f8", count=K, offset=9).copy()
    if not np.all(np.isfinite(coef)):
        raise RunFailure(f"'coef_init' must hold {K} finite floats")
    flat = np.frombuffer(msg, dtype="<f8", offset=9 + 8 * K).reshape(K, n, width)
    bases = []
    for k in range(K):
        if not np.all(np.isfinite(flat[k])):
            raise RunFailure(f"bases[{k}] contains NaN or inf")
        bases.append(flat[k].copy())
    return bases, coef, bool(learn)


def main(settings: dict) -> int:
    """Entry point of run.py: python run.py --setting LABEL (seed from $MLSBENCH_SEED)."""
    from readout import train_readout
    from taskkit import RunFailure, out_dir_from_env, write_artifacts

    parser = argparse.ArgumentParser()
    parser.add_argument("--setting", required=True, choices=sorted(settings))
    args = parser.parse_args()
    # read and hide the run's seed and artifact folder before any child process exists
    seed = int(os.environ.pop("MLSBENCH_SEED", "0"))
    out_dir = out_dir_from_env() if "MLSBENCH_OUT" in os.environ else None
    salt = read_salt()
    record = {"setting": args.setting, "seed": seed, "salted": salt is not None}
    t0 = time.perf_counter()
    data = generate(settings, args.setting, seed, salt)
    record["fingerprint"] = fingerprint(data)
    n = data.labels.size
    print(f"[{args.setting}] seed={seed} n={n} edges={data.adj.nnz // 2} "
          f"features={data.features.shape[1]} classes={data.num_classes} "
          f"train/val/test={data.train_idx.size}/{data.val_idx.size}/{data.test_idx.size}",
          flush=True)
    try:
        bases, coef_init, learn_coef, timing = run_filter(data)
    except RunFailure as exc:
        record.update(status="failed", reason=str(exc))
        print(f"FAILED: {exc}", file=sys.stderr, flush=True)
        if out_dir is not None:
            write_artifacts(out_dir, record, record_name="run.json")
        return 0  # the grader fails the setting with the reason recorded in run.json
    t1 = time.perf_counter()
    rng = np.random.default_rng(data_seed(args.setting, seed, salt).spawn(1)[0])
    pred, info = train_readout(bases, coef_init, learn_coef, data.labels, data.num_classes,
                               data.train_idx, data.val_idx, rng)
    t2 = time.perf_counter()
    val_acc = 100.0 * float(np.mean(pred[data.val_idx] == data.labels[data.val_idx]))
    record.update(status="ok", num_bases=len(bases), width=int(bases[0].shape[1]),
                  learn_coef=learn_coef, best_epoch=info["best_epoch"], epochs=info["epochs"],
                  val_loss=info["val_loss"], val_acc=val_acc, gamma=info["gamma"], **timing,
                  readout_s=round(t2 - t1, 3), total_s=round(t2 - t0, 3))
    print(f"filter: {len(bases)} bases x {bases[0].shape[1]} columns, learn_coef={learn_coef}, "
          f"{timing['filter_s']:.2f} s | readout: best epoch {info['best_epoch']}/"
          f"{info['epochs']}, val loss {info['val_loss']:.4f}, val acc {val_acc:.2f}% | "
          f"{t2 - t1:.2f} s", flush=True)
    if math.isfinite(info["val_loss"]) and len(info["gamma"]) <= 12:
        print("coefficients: " + " ".join(f"{g:+.3f}" for g in info["gamma"]), flush=True)
    if out_dir is not None:
        write_artifacts(out_dir, record, arrays={"predictions": pred[data.test_idx]},
                        record_name="run.json")
    return 0
