

class Policy:
    """Thompson sampling (Agrawal & Goyal 2012): a Beta(1, 1) prior on each arm's mean; each
    step, sample every arm's mean from its posterior Beta(1 + successes, 1 + failures) and pull
    the arm with the largest sample. In a contextual setting linear Thompson sampling (Agrawal &
    Goyal 2013): sample theta ~ N(theta_hat, v^2 A^-1) from the ridge posterior, v = 1/2 (the
    sub-Gaussian scale of a reward in [0, 1]), and pull the arm maximizing <theta, x>."""

    RIDGE = 1.0
    V = 0.5

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
        if self.d:
            theta = np.einsum("rij,rj->ri", self.A_inv, self.b)
            L = np.linalg.cholesky(0.5 * (self.A_inv + self.A_inv.transpose(0, 2, 1)))
            z = self.rng.standard_normal((self.R, self.d))
            sample = theta + self.V * np.einsum("rij,rj->ri", L, z)
            return np.einsum("rkd,rd->rk", contexts, sample)
        return self.rng.beta(1.0 + self.s, 1.0 + self.n - self.s)
