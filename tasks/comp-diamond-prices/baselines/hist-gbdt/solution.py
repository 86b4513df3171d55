"""Baseline: histogram gradient boosting (LightGBM-style; Ke et al. 2017) on log(1 + price)
with scikit-learn's defaults (100 rounds, learning rate 0.1, 31 leaves), grades as categories."""

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
COLS = ["carat", "cut", "color", "clarity", "depth", "table", "x", "y", "z"]
CATS = ["cut", "color", "clarity"]
Xtr, Xte = train[COLS].copy(), test[COLS].copy()
for c in CATS:
    levels = sorted(train[c].unique())
    Xtr[c] = pd.Categorical(Xtr[c], categories=levels)
    Xte[c] = pd.Categorical(Xte[c], categories=levels)

model = HistGradientBoostingRegressor(categorical_features="from_dtype", early_stopping=False, random_state=seed)
model.fit(Xtr, np.log1p(train["price"]))
pred = np.expm1(model.predict(Xte)).clip(min=0)
pd.DataFrame({"id": test["id"], "price": pred}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
