

class ConstraintHandler:
    """PPO-Lagrangian (Ray, Achiam & Amodei 2019): a Lagrange multiplier lambda >= 0 updated by
    gradient ascent on lambda * (J_c - d) with the rollout's mean episode cost J_c, and the
    surrogate advantage (A_r - lambda * A_c) / (1 + lambda)."""

    def __init__(self, cost_limit, num_updates):
        self.cost_limit = float(cost_limit)
        self.num_updates = int(num_updates)
        self.lam = 0.0
        self.lr = 0.05

    def update(self, ep_costs, ep_returns):
        jc = float(np.mean(ep_costs))
        self.lam = max(0.0, self.lam + self.lr * (jc - self.cost_limit))

    def combine(self, adv_r, adv_c):
        return (adv_r - self.lam * adv_c) / (1.0 + self.lam)
