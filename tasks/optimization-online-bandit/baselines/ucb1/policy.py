

class Policy:
    """UCB1 (Auer, Cesa-Bianchi & Fischer 2002): pull every arm once, then the arm maximizing
    mean + sqrt(2 ln t / n). In a contextual setting the same bonus with the effective count
    n = 1 / (x^T A^-1 x) of the ridge estimate (the optimism of LinUCB, Li et al. 2010), which is
    UCB1 again for one-hot contexts."""

    RIDGE = 1.0

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
        bonus = np.sqrt(2.0 * math.log(t + 1) / np.maximum(n, 1e-12))
        return np.where(n > 0, mean + bonus, np.inf)
