"""Baseline: ROCKET (Dempster, Petitjean & Webb, Data Min. Knowl. Disc. 34, 2020): 500 random
dilated convolution kernels (rocket.py), PPV and max features, ridge classifier with the
regularization chosen by leave-one-out cross-validation."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from rocket import make_kernels, transform
from sklearn.linear_model import RidgeClassifierCV

seed = int(os.environ.get("MLSBENCH_SEED", 0))
rng = np.random.default_rng(seed)
train, test = np.load("train.npz"), np.load("test.npz")
X, y = train["series"].astype(np.float64), train["labels"]
Xt = test["series"].astype(np.float64)
kernels = make_kernels(X.shape[1], 500, rng)
model = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)).fit(transform(X, kernels), y)
pred = model.predict(transform(Xt, kernels))
pd.DataFrame({"id": test["ids"], "label": pred}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(Xt)} rows)")
