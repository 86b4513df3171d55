"""Baseline: the average of three expected counts: the Poisson GLM, a shallow, slow Poisson GBDT
(depth 3, learning rate 0.03, 300 rounds, 30+ people per leaf, L2 1) and the random forest.
Averaging a GLM with tree ensembles is the standard recipe for claim-count models (Wuthrich &
Merz, Statistical Foundations of Actuarial Learning, 2023, ch. 7; Caruana et al., ICML 2004)."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import PoissonRegressor

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
y = train["visits"]
NUMERIC = ["hospital", "chronic", "age", "school", "income"]


def one_hot(df: pd.DataFrame) -> pd.DataFrame:
    num = (df[NUMERIC] - train[NUMERIC].mean()) / train[NUMERIC].std()
    cats = df.drop(columns=["id", "visits", *NUMERIC], errors="ignore")
    return pd.concat([num, pd.get_dummies(cats, dtype=float)], axis=1)


def categorical(df: pd.DataFrame) -> pd.DataFrame:
    out = df.drop(columns=["id", "visits"], errors="ignore")
    for c in out.select_dtypes(exclude="number").columns:
        out[c] = pd.Categorical(out[c], categories=sorted({*train[c], *test[c]}))
    return out


X, Xt = one_hot(train), one_hot(test).reindex(columns=one_hot(train).columns, fill_value=0.0)
glm = PoissonRegressor(alpha=1e-4, max_iter=1000).fit(X, y)
gbdt = HistGradientBoostingRegressor(
    loss="poisson", learning_rate=0.03, max_iter=300, max_depth=3, min_samples_leaf=30,
    l2_regularization=1.0, categorical_features="from_dtype", early_stopping=False,
    random_state=seed,
).fit(categorical(train), y)
forest = RandomForestRegressor(
    n_estimators=300, min_samples_leaf=10, max_features=0.5, n_jobs=1, random_state=seed
).fit(X, y)
mu = (glm.predict(Xt) + gbdt.predict(categorical(test)) + np.maximum(forest.predict(Xt), 0.05)) / 3
pd.DataFrame({"id": test["id"], "visits": mu}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
