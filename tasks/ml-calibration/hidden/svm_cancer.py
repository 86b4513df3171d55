"""A setting kept back (fixed; copied into the run's folder at the final evaluation only):
an RBF support vector machine on the Wisconsin breast cancer data (569 points, 30 features),
whose margin f is handed to the calibrator as the logits [0, f]."""

from __future__ import annotations

import numpy as np


def load(spec, labels_only=False):
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return (None if labels_only else d.data.astype(np.float64)), d.target.astype(np.int64)


def train_and_score(spec, seed, x_train, y_train, x):
    from sklearn.svm import SVC

    mu, sd = x_train.mean(axis=0), x_train.std(axis=0) + 1e-12
    clf = SVC(C=spec.get("C", 1.0), kernel="rbf", gamma="scale", random_state=seed)
    clf.fit((x_train - mu) / sd, y_train)
    f = clf.decision_function((x - mu) / sd)
    return "logit", np.stack([np.zeros_like(f), f], axis=1)
