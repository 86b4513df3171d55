

class Policy:
    """KL-UCB (Garivier & Cappe 2011) for Bernoulli rewards: pull every arm once, then the arm
    maximizing max{q >= p : n kl(p, q) <= ln t + c ln ln t} (c = 0, the value the paper
    recommends in practice), kl the Bernoulli relative entropy, solved by bisection and Newton steps. In a
    contextual setting the same index with p the ridge estimate (clipped to [0, 1]) and the
    effective count n = 1 / (x^T A^-1 x)."""

    RIDGE = 1.0
    C = 0.0
    BISECT = 10
    NEWTON = 2

    def __init__(self, n_runs, n_arms, horizon, dim, rng):
        self.R, self.K, self.T, self.d, self.rng = n_runs, n_arms, horizon, dim, rng
        self.rows = np.arange(n_runs)
        if dim:
            self.A_inv = np.tile(np.eye(dim) / self.RIDGE, (n_runs, 1, 1))
            self.b = np.zeros((n_runs, dim))
        else:
            self.n = np.zeros((n_runs, n_arms))
            self.s = np.zeros((n_runs, n_arms))

    def stats(self, contexts):
        """Estimated means and effective sample counts, shape (n_runs, n_arms) each. In a
        contextual setting: the ridge estimate <theta_hat, x> and 1 / (x^T A^-1 x), which is the
        pull count n of an arm when the contexts are one-hot."""
        if self.d:
            theta = np.einsum("rij,rj->ri", self.A_inv, self.b)
            mean = np.einsum("rkd,rd->rk", contexts, theta)
            var = np.einsum("rkd,rde,rke->rk", contexts, self.A_inv, contexts)
            return mean, 1.0 / np.maximum(var, 1e-12)
        return self.s / np.maximum(self.n, 1.0), self.n

    def select(self, t, contexts):
        self.last_contexts = contexts
        index = self.index(t, contexts) + 1e-9 * self.rng.random((self.R, self.K))
        return np.argmax(index, axis=1)

    def update(self, t, arms, rewards):
        if self.d:
            x = self.last_contexts[self.rows, arms]  # (R, d)
            Ax = np.einsum("rij,rj->ri", self.A_inv, x)
            self.A_inv -= Ax[:, :, None] * Ax[:, None, :] / (1.0 + (x * Ax).sum(1))[:, None, None]
            self.b += rewards[:, None] * x
        else:
            self.n[self.rows, arms] += 1.0
            self.s[self.rows, arms] += rewards

    def index(self, t, contexts):
        mean, n = self.stats(contexts)
        p = np.clip(mean, 0.0, 1.0)
        budget = math.log(t + 1) + self.C * math.log(max(math.log(t + 1), 1.0))
        level = budget / np.maximum(n, 1e-12)
        # the root of kl(p, q) = level on [p, 1]: Pinsker's inequality bounds it by
        # p + sqrt(level / 2); a few bisection steps, then Newton from the upper end (kl(p, .) is
        # convex and increasing there, so Newton decreases monotonically to the root)
        lo, hi = p, np.minimum(p + np.sqrt(0.5 * level), 1.0)
        for _ in range(self.BISECT):
            mid = 0.5 * (lo + hi)
            over = kl_bernoulli(p, mid) > level
            lo, hi = np.where(over, lo, mid), np.where(over, mid, hi)
        q = hi
        for _ in range(self.NEWTON):
            qc = np.clip(q, 1e-12, 1.0 - 1e-12)
            slope = np.maximum((qc - p) / (qc * (1.0 - qc)), 1e-12)
            q = np.clip(q - (kl_bernoulli(p, qc) - level) / slope, lo, q)
        return np.where(n > 0, q, np.inf)


def kl_bernoulli(p, q):
    """Relative entropy kl(p, q) of Bernoulli distributions, elementwise."""
    p = np.clip(p, 1e-15, 1.0 - 1e-15)
    q = np.clip(q, 1e-15, 1.0 - 1e-15)
    return p * np.log(p / q) + (1.0 - p) * np.log((1.0 - p) / (1.0 - q))
