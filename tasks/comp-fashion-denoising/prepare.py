"""Build repo/ (public files) and private/ (clean test images) of comp-fashion-denoising.

Source: Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, MIT licence) as shipped by Debian's package
`dataset-fashion-mnist` in /usr/share/datasets/fashion-mnist/. Run once by hand:

    python prepare.py [--src /usr/share/datasets/fashion-mnist]

- train: 1,000 images of the official training set (100 per class), clean and corrupted;
- test: 200 images of the official test set (20 per class), corrupted only, in two splits of
  100: `moderate-noise`, corrupted like the training images (Gaussian noise, sigma 0.10-0.20),
  and `heavy-noise` (Gaussian noise, sigma 0.25-0.35, plus 3% salt-and-pepper pixels).
Images are stored as 8-bit grey levels (0-255, as a sensor would quantize them);
the submission and the metric use intensities in [0, 1] (grey level / 255).
Deterministic (fixed seed); outputs committed.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np

SEED = 20170825  # Fashion-MNIST's release
N_TRAIN_PER_CLASS, N_TEST_PER_CLASS = 100, 20
DEFAULT_SRC = Path("/usr/share/datasets/fashion-mnist")
HERE = Path(__file__).resolve().parent


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def corrupt(clean: np.ndarray, sigma: tuple[float, float], salt: float, rng) -> np.ndarray:
    """Per image: Gaussian noise of a random sigma in `sigma`, then a share `salt` of pixels set
    to 0 or 1; clipped to [0, 1]."""
    s = rng.uniform(*sigma, size=(len(clean), 1, 1))
    noisy = clean + rng.normal(0.0, 1.0, clean.shape) * s
    if salt:
        hit = rng.random(clean.shape) < salt
        noisy[hit] = rng.integers(0, 2, size=int(hit.sum()))
    return np.round(np.clip(noisy, 0.0, 1.0) * 255).astype(np.uint8)


def stratified(labels, per_class, rng):
    idx = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    return rng.permutation(np.concatenate(idx))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC)
    args = ap.parse_args()
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    names += ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    if not all((args.src / n).is_file() for n in names):
        sys.exit(
            f"Fashion-MNIST not found in {args.src}: apt-get install dataset-fashion-mnist, or "
            "pass --src to a folder with the four IDX .gz files"
        )
    x_tr, y_tr, x_te, y_te = (read_idx(args.src / n) for n in names)
    rng = np.random.default_rng(SEED)
    tr, te = stratified(y_tr, N_TRAIN_PER_CLASS, rng), stratified(y_te, N_TEST_PER_CLASS, rng)
    clean_tr, clean_te = x_tr[tr] / 255.0, x_te[te] / 255.0
    noisy_tr = corrupt(clean_tr, (0.10, 0.20), 0.0, rng)
    half = len(te) // 2
    noisy_te = np.concatenate(
        [
            corrupt(clean_te[:half], (0.10, 0.20), 0.0, rng),
            corrupt(clean_te[half:], (0.25, 0.35), 0.03, rng),
        ]
    )
    split = np.array(["moderate-noise"] * half + ["heavy-noise"] * (len(te) - half))
    ids = rng.choice(np.arange(1000, 10000), size=len(tr) + len(te), replace=False)
    tr_ids, te_ids = ids[: len(tr)], ids[len(tr) :]
    o_tr, o_te = np.argsort(tr_ids), np.argsort(te_ids)

    repo, private = HERE / "repo", HERE / "private"
    repo.mkdir(exist_ok=True)
    private.mkdir(exist_ok=True)
    np.savez_compressed(
        repo / "train.npz", ids=tr_ids[o_tr], noisy=noisy_tr[o_tr], clean=x_tr[tr][o_tr]
    )
    np.savez_compressed(repo / "test.npz", ids=te_ids[o_te], noisy=noisy_te[o_te])
    (repo / "test.csv").write_text("id\n" + "".join(f"{i}\n" for i in te_ids[o_te]))
    zeros = " ".join(["0"] * 784)
    (repo / "sample_submission.csv").write_text(
        "id,pixels\n" + "".join(f"{i},{zeros}\n" for i in te_ids[o_te])
    )
    np.savez_compressed(
        private / "test_clean.npz", ids=te_ids[o_te], clean=x_te[te][o_te], split=split[o_te]
    )
    print(f"train {len(tr)} pairs, test {len(te)} ({(split == 'heavy-noise').sum()} heavy)")


if __name__ == "__main__":
    main()
