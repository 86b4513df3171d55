"""The trajectory optimizer that model-predictive control calls at every control step.

Interface (kept by every planner; the harness in harness.py calls it):

    planner = Planner(spec, rng)
        spec.obs_dim, spec.act_dim   observation length; actions live in [-1, 1]^act_dim
        spec.budget                  model steps per control step (a rollout of N sequences
                                     of length H costs N * H)
        spec.max_horizon             longest action sequence one rollout may hold
        spec.horizon                 a sensible planning horizon for this problem
        spec.episode_len, spec.dt    control steps per episode, seconds per step
        rng                          a numpy Generator seeded by the harness (use it, and
                                     only it, for randomness)
    action = planner.plan(obs, t, model)
        obs       the current observation (numpy array, obs_dim), t the episode time step
        model     the dynamics model + reward, served by the harness:
                  model.rollout(actions) -> returns (N,), actions of shape (N, H, act_dim)
                  starting at the current state; model.rollout(actions, full=True) ->
                  (returns (N,), rewards (N, H), states (N, H + 1, S));
                  model.remaining / model.budget / model.max_horizon.
                  A request over the remaining budget raises BudgetExceeded (a RuntimeError)
                  and is not simulated; unused budget does not carry over to the next step.
        returns   the action (act_dim,) to apply now (clipped to [-1, 1] by the harness);
                  an exception escaping plan() or a non-finite action fails the run

The Planner object lives for the whole episode, so it may keep state between control steps
(a warm start). The model is the planner's source of the system: its physical parameters,
initial state and process noise are drawn per run and not given to the planner.
"""

import numpy as np


class Planner:
    """Random shooting (Nagabandi et al., 2018): sample action sequences uniformly in the
    action box, score each with one model rollout, execute the first action of the best."""

    def __init__(self, spec, rng):
        self.spec = spec
        self.rng = rng
        self.horizon = spec.horizon

    def plan(self, obs, t, model):
        h = self.horizon
        n = model.remaining // h
        actions = self.rng.uniform(-1.0, 1.0, size=(n, h, self.spec.act_dim))
        returns = model.rollout(actions)
        return actions[int(np.argmax(returns)), 0]
