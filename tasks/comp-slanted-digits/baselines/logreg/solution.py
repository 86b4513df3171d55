"""Baseline: multinomial L2 logistic regression on the 64 pixels scaled to [0, 1]."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
pixels = [c for c in train.columns if c.startswith("p")]
X, y, Xt = train[pixels].to_numpy() / 16.0, train["label"].to_numpy(), test[pixels].to_numpy() / 16.0
pred = LogisticRegression(C=1.0, max_iter=3000, random_state=seed).fit(X, y).predict(Xt)
pd.DataFrame({"id": test["id"], "label": pred}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
