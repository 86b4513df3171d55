

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
    """Platt scaling (Platt, Advances in Large Margin Classifiers, 1999), one-vs-rest:
    P(y = k | f) = 1 / (1 + exp(A f + B)) for each class's score f (the logit
    ln p_k - ln(1 - p_k) for logit scores; the probability itself for probability scores, as
    Niculescu-Mizil & Caruana, ICML 2005, apply it to random forests and boosting). A and B
    minimize the cross-entropy against Platt's smoothed targets (N+ + 1) / (N+ + 2) and
    1 / (N- + 2), by Newton's method with backtracking (Lin, Lin & Weng, Machine Learning 68,
    2007)."""

    def _features(self, scores):
        p = _binary_columns(self.kind, scores)
        if self.kind == "probability":
            return p
        z = np.asarray(scores, dtype=np.float64)
        out = np.empty_like(z)
        for k in range(z.shape[1]):
            rest = np.delete(z, k, axis=1)
            m = rest.max(axis=1)
            out[:, k] = z[:, k] - (m + np.log(np.exp(rest - m[:, None]).sum(axis=1)))
        return out

    def fit_binary(self, f, y):
        n_pos, n_neg = y.sum(), len(y) - y.sum()
        t = np.where(y > 0, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

        def loss(a, b):
            g = a * f + b  # P = 1 / (1 + exp(g))
            return float((t * g + np.logaddexp(0.0, -g)).sum())

        a, b = 0.0, math.log((n_neg + 1.0) / (n_pos + 1.0))
        cur = loss(a, b)
        for _ in range(100):
            g = a * f + b
            p = 0.5 * (1.0 - np.tanh(0.5 * g))  # 1 / (1 + exp(g)), stably
            d1, d2 = t - p, np.maximum(p * (1.0 - p), 1e-12)
            grad = np.array([(f * d1).sum(), d1.sum()])
            hess = np.array([[(f * f * d2).sum() + 1e-12, (f * d2).sum()],
                             [(f * d2).sum(), d2.sum() + 1e-12]])
            if np.abs(grad).max() < 1e-5:
                break
            step = np.linalg.solve(hess, -grad)
            lr = 1.0
            while lr > 1e-10:
                na, nb = a + lr * step[0], b + lr * step[1]
                new = loss(na, nb)
                if new < cur + 1e-4 * lr * float(grad @ step):
                    break
                lr /= 2.0
            if lr <= 1e-10:
                break
            a, b, cur = na, nb, new
        return a, b

    def apply_binary(self, ab, f):
        return 0.5 * (1.0 - np.tanh(0.5 * (ab[0] * f + ab[1])))
