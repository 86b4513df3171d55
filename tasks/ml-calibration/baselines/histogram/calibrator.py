

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
    """Histogram binning (Zadrozny & Elkan, ICML 2001), one-vs-rest: each class's scores are
    cut into B = 10 bins holding equal numbers of calibration points, and a score is mapped to
    the fraction of positives in its bin."""

    BINS = 10

    def fit_binary(self, s, y):
        edges = np.quantile(s, np.linspace(0.0, 1.0, self.BINS + 1)[1:-1])
        b = np.searchsorted(edges, s, side="right")
        counts = np.bincount(b, minlength=self.BINS)
        pos = np.bincount(b, weights=y, minlength=self.BINS)
        # an empty bin (ties at an edge) takes the overall positive rate
        rate = np.where(counts > 0, pos / np.maximum(counts, 1), y.mean())
        return edges, rate

    def apply_binary(self, fit, s):
        edges, rate = fit
        return rate[np.searchsorted(edges, s, side="right")]
