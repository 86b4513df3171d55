"""Baseline: Poisson regression (log link; Nelder & Wedderburn 1972), the model of Deb & Trivedi
(1997) and Zeileis, Kleiber & Jackman (2008) for these visits, on one-hot categories and
standardized numeric features, small L2 penalty."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from sklearn.linear_model import PoissonRegressor

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
NUMERIC = ["hospital", "chronic", "age", "school", "income"]


def features(df: pd.DataFrame) -> pd.DataFrame:
    num = (df[NUMERIC] - train[NUMERIC].mean()) / train[NUMERIC].std()
    cats = df.drop(columns=["id", "visits", *NUMERIC], errors="ignore")
    return pd.concat([num, pd.get_dummies(cats, dtype=float)], axis=1)


X = features(train)
model = PoissonRegressor(alpha=1e-4, max_iter=1000).fit(X, train["visits"])
mu = model.predict(features(test).reindex(columns=X.columns, fill_value=0.0))
pd.DataFrame({"id": test["id"], "visits": mu}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
