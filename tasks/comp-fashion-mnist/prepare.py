"""Build comp-fashion-mnist's public files (repo/) and private labels (private/).

Source: Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, MIT license) as shipped by Debian's
package `dataset-fashion-mnist` (IDX files, gzip) in /usr/share/datasets/fashion-mnist/.
Run once by hand (fixed seed, deterministic); its outputs are committed:

    python prepare.py [--src /usr/share/datasets/fashion-mnist]

- train: 5,000 images of the official training set, 500 per class.
- test: 3,000 images of the official test set, 300 per class, in two splits of 1,500
  (150 per class): `clean` (as released) and `shifted`, re-rendered as by a slightly different
  acquisition: a random translation of up to 1 pixel, a Gaussian blur (sigma 0.5), lower
  contrast with a raised black level (x * 0.85 + 20) and Gaussian sensor noise (sigma 10),
  rounded and clipped to uint8.
Rows are shuffled and get fresh random ids, so files do not line up with the source.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

SEED = 20260126
N_TRAIN_PER_CLASS, N_TEST_PER_CLASS = 500, 300
DEFAULT_SRC = Path("/usr/share/datasets/fashion-mnist")
HERE = Path(__file__).resolve().parent
CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise SystemExit(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def acquire(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The `shifted` acquisition: translate (<= 1 px), blur, lower contrast, raise black, noise."""
    out = np.empty_like(images)
    for i, img in enumerate(images.astype(np.float64)):
        dy, dx = rng.integers(-1, 2, size=2)
        img = np.roll(np.roll(img, dy, axis=0), dx, axis=1)
        img = gaussian_filter(img, 0.5)
        img = img * 0.85 + 20.0 + rng.normal(0.0, 10.0, img.shape)
        out[i] = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return out


def stratified(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    idx = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    return rng.permutation(np.concatenate(idx))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC)
    args = ap.parse_args()
    names = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    missing = [n for n in names if not (args.src / n).is_file()]
    if missing:
        sys.exit(
            f"Fashion-MNIST not found in {args.src} (missing {missing}): install Debian's "
            "package dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass "
            "--src to a folder with the four IDX .gz files"
        )
    x_tr, y_tr, x_te, y_te = (read_idx(args.src / n) for n in names)
    assert x_tr.shape == (60000, 28, 28) and x_te.shape == (10000, 28, 28)

    rng = np.random.default_rng(SEED)
    tr = stratified(y_tr, N_TRAIN_PER_CLASS, rng)
    te = stratified(y_te, N_TEST_PER_CLASS, rng)
    # first 150 per class of the test sample -> clean, the rest -> shifted
    te_split = np.empty(len(te), dtype=object)
    seen = np.zeros(10, dtype=int)
    for j, i in enumerate(te):
        c = y_te[i]
        te_split[j] = "clean" if seen[c] < N_TEST_PER_CLASS // 2 else "shifted"
        seen[c] += 1
    test_images = x_te[te].copy()
    sh = te_split == "shifted"
    test_images[sh] = acquire(test_images[sh], rng)

    ids = rng.choice(np.arange(10000, 100000), size=len(tr) + len(te), replace=False)
    train_ids, test_ids = ids[: len(tr)], ids[len(tr) :]
    order_tr, order_te = np.argsort(train_ids), np.argsort(test_ids)  # files sorted by id

    repo, private = HERE / "repo", HERE / "private"
    repo.mkdir(exist_ok=True)
    private.mkdir(exist_ok=True)
    np.savez_compressed(
        repo / "train.npz",
        ids=train_ids[order_tr],
        images=x_tr[tr][order_tr],
        labels=y_tr[tr][order_tr].astype(np.int64),
    )
    np.savez_compressed(repo / "test.npz", ids=test_ids[order_te], images=test_images[order_te])
    pd.DataFrame({"id": train_ids[order_tr], "label": y_tr[tr][order_tr]}).to_csv(
        repo / "train.csv", index=False
    )
    pd.DataFrame({"id": test_ids[order_te]}).to_csv(repo / "test.csv", index=False)
    majority = int(np.bincount(y_tr[tr]).argmax())  # classes are balanced: the first, 0
    pd.DataFrame({"id": test_ids[order_te], "label": majority}).to_csv(
        repo / "sample_submission.csv", index=False
    )
    pd.DataFrame(
        {"id": test_ids[order_te], "label": y_te[te][order_te], "split": te_split[order_te]}
    ).to_csv(private / "test_labels.csv", index=False)
    print(f"train {len(tr)}, test {len(te)} ({int(sh.sum())} shifted); sample label {majority}")


if __name__ == "__main__":
    main()
