"""Baseline: random forest on raw pixels, 200 trees, sqrt(784) features per split
(Breiman, Machine Learning 45, 2001; among the scikit-learn baselines of Xiao et al. 2017)."""

import os

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = np.load("train.npz"), np.load("test.npz")
X = train["images"].reshape(len(train["images"]), -1)
Xt = test["images"].reshape(len(test["images"]), -1)
model = RandomForestClassifier(n_estimators=200, n_jobs=1, random_state=seed).fit(X, train["labels"])
pd.DataFrame({"id": test["ids"], "label": model.predict(Xt)}).to_csv("submission.csv", index=False)
