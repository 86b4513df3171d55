"""Baseline: support vector machine with an RBF kernel on the pixels, C = 10, gamma = 0.05
(Cortes & Vapnik 1995; the classic strong method on small digit images)."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from sklearn.svm import SVC

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
pixels = [c for c in train.columns if c.startswith("p")]
X, y, Xt = train[pixels].to_numpy() / 16.0, train["label"].to_numpy(), test[pixels].to_numpy() / 16.0
pred = SVC(C=10.0, gamma=0.05).fit(X, y).predict(Xt)
pd.DataFrame({"id": test["id"], "label": pred}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
