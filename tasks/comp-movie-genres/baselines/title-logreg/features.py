"""Numeric features of a film: year, running time, IMDb rating, log votes, the rating
histogram r1-r10 (percent of votes per star), log budget with a missing flag, MPAA rating."""

import numpy as np
import pandas as pd

GENRES = ["Action", "Animation", "Comedy", "Drama", "Documentary", "Romance"]


def numeric_features(df: pd.DataFrame) -> pd.DataFrame:
    X = df[["year", "length", "rating"] + [f"r{i}" for i in range(1, 11)]].copy()
    X["log_votes"] = np.log1p(df["votes"])
    X["log_budget"] = np.log1p(df["budget"].fillna(0))
    X["has_budget"] = df["budget"].notna().astype(int)
    for m in ("PG", "PG-13", "R", "NC-17"):
        X[f"mpaa_{m}"] = (df["mpaa"] == m).astype(int)
    return X
