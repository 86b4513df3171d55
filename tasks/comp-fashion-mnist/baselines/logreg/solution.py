"""Baseline: multinomial L2 logistic regression on raw pixels scaled to [0, 1] (the linear
baseline of the Fashion-MNIST benchmark: Xiao, Rasul & Vollgraf, arXiv:1708.07747, 2017)."""

import os

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = np.load("train.npz"), np.load("test.npz")
X = train["images"].reshape(len(train["images"]), -1) / 255.0
Xt = test["images"].reshape(len(test["images"]), -1) / 255.0
model = LogisticRegression(C=0.1, max_iter=200, random_state=seed).fit(X, train["labels"])
pd.DataFrame({"id": test["ids"], "label": model.predict(Xt)}).to_csv("submission.csv", index=False)
