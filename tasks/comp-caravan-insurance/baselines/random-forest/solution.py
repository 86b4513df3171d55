"""Baseline: random forest (Breiman 2001), 300 trees, balanced class weights per bootstrap."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
X, y = train.drop(columns=["id", "Purchase"]), train["Purchase"]

model = RandomForestClassifier(
    n_estimators=300,
    min_samples_leaf=5,
    max_features=0.2,
    class_weight="balanced_subsample",
    n_jobs=1,
    random_state=seed,
)
model.fit(X, y)
p = model.predict_proba(test[X.columns])[:, 1]
pd.DataFrame({"id": test["id"], "Purchase": p}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
