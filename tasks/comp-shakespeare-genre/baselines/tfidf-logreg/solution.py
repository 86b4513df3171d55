"""Baseline: word uni+bigram TF-IDF (sublinear tf) + multinomial L2 logistic regression.

Salton & Buckley, Term-weighting approaches in automatic text retrieval, IP&M 24 (1988);
the standard linear text classifier (e.g. Joachims, ECML 1998; Fan et al., LIBLINEAR, JMLR 2008).
"""

import os

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)
X, Xt = vec.fit_transform(train["text"]), vec.transform(test["text"])
model = LogisticRegression(C=10.0, max_iter=1000, random_state=seed).fit(X, train["genre"])
pd.DataFrame({"id": test["id"], "genre": model.predict(Xt)}).to_csv("submission.csv", index=False)
