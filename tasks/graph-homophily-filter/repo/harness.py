"""Fixed experiment harness: data -> graph filter (child process) -> trained readout -> artifacts.

The parent process generates the graph, owns every label and the train/val/test split, and runs
the editable `filters.build_filter` in a `spawn` child process that receives only the adjacency,
the features, the training nodes and their labels. The child returns the basis matrices; the
parent checks them, trains the readout (readout.py) on the training labels, selects it on the
validation labels, predicts the test nodes and, after the child has exited, writes
$MLSBENCH_OUT/predictions.npz and $MLSBENCH_OUT/run.json for the grader.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
import time
import traceback
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
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


_SECRETS: dict | None = None


def read_secret(name: str) -> str | None:
    """A secret of a final-evaluation run (a key, a salt, a hidden setting's spec) from the
    environment's secrets channel: a descriptor only this process inherits, read once and
    closed. None in test runs, where the channel is absent."""
    global _SECRETS
    if _SECRETS is None:
        fd = os.environ.pop("MLSBENCH_SECRETS_FD", None)
        _SECRETS = {}
        if fd is not None:
            with os.fdopen(int(fd)) as f:
                _SECRETS = json.load(f)
    return _SECRETS.get(name)


def read_salt() -> int | None:
    """Extra data-seed entropy that only the final evaluation's runs receive (secrets channel)."""
    text = read_secret("data_salt.json")
    return int(json.loads(text)["salt"]) if text else None


def fingerprint(data) -> str:
    h = hashlib.sha256()
    for arr in (data.adj.indptr, data.adj.indices, data.features, data.test_idx):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _encode(out) -> bytes:
    """The filter's return value as .npz bytes: the parent loads them without pickle."""
    if not isinstance(out, dict) or set(out) != {"bases", "coef_init", "learn_coef"}:
        raise TypeError(
            "build_filter must return a dict with exactly the keys "
            "'bases', 'coef_init', 'learn_coef'"
        )
    if not isinstance(out["bases"], (list, tuple)):
        raise TypeError("'bases' must be a list of numpy arrays")
    if not isinstance(out["learn_coef"], (bool, np.bool_)):
        raise TypeError("'learn_coef' must be a bool")
    for k, b in enumerate(out["bases"]):
        if not isinstance(b, np.ndarray) or b.dtype.kind not in "fiub":
            raise TypeError(
                f"bases[{k}] must be a real numpy array (dense, not "
                f"scipy.sparse), got {type(b).__name__}"
            )
    arrays = {f"basis_{k:03d}": b for k, b in enumerate(out["bases"])}
    arrays["coef_init"] = np.asarray(out["coef_init"], dtype=np.float64)
    arrays["learn_coef"] = np.asarray(bool(out["learn_coef"]))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _decode(blob: bytes) -> dict:
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        keys = sorted(k for k in arrays if k.startswith("basis_"))
        out = {
            "bases": [arrays.pop(k) for k in keys],
            "coef_init": arrays.pop("coef_init"),
            "learn_coef": bool(arrays.pop("learn_coef")),
        }
    except Exception as exc:  # anything malformed from the untrusted child
        raise SettingFailure(f"the filter's output could not be read: {exc}") from None
    if arrays:
        raise SettingFailure(f"unexpected entries in the filter's output: {sorted(arrays)}")
    return out


def _child(conn, adj, features, train_idx, train_labels, num_classes):
    """Runs in the spawned child: only the allowed inputs exist in this process."""
    try:
        import filters

        out = filters.build_filter(adj, features, train_idx, train_labels, num_classes)
        conn.send_bytes(b"O" + _encode(out))
    except BaseException:  # report any failure of the editable code to the parent
        conn.send_bytes(b"E" + traceback.format_exc(limit=-6).encode())
    finally:
        conn.close()


def run_filter(data) -> tuple[dict, float]:
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    y_train = data.labels[data.train_idx].copy()
    proc = ctx.Process(
        target=_child,
        daemon=True,
        args=(send, data.adj, data.features, data.train_idx.copy(), y_train, data.num_classes),
    )
    t0 = time.perf_counter()
    proc.start()
    send.close()
    # room for any output within the limits; check_output then names the limit broken
    max_bytes = 16 * data.labels.size * MAX_TOTAL_WIDTH + (1 << 20)
    try:
        if not recv.poll(FILTER_TIMEOUT_S):
            proc.kill()
            raise SettingFailure(f"build_filter did not return within {FILTER_TIMEOUT_S:.0f} s")
        # bytes only, never unpickled: the child runs untrusted code
        blob = recv.recv_bytes(max_bytes)
    except EOFError:
        raise SettingFailure("the filter process exited without returning a result") from None
    except OSError:
        raise SettingFailure("the filter's output is larger than the limits allow") from None
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
            proc.join()
        recv.close()
    elapsed = time.perf_counter() - t0
    if blob[:1] != b"O":
        raise SettingFailure("build_filter failed:\n" + blob[1:].decode(errors="replace"))
    return _decode(blob[1:]), elapsed


class SettingFailure(Exception):
    pass


def check_output(out, n: int) -> tuple[list[np.ndarray], np.ndarray, bool]:
    """Validate the filter's return value; see filters.py for the contract."""
    if not isinstance(out, dict) or set(out) != {"bases", "coef_init", "learn_coef"}:
        raise SettingFailure(
            "build_filter must return a dict with exactly the keys "
            "'bases', 'coef_init', 'learn_coef'"
        )
    bases = out["bases"]
    if not isinstance(bases, (list, tuple)) or not 1 <= len(bases) <= MAX_BASES:
        raise SettingFailure(f"'bases' must be a list of 1..{MAX_BASES} arrays")
    checked = []
    for k, b in enumerate(bases):
        if not isinstance(b, np.ndarray) or b.ndim != 2 or b.shape[0] != n:
            raise SettingFailure(f"bases[{k}] must be a numpy array of shape (n={n}, f)")
        if b.dtype.kind not in "fiu":
            raise SettingFailure(f"bases[{k}] must be real-valued, got dtype {b.dtype}")
        b = np.asarray(b, dtype=np.float64)
        if not np.all(np.isfinite(b)):
            raise SettingFailure(f"bases[{k}] contains NaN or inf")
        checked.append(b)
    width = checked[0].shape[1]
    if any(b.shape[1] != width for b in checked) or not 1 <= width <= MAX_WIDTH:
        raise SettingFailure(
            f"all bases must have the same number of columns f, 1 <= f <= "
            f"{MAX_WIDTH}; got {[b.shape[1] for b in checked]}"
        )
    if len(checked) * width > MAX_TOTAL_WIDTH:
        raise SettingFailure(f"len(bases) * f = {len(checked) * width} exceeds {MAX_TOTAL_WIDTH}")
    try:
        coef = np.asarray(out["coef_init"], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise SettingFailure("'coef_init' must be a sequence of floats") from None
    if coef.size != len(checked) or not np.all(np.isfinite(coef)):
        raise SettingFailure(f"'coef_init' must hold {len(checked)} finite floats")
    if not isinstance(out["learn_coef"], (bool, np.bool_)):
        raise SettingFailure("'learn_coef' must be a bool")
    return checked, coef, bool(out["learn_coef"])


def _write(out_dir: Path, record: dict, test_pred: np.ndarray | None) -> None:
    """Replace whatever is in out_dir by this run's artifacts."""
    for entry in out_dir.iterdir():
        if entry.is_file() or entry.is_symlink():
            entry.unlink()
        else:
            shutil.rmtree(entry)
    if test_pred is not None:
        np.savez(out_dir / "predictions.npz", test_pred=test_pred)
    (out_dir / "run.json").write_text(json.dumps(record, indent=2) + "\n")


def main(settings: dict) -> int:
    """Entry point of run.py: python run.py --setting LABEL (seed from $MLSBENCH_SEED)."""
    from readout import train_readout

    parser = argparse.ArgumentParser()
    parser.add_argument("--setting", required=True, choices=sorted(settings))
    args = parser.parse_args()
    # read and hide the run's seed and artifact folder before any child process exists
    seed = int(os.environ.pop("MLSBENCH_SEED", "0"))
    out_env = os.environ.pop("MLSBENCH_OUT", None)
    out_dir = Path(out_env) if out_env else None
    salt = read_salt()
    record = {"setting": args.setting, "seed": seed, "salted": salt is not None}
    t0 = time.perf_counter()
    data = generate(settings, args.setting, seed, salt)
    record["fingerprint"] = fingerprint(data)
    n = data.labels.size
    print(
        f"[{args.setting}] seed={seed} n={n} edges={data.adj.nnz // 2} "
        f"features={data.features.shape[1]} classes={data.num_classes} "
        f"train/val/test={data.train_idx.size}/{data.val_idx.size}/{data.test_idx.size}",
        flush=True,
    )
    try:
        out, filter_s = run_filter(data)
        bases, coef_init, learn_coef = check_output(out, n)
    except SettingFailure as exc:
        record.update(status="failed", reason=str(exc))
        print(f"FAILED: {exc}", file=sys.stderr, flush=True)
        if out_dir is not None:
            _write(out_dir, record, None)
        return 1
    t1 = time.perf_counter()
    rng = np.random.default_rng(data_seed(args.setting, seed, salt).spawn(1)[0])
    pred, info = train_readout(
        bases,
        coef_init,
        learn_coef,
        data.labels,
        data.num_classes,
        data.train_idx,
        data.val_idx,
        rng,
    )
    t2 = time.perf_counter()
    val_acc = 100.0 * float(np.mean(pred[data.val_idx] == data.labels[data.val_idx]))
    record.update(
        status="ok",
        num_bases=len(bases),
        width=int(bases[0].shape[1]),
        learn_coef=learn_coef,
        best_epoch=info["best_epoch"],
        epochs=info["epochs"],
        val_loss=info["val_loss"],
        val_acc=val_acc,
        gamma=info["gamma"],
        filter_s=round(filter_s, 3),
        readout_s=round(t2 - t1, 3),
        total_s=round(t2 - t0, 3),
    )
    print(
        f"filter: {len(bases)} bases x {bases[0].shape[1]} columns, learn_coef={learn_coef}, "
        f"{filter_s:.2f} s | readout: best epoch {info['best_epoch']}/{info['epochs']}, "
        f"val loss {info['val_loss']:.4f}, val acc {val_acc:.2f}% | {t2 - t1:.2f} s",
        flush=True,
    )
    if math.isfinite(info["val_loss"]) and len(info["gamma"]) <= 12:
        print("coefficients: " + " ".join(f"{g:+.3f}" for g in info["gamma"]), flush=True)
    if out_dir is not None:
        _write(out_dir, record, pred[data.test_idx].astype(np.int64))
    return 0
