"""Baseline: random forest regression (Breiman 2001) of the price, 200 trees, leaves of 3+,
on the numeric features, the arrival date and ordinal codes of the categories."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")


def features(df: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns, the arrival date as day of year / weekday / days since the first
    arrival, the stay length, and the string columns as categories."""
    out = df.drop(columns=["id", "avg_price_per_room", "arrival_date"], errors="ignore")
    date = pd.to_datetime(df["arrival_date"])
    out["day_of_year"] = date.dt.dayofyear
    out["weekday"] = date.dt.weekday
    out["days"] = (date - pd.Timestamp("2016-07-01")).dt.days
    out["nights"] = df["stays_in_weekend_nights"] + df["stays_in_week_nights"]
    for c in out.select_dtypes(exclude="number").columns:
        out[c] = pd.Categorical(out[c], categories=sorted({*train[c].dropna(), *test[c].dropna()}))
    return out


def codes(df: pd.DataFrame) -> pd.DataFrame:
    f = features(df)
    for c in f.select_dtypes("category").columns:
        f[c] = f[c].cat.codes
    return f


model = RandomForestRegressor(
    n_estimators=200, min_samples_leaf=3, max_features=0.5, n_jobs=1, random_state=seed
).fit(codes(train), train["avg_price_per_room"])
pred = model.predict(codes(test))
pd.DataFrame({"id": test["id"], "avg_price_per_room": pred}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
