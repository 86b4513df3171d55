"""Baseline: a global histogram gradient-boosting model on lag windows of all series (direct
multi-horizon, LightGBM-style as in the M5 competition), predicting the log ratio to the
seasonal naive forecast."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd

from global_gbdt import gbdt_forecast

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
fc = gbdt_forecast(train, int(test["horizon"].max()), seed)
pred = [fc[s][h - 1] for s, h in zip(test["series_id"], test["horizon"])]
pd.DataFrame({"id": test["id"], "employed": pred}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
