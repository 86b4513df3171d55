"""Baseline: an SVM trained on virtual examples (Decoste & Schölkopf, Machine Learning 46, 2002;
here distorted copies of every training digit, not only of the support vectors): the RBF SVM of
svm-rbf on the training digits plus five randomly distorted copies of each (rotation, shear,
translation; augment.py), which builds the invariances into the training set."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from augment import augment
from sklearn.svm import SVC

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
pixels = [c for c in train.columns if c.startswith("p")]
X, y, Xt = train[pixels].to_numpy() / 16.0, train["label"].to_numpy(), test[pixels].to_numpy() / 16.0
XA, yA = augment(X, y, copies=5, rng=np.random.default_rng(seed))
pred = SVC(C=10.0, gamma=0.05).fit(XA, yA).predict(Xt)
pd.DataFrame({"id": test["id"], "label": pred}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
