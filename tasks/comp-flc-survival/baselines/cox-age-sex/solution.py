"""Baseline: Cox proportional hazards model (Cox 1972) on age and sex only: the clinical
reference that any biomarker model must beat (Dispenzieri et al. 2012)."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from statsmodels.duration.hazard_regression import PHReg

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")


def features(df: pd.DataFrame) -> np.ndarray:
    return np.column_stack([df["age"], (df["sex"] == "M").astype(float)])


fit = PHReg(train["futime"].clip(lower=0.5), features(train), status=train["death"]).fit()
risk = features(test) @ fit.params  # the linear predictor: log hazard ratio
pd.DataFrame({"id": test["id"], "risk": risk}).to_csv("submission.csv", index=False)
print(f"coefficients {np.round(fit.params, 4).tolist()}; wrote submission.csv ({len(test)} rows)")
