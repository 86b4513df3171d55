"""The post-hoc calibrator (editable below the marked line).

A fixed classifier, trained by the harness, gives scores for the points of a held-out
calibration split (with their labels) and of a test split (without). `Calibrator.fit` sees the
calibration scores and labels; `Calibrator.predict` maps test scores to calibrated class
probabilities. Scores are an (n, K) float64 array; `kind` says what they are:
  "probability"  the classifier's predicted probabilities (rows sum to 1; many exact zeros);
  "logit"        unnormalized log-probabilities (softmax gives the classifier's probabilities;
                 a binary classifier's margin f comes as the two columns [0, f]).
predict must return an (n, K) array of probabilities: finite, in [0, 1], rows summing to 1.
"""

import math

import numpy as np

# ---- editable region (lines 18 to end): the calibrator ----


class Calibrator:
    """Identity: no calibration; the classifier's own probabilities (softmax of logits)."""

    def __init__(self, kind, n_classes):
        self.kind, self.K = kind, n_classes

    def fit(self, scores, labels):
        return self

    def predict(self, scores):
        if self.kind == "probability":
            return np.asarray(scores, dtype=np.float64)
        z = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
