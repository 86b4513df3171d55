

class Calibrator:
    """Temperature scaling (Guo, Pleiss, Sun & Weinberger, ICML 2017): one temperature T > 0
    for all classes, softmax(z / T), with T minimizing the negative log-likelihood of the
    calibration split. z = the logits, or ln max(p, 1e-12) for probability scores. The NLL is
    convex in beta = 1/T, so its derivative mean(E_softmax[z] - z_y) is increasing in beta:
    bisection on ln(beta) finds its root."""

    def __init__(self, kind, n_classes):
        self.kind, self.K, self.beta = kind, n_classes, 1.0

    def _logits(self, scores):
        s = np.asarray(scores, dtype=np.float64)
        return np.log(np.maximum(s, 1e-12)) if self.kind == "probability" else s

    @staticmethod
    def _softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def fit(self, scores, labels):
        z = self._logits(scores)
        zy = z[np.arange(len(labels)), labels]

        def slope(log_beta):
            p = self._softmax(math.exp(log_beta) * z)
            return float(((p * z).sum(axis=1) - zy).mean())

        lo, hi = math.log(1e-3), math.log(1e3)
        if slope(lo) >= 0:
            self.beta = math.exp(lo)
            return self
        if slope(hi) <= 0:
            self.beta = math.exp(hi)
            return self
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if slope(mid) < 0 else (lo, mid)
        self.beta = math.exp(0.5 * (lo + hi))
        return self

    def predict(self, scores):
        return self._softmax(self.beta * self._logits(scores))
