import numpy as np


def colored_noise(rng, beta, n, horizon, act_dim):
    """Gaussian noise of shape (n, horizon, act_dim), temporally correlated along the horizon
    with power spectral density ~ 1 / f^beta (beta = 0: white noise; the construction of the
    colorednoise package used by the iCEM authors: random Fourier coefficients scaled by
    f^(-beta / 2), normalized to unit variance on average)."""
    f = np.fft.rfftfreq(horizon)
    fmin = 1.0 / horizon
    f = np.where(f < fmin, fmin, f)
    scale = f ** (-beta / 2.0)
    w = scale[1:].copy()
    w[-1] *= (1 + (horizon % 2)) / 2.0
    sigma = 2.0 * np.sqrt(np.sum(w**2)) / horizon
    re = rng.standard_normal((n, act_dim, len(f))) * scale
    im = rng.standard_normal((n, act_dim, len(f))) * scale
    if horizon % 2 == 0:
        im[..., -1] = 0.0
        re[..., -1] *= np.sqrt(2.0)
    im[..., 0] = 0.0
    re[..., 0] *= np.sqrt(2.0)
    y = np.fft.irfft(re + 1j * im, n=horizon, axis=-1) / sigma
    return np.transpose(y, (0, 2, 1))


class Planner:
    """iCEM (Pinneri et al., 2020), following the authors' implementation: CEM with colored
    (1/f^beta) sampling noise, a population shrinking by gamma each iteration (at least
    2 x elites), the best 30% of the elites kept into the next iteration (not re-simulated)
    and, shifted by one step, into the next control step, the mean added as a sample in
    the last iteration, momentum alpha on mean and std, the mean shifted forward between
    control steps (std reset), and the first action of the best sequence executed."""

    iterations = 3
    beta = 3.0
    gamma = 1.25
    n_elite = 10
    keep_frac = 0.3
    alpha = 0.1
    init_std = 0.5

    def __init__(self, spec, rng):
        self.spec = spec
        self.rng = rng
        self.horizon = spec.horizon
        self.mean = np.zeros((self.horizon, spec.act_dim))
        self.elites = None  # elite sequences of the previous control step, best first

    def _sizes(self, total):
        # n_i = max(2 K, n0 / gamma^i); choose the largest n0 whose plan fits the budget
        n_keep = int(self.n_elite * self.keep_frac)
        shifted = n_keep if self.elites is not None else 0

        def plan(n0):
            return [max(2 * self.n_elite, int(n0 / self.gamma**i)) for i in range(self.iterations)]

        n0 = total
        while n0 > 1 and sum(plan(n0)) + shifted > total:
            n0 = int(n0 / 1.05) if n0 > 40 else n0 - 1
        sizes = plan(n0)
        while sum(sizes) + shifted > total:  # tiny budgets: shrink below 2 K
            sizes[int(np.argmax(sizes))] -= 1
        return sizes, n_keep

    def _sample(self, mean, std, n):
        noise = colored_noise(self.rng, self.beta, n, self.horizon, self.spec.act_dim)
        return np.clip(mean + std * noise, -1.0, 1.0)

    def plan(self, obs, t, model):
        h, a = self.horizon, self.spec.act_dim
        sizes, n_keep = self._sizes(model.remaining // h)
        mean = self.mean
        std = np.full((h, a), self.init_std)
        elites = elite_ret = None
        for i in range(self.iterations):
            samples = self._sample(mean, std, sizes[i])
            if i == self.iterations - 1:
                samples[0] = mean
            if i == 0 and self.elites is not None and n_keep > 0:
                last = self._sample(mean, std, n_keep)[:, -1:]
                shifted = np.concatenate([self.elites[:n_keep, 1:], last], axis=1)
                samples = np.concatenate([samples, shifted])
            returns = model.rollout(samples)
            if i > 0 and n_keep > 0:
                samples = np.concatenate([samples, elites[:n_keep]])
                returns = np.concatenate([returns, elite_ret[:n_keep]])
            order = np.argsort(-returns, kind="stable")[: self.n_elite]
            elites, elite_ret = samples[order], returns[order]
            mean = (1 - self.alpha) * elites.mean(axis=0) + self.alpha * mean
            std = (1 - self.alpha) * elites.std(axis=0) + self.alpha * std
        action = elites[0, 0].copy()
        self.elites = elites
        self.mean = np.concatenate([mean[1:], mean[-1:]])
        return action
