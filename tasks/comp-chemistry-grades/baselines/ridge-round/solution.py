"""Baseline: least-squares regression of the grade points on the GCSE average (with its square),
sex and age, rounded to the nearest grade: the regression the data set was collected for
(Yang et al. 1997), used as a classifier the simplest way."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
GRADES = np.array([0, 2, 4, 6, 8, 10])


def features(df: pd.DataFrame) -> np.ndarray:
    g = df["gcsescore"] - 6.0
    return np.column_stack([g, g**2, (df["gender"] == "F").astype(float), df["age"]])


model = Ridge(alpha=1.0).fit(features(train), train["score"])
pred = model.predict(features(test))
score = GRADES[np.abs(pred[:, None] - GRADES[None, :]).argmin(axis=1)]
pd.DataFrame({"id": test["id"], "score": score}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
