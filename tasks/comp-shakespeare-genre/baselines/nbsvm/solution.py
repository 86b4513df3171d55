"""Baseline: NBSVM (Wang & Manning, Baselines and Bigrams: Simple, Good Sentiment and Topic
Classification, ACL 2012) in its logistic-regression form (NB-LR, Mesnil et al., ICLR 2015
workshop): binary word uni+bigram features scaled by the naive-Bayes log-count ratio of each
genre against the rest, one L2 logistic regression per genre (one-vs-rest), argmax of scores.
"""

import os

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
classes = np.array(sorted(train["genre"].unique()))
y = train["genre"].to_numpy()

vec = CountVectorizer(binary=True, ngram_range=(1, 2), min_df=2)
X, Xt = vec.fit_transform(train["text"]), vec.transform(test["text"])
scores = np.zeros((len(test), len(classes)))
for k, c in enumerate(classes):
    pos = y == c
    p = np.asarray(X[pos].sum(0)).ravel() + 1.0  # alpha = 1 smoothing
    q = np.asarray(X[~pos].sum(0)).ravel() + 1.0
    r = np.log((p / p.sum()) / (q / q.sum()))
    model = LogisticRegression(C=1.0, max_iter=1000, random_state=seed)
    model.fit(X.multiply(r).tocsr(), pos)
    scores[:, k] = model.decision_function(Xt.multiply(r).tocsr())
pred = classes[scores.argmax(1)]
pd.DataFrame({"id": test["id"], "genre": pred}).to_csv("submission.csv", index=False)
