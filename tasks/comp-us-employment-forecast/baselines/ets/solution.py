"""Baseline: exponential smoothing per series, ETS(A,Ad,A) (additive damped trend, additive
seasonality) on log values, i.e. Holt-Winters with a damped trend (Gardner & McKenzie 1985;
Hyndman et al. 2008), fitted by statsmodels on the last 10 years of each series."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd

from forecasters import ets_forecast

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
fc = ets_forecast(train, int(test["horizon"].max()))
pred = [fc[s][h - 1] for s, h in zip(test["series_id"], test["horizon"])]
pd.DataFrame({"id": test["id"], "employed": pred}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
