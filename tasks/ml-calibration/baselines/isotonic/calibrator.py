

def _binary_columns(kind, scores):
    """The per-class one-vs-rest scores that the binary method calibrates: probability scores
    as they are, logits through the softmax."""
    s = np.asarray(scores, dtype=np.float64)
    if kind == "probability":
        return s
    z = s - s.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class OneVsRest:
    """Multi-class calibration from a binary method (Zadrozny & Elkan, KDD 2002): calibrate
    each class's score against "this class or not", then normalize the rows. With two classes
    only class 1 is calibrated and class 0 gets the complement."""

    def __init__(self, kind, n_classes):
        self.kind, self.K = kind, n_classes

    def fit(self, scores, labels):
        s = self._features(scores)
        classes = [1] if self.K == 2 else range(self.K)
        self.maps = {k: self.fit_binary(s[:, k], (labels == k).astype(np.float64))
                     for k in classes}
        return self

    def predict(self, scores):
        s = self._features(scores)
        if self.K == 2:
            p1 = np.clip(self.apply_binary(self.maps[1], s[:, 1]), 0.0, 1.0)
            return np.stack([1.0 - p1, p1], axis=1)
        p = np.stack([np.clip(self.apply_binary(self.maps[k], s[:, k]), 0.0, 1.0)
                      for k in range(self.K)], axis=1)
        total = p.sum(axis=1, keepdims=True)
        fallback = _binary_columns(self.kind, scores)
        return np.where(total > 0, p / np.where(total > 0, total, 1.0), fallback)

    def _features(self, scores):
        return _binary_columns(self.kind, scores)


class Calibrator(OneVsRest):
    """Isotonic regression (Zadrozny & Elkan, KDD 2002), one-vs-rest: for each class the
    non-decreasing function of its score that best fits the 0/1 labels in squared error, found
    by the pool-adjacent-violators algorithm (Ayer et al., Ann. Math. Stat. 26, 1955); between
    the fitted points it is interpolated linearly, beyond them held constant."""

    def fit_binary(self, s, y):
        order = np.argsort(s, kind="mergesort")
        xs, ys = s[order], y[order]
        # tied scores first become one point (their mean label, their count as weight)
        ux, start, counts = np.unique(xs, return_index=True, return_counts=True)
        sums = np.add.reduceat(ys, start)
        means, weights, sizes = [], [], []
        for m, w in zip(sums / counts, counts.astype(np.float64)):
            means.append(m)
            weights.append(w)
            sizes.append(1)
            while len(means) > 1 and means[-2] >= means[-1]:
                w2 = weights[-2] + weights[-1]
                m2 = (means[-2] * weights[-2] + means[-1] * weights[-1]) / w2
                n2 = sizes[-2] + sizes[-1]
                del means[-1], weights[-1], sizes[-1]
                means[-1], weights[-1], sizes[-1] = m2, w2, n2
        fitted = np.repeat(np.array(means), np.array(sizes))
        return ux, fitted

    def apply_binary(self, fit, s):
        ux, fitted = fit
        return np.interp(s, ux, fitted)
