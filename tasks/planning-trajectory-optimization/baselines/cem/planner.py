import numpy as np


class Planner:
    """Cross-entropy method (Rubinstein, 1999) for MPC with the settings of PETS (Chua et
    al., 2018): a diagonal Gaussian over action sequences (initial std = a quarter of the
    action range), refit with smoothing alpha = 0.1 to the best 10% of the samples for 5
    iterations, warm-started by shifting the previous solution one step (std reset); the first
    action of the mean is executed. Samples are clipped to the action box (as in the iCEM
    authors' CEM baseline) rather than drawn from PETS's variance-capped truncated normal,
    which cannot saturate the actuators that swing-up tasks need."""

    iterations = 5
    elite_frac = 0.1
    alpha = 0.1
    init_std = 0.5

    def __init__(self, spec, rng):
        self.spec = spec
        self.rng = rng
        self.horizon = spec.horizon
        self.mean = np.zeros((self.horizon, spec.act_dim))

    def plan(self, obs, t, model):
        h, a = self.horizon, self.spec.act_dim
        n = model.remaining // (h * self.iterations)
        n_elite = max(2, int(self.elite_frac * n))
        mean = self.mean
        std = np.full((h, a), self.init_std)
        for _ in range(self.iterations):
            samples = np.clip(mean + std * self.rng.standard_normal((n, h, a)), -1.0, 1.0)
            returns = model.rollout(samples)
            elites = samples[np.argsort(-returns, kind="stable")[:n_elite]]
            mean = self.alpha * mean + (1 - self.alpha) * elites.mean(axis=0)
            std = self.alpha * std + (1 - self.alpha) * elites.std(axis=0)
        action = mean[0].copy()
        self.mean = np.concatenate([mean[1:], np.zeros((1, a))])
        return action
