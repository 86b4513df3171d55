

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
    """Beta calibration (Kull, Silva Filho & Flach, AISTATS 2017), one-vs-rest: for a class's
    probability s, P(y = k | s) = 1 / (1 + 1 / (exp(c) s^a / (1 - s)^b)), i.e. logistic
    regression on the features ln s and -ln(1 - s), with a, b >= 0 (the paper's fix: a negative
    coefficient's feature is dropped and the model refitted). Fitted by Newton's method on the
    cross-entropy with a tiny ridge; s is clipped to [1e-12, 1 - 1e-12]."""

    EPS = 1e-12

    def _design(self, s):
        s = np.clip(s, self.EPS, 1.0 - self.EPS)
        return np.stack([np.log(s), -np.log1p(-s), np.ones_like(s)], axis=1)

    @staticmethod
    def _logistic(x, y):
        w = np.zeros(x.shape[1])
        for _ in range(50):
            p = 0.5 * (1.0 + np.tanh(0.5 * (x @ w)))
            grad = x.T @ (p - y) + 1e-6 * w
            hess = (x * (p * (1.0 - p))[:, None]).T @ x + 1e-6 * np.eye(x.shape[1])
            step = np.linalg.solve(hess, grad)
            # a damped step: separable labels would otherwise drive the weights to infinity
            step *= min(1.0, 5.0 / max(np.abs(step).max(), 1e-12))
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        return w

    def fit_binary(self, s, y):
        x = self._design(s)
        keep = [0, 1, 2]
        w = self._logistic(x, y)
        for _ in range(2):
            neg = [i for i in keep[:-1] if w[keep.index(i)] < 0]
            if not neg:
                break
            keep.remove(neg[0])
            w = self._logistic(x[:, keep], y)
        full = np.zeros(3)
        full[keep] = w
        return full

    def apply_binary(self, w, s):
        return 0.5 * (1.0 + np.tanh(0.5 * (self._design(s) @ w)))
