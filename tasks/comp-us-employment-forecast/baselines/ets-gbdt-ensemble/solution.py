"""Baseline: equal-weight combination of the per-series ETS(A,Ad,A) forecasts and the global
GBDT forecasts (forecast combination: Bates & Granger 1969; combinations of statistical and ML
forecasts led the M4 competition, Makridakis et al., IJF 36 (2020))."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd

from forecasters import ets_forecast
from global_gbdt import gbdt_forecast

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
horizon = int(test["horizon"].max())
ets, gbdt = ets_forecast(train, horizon), gbdt_forecast(train, horizon, seed)
pred = [(ets[s][h - 1] + gbdt[s][h - 1]) / 2.0 for s, h in zip(test["series_id"], test["horizon"])]
pd.DataFrame({"id": test["id"], "employed": pred}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
