"""Baseline: histogram gradient boosting (LightGBM-style; Ke et al. 2017) with library defaults."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
X, y = train.drop(columns=["id", "Purchase"]), train["Purchase"]

# scikit-learn's defaults: 100 rounds, learning rate 0.1, 31 leaves, 20 samples per leaf
model = HistGradientBoostingClassifier(early_stopping=False, random_state=seed)
model.fit(X, y)
p = model.predict_proba(test[X.columns])[:, 1]
pd.DataFrame({"id": test["id"], "Purchase": p}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
