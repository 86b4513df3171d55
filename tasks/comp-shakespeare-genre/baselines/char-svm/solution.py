"""Baseline: character 2-5-gram TF-IDF (within word boundaries) + linear SVM (one-vs-rest).

Character n-grams are the standard stylometric features (Stamatatos, A survey of modern
authorship attribution methods, JASIST 60 (2009)); linear SVMs on TF-IDF: Joachims, ECML 1998;
Fan et al., LIBLINEAR, JMLR 2008.
"""

import os

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

seed = int(os.environ.get("MLSBENCH_SEED", 0))
np.random.seed(seed)
train, test = pd.read_csv("train.csv"), pd.read_csv("test.csv")
vec = TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(2, 5), min_df=2,
                      max_features=150000)
X, Xt = vec.fit_transform(train["text"]), vec.transform(test["text"])
model = LinearSVC(C=0.3, random_state=seed).fit(X, train["genre"])
pd.DataFrame({"id": test["id"], "genre": model.predict(Xt)}).to_csv("submission.csv", index=False)
