"""Baseline: histogram gradient boosting regression of the grade points (Ke et al. 2017) on the
GCSE average, sex and age, cut into grades at thresholds fitted to maximize QWK on
out-of-fold predictions (the "optimized rounder" of Kaggle's ordinal competitions, e.g.
PetFinder.my 2019, Prudential Life Insurance 2016). School and authority ids are not used: the
test schools are new."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import cohen_kappa_score
from sklearn.model_selection import GroupKFold

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
GRADES = np.array([0, 2, 4, 6, 8, 10])


def features(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {"gcse": df["gcsescore"], "female": (df["gender"] == "F").astype(float), "age": df["age"]}
    )


def model():
    return HistGradientBoostingRegressor(
        learning_rate=0.05, max_iter=200, max_leaf_nodes=15, min_samples_leaf=100,
        early_stopping=False, random_state=seed,
    )


def cut(pred, thresholds):
    return GRADES[np.searchsorted(np.sort(thresholds), pred)]


X, y = features(train), train["score"].to_numpy()
oof = np.zeros(len(train))
for fit_idx, val_idx in GroupKFold(5).split(X, y, groups=train["school"]):
    oof[val_idx] = model().fit(X.iloc[fit_idx], y[fit_idx]).predict(X.iloc[val_idx])
start = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
res = minimize(
    lambda t: -cohen_kappa_score(y, cut(oof, t), weights="quadratic"), start, method="Nelder-Mead",
    options={"maxiter": 400, "xatol": 1e-3, "fatol": 1e-6},
)
pred = model().fit(X, y).predict(features(test))
score = cut(pred, res.x)
pd.DataFrame({"id": test["id"], "score": score}).to_csv("submission.csv", index=False)
print(f"thresholds {np.round(np.sort(res.x), 3).tolist()}; wrote submission.csv ({len(test)} rows)")
