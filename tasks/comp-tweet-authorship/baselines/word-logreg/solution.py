"""Baseline: word uni+bigram TF-IDF (sublinear tf) + L2 logistic regression."""

import os

# one thread per library, as calibrated (the harness sets these; a bare shell may not)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
X, Xt = vec.fit_transform(train["text"]), vec.transform(test["text"])
model = LogisticRegression(C=4.0, max_iter=2000, random_state=seed).fit(X, train["android"])
p = model.predict_proba(Xt)[:, 1]
pd.DataFrame({"id": test["id"], "android": p}).to_csv("submission.csv", index=False)
print(f"wrote submission.csv ({len(test)} rows)")
