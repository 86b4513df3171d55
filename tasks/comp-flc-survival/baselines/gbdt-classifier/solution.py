"""Baseline: survival as classification: histogram gradient boosting (Ke et al. 2017) of death
within 10 years, on the people whose 10-year status is known (died before, or followed
longer); the predicted probability is the risk score. The usual shortcut of tabular
competitions for censored targets (e.g. Kvamme, Borgan & Scheel, JMLR 20 (2019) on why it
loses information)."""

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
HORIZON = 3652  # days
COLS = ["age", "kappa", "lambda", "flc_group", "creatinine", "mgus"]


def features(df: pd.DataFrame) -> pd.DataFrame:
    out = df[COLS].copy()
    out["male"] = (df["sex"] == "M").astype(float)
    return out


known = (train["death"] == 1) | (train["futime"] >= HORIZON)
y = ((train["death"] == 1) & (train["futime"] < HORIZON)).astype(int)[known]
model = HistGradientBoostingClassifier(
    learning_rate=0.05, max_iter=200, max_depth=3, min_samples_leaf=40, early_stopping=False,
    random_state=seed,
).fit(features(train)[known], y)
risk = model.predict_proba(features(test))[:, 1]
pd.DataFrame({"id": test["id"], "risk": risk}).to_csv("submission.csv", index=False)
print(f"{int(known.sum())} people with known status; wrote submission.csv ({len(test)} rows)")
