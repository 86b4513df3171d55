"""Baseline: histogram gradient boosting with the Poisson loss (log link; Ke et al. 2017) and
library defaults otherwise (100 rounds, learning rate 0.1, 31 leaves)."""

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
    out = df.drop(columns=["id", "visits"], errors="ignore")
    for c in out.select_dtypes(exclude="number").columns:
        out[c] = pd.Categorical(out[c], categories=sorted({*train[c], *test[c]}))
    return out


model = HistGradientBoostingRegressor(
    loss="poisson", categorical_features="from_dtype", early_stopping=False, random_state=seed
).fit(features(train), train["visits"])
mu = model.predict(features(test))
pd.DataFrame({"id": test["id"], "visits": mu}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
