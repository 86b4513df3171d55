"""Build repo/ (public files) and private/ (test labels) of comp-leaf-outlines.

Source: the UCR archive's OSULeaf (442 leaf outlines of 6 species, as 427-point series; train
200 / test 242), as shipped inside the `aeon` wheel (aeon/datasets/data/OSULeaf/*.ts). Read
offline with a small .ts reader (no aeon import). Run once by hand:

    python prepare.py [--src DIR]   # DIR holds OSULeaf_TRAIN.ts and OSULeaf_TEST.ts

(default: the installed aeon's data folder; without aeon, `pip download aeon --no-deps` and
unzip the wheel.) The official train set is the training set; the official test set is split
at random into two halves of 121: `as-traced` (as released) and `re-traced`, where each outline
starts at a random point of the boundary (a circular shift), as a boundary tracer that does not
start from the leaf's base would produce. Deterministic (fixed seed); outputs are committed.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

SEED = 2006  # Grandhi's OSU thesis
HERE = Path(__file__).resolve().parent
SPECIES = [
    "Acer Circinatum",
    "Acer Glabrum",
    "Acer Macrophyllum",
    "Acer Negundo",
    "Quercus Garryana",
    "Quercus Kelloggii",
]


def default_src() -> Path | None:
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "OSULeaf"


def read_ts(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A univariate, equal-length .ts file: one series per line, `v1,v2,...:label`."""
    rows, labels, in_data = [], [], False
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.lower() == "@data":
            in_data = True
        elif in_data:
            values, label = line.rsplit(":", 1)
            rows.append(np.array(values.split(","), dtype=float))
            labels.append(int(label))
    return np.vstack(rows), np.array(labels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=default_src())
    args = ap.parse_args()
    files = [args.src / f"OSULeaf_{part}.ts" for part in ("TRAIN", "TEST")] if args.src else []
    if not files or not all(f.is_file() for f in files):
        sys.exit(
            f"OSULeaf not found in {args.src}: pip install aeon (or unzip its wheel) and pass "
            "--src to the folder holding OSULeaf_TRAIN.ts and OSULeaf_TEST.ts"
        )
    (x_tr, y_tr), (x_te, y_te) = (read_ts(f) for f in files)
    assert x_tr.shape == (200, 427) and x_te.shape == (242, 427)
    y_tr, y_te = y_tr - 1, y_te - 1  # classes 0-5

    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(x_te))
    split = np.where(np.arange(len(x_te)) < len(x_te) // 2, "as-traced", "re-traced")[
        np.argsort(order)
    ]
    x_te = x_te.copy()
    for i in np.flatnonzero(split == "re-traced"):
        x_te[i] = np.roll(x_te[i], -int(rng.integers(1, x_te.shape[1])))

    ids = rng.choice(np.arange(1000, 10000), size=len(x_tr) + len(x_te), replace=False)
    tr_ids, te_ids = ids[: len(x_tr)], ids[len(x_tr) :]
    o_tr, o_te = np.argsort(tr_ids), np.argsort(te_ids)
    repo, private = HERE / "repo", HERE / "private"
    repo.mkdir(exist_ok=True)
    private.mkdir(exist_ok=True)
    np.savez_compressed(
        repo / "train.npz",
        ids=tr_ids[o_tr],
        series=x_tr[o_tr].astype(np.float32),
        labels=y_tr[o_tr],
    )
    np.savez_compressed(repo / "test.npz", ids=te_ids[o_te], series=x_te[o_te].astype(np.float32))
    (repo / "test.csv").write_text("id\n" + "".join(f"{i}\n" for i in te_ids[o_te]))
    majority = int(np.bincount(y_tr).argmax())
    (repo / "sample_submission.csv").write_text(
        "id,label\n" + "".join(f"{i},{majority}\n" for i in te_ids[o_te])
    )
    (private / "test_labels.csv").write_text(
        "id,label,split\n"
        + "".join(
            f"{i},{c},{s}\n" for i, c, s in zip(te_ids[o_te], y_te[o_te], split[o_te], strict=True)
        )
    )
    print(f"train {len(x_tr)} (classes {np.bincount(y_tr).tolist()}), test {len(x_te)}")
    print(f"sample submission: class {majority} ({SPECIES[majority]})")


if __name__ == "__main__":
    main()
