"""Baseline: histogram gradient boosting regression of the price (Ke et al. 2017) with library
defaults (squared error, 100 rounds, learning rate 0.1, 31 leaves), categories native."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

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


model = HistGradientBoostingRegressor(
    categorical_features="from_dtype", early_stopping=False, random_state=seed
).fit(features(train), train["avg_price_per_room"])
pred = model.predict(features(test))
pd.DataFrame({"id": test["id"], "avg_price_per_room": pred}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
