"""Baseline: gradient-boosted trees on style and posting-time features (features.py)."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from features import style_features
from sklearn.ensemble import HistGradientBoostingClassifier

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
model = HistGradientBoostingClassifier(
    max_iter=200, learning_rate=0.05, early_stopping=False, random_state=seed
)
model.fit(style_features(train), train["android"])
p = model.predict_proba(style_features(test))[:, 1]
pd.DataFrame({"id": test["id"], "android": p}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
