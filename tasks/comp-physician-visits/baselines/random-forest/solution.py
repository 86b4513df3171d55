"""Baseline: random forest regression (Breiman 2001) of the count, 300 trees, leaves of at
least 10 people; predictions floored at 0.05 visits (the deviance needs a positive mean)."""

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
    return pd.get_dummies(df.drop(columns=["id", "visits"], errors="ignore"), dtype=float)


X = features(train)
model = RandomForestRegressor(
    n_estimators=300, min_samples_leaf=10, max_features=0.5, n_jobs=1, random_state=seed
).fit(X, train["visits"])
mu = np.maximum(model.predict(features(test).reindex(columns=X.columns, fill_value=0.0)), 0.05)
pd.DataFrame({"id": test["id"], "visits": mu}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
