"""Baseline: histogram gradient boosting (LightGBM-style; Ke et al. 2017), regularized: learning
rate 0.05, 15 leaves, at least 100 captures per leaf, L2 1.0, early stopping on a 10% validation
split; plot type and sex as native categorical features, missing measurements as missing.
(scikit-learn's defaults, 31 leaves of 20, give near-0/1 probabilities that score worse than
the class prior under the 1997-2002 shift: see the README.)"""

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
classes = pd.read_csv("sample_submission.csv", nrows=1).columns[1:].tolist()
COLS = ["year", "month", "plot_id", "plot_type", "sex", "hindfoot_length", "weight"]


def features(df: pd.DataFrame) -> pd.DataFrame:
    out = df[COLS].copy()
    for c in ("plot_type", "sex"):
        out[c] = pd.Categorical(df[c], categories=sorted(train[c].dropna().unique()))
    return out


model = HistGradientBoostingClassifier(
    learning_rate=0.05,
    max_leaf_nodes=15,
    min_samples_leaf=100,
    l2_regularization=1.0,
    categorical_features="from_dtype",
    early_stopping=True,
    random_state=seed,
)
model.fit(features(train), train["species_id"])
p = pd.DataFrame(model.predict_proba(features(test)), columns=model.classes_)
p = p.reindex(columns=classes, fill_value=0.0)
p.insert(0, "id", test["id"].to_numpy())
p.to_csv("submission.csv", index=False)
print(f"{model.n_iter_} rounds; wrote submission.csv ({len(test)} rows)")
