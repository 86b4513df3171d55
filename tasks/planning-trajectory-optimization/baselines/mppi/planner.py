import numpy as np


class Planner:
    """Model-predictive path integral control (Williams et al., 2017): perturb a nominal
    action sequence with Gaussian noise, average the perturbations weighted by
    exp((return - max return) / lambda), and shift the nominal sequence one step forward
    after each control step. The temperature lambda is set relative to the spread of the
    sampled returns, so one value serves problems whose rewards have different scales."""

    sigma = 0.5
    temperature = 0.1  # lambda / std(returns)

    def __init__(self, spec, rng):
        self.spec = spec
        self.rng = rng
        self.horizon = spec.horizon
        self.nominal = np.zeros((self.horizon, spec.act_dim))

    def plan(self, obs, t, model):
        h, a = self.horizon, self.spec.act_dim
        n = model.remaining // h
        u = self.nominal
        eps = self.sigma * self.rng.standard_normal((n, h, a))
        actions = np.clip(u + eps, -1.0, 1.0)
        returns = model.rollout(actions)
        lam = self.temperature * (returns.std() + 1e-12)
        w = np.exp((returns - returns.max()) / lam)
        w /= w.sum()
        u = np.clip(u + np.tensordot(w, actions - u, axes=1), -1.0, 1.0)
        action = u[0].copy()
        self.nominal = np.concatenate([u[1:], u[-1:]])
        return action
