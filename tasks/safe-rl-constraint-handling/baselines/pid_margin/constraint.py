

class ConstraintHandler:
    """PID-Lagrangian with a budget margin: the PID multiplier of Stooke, Achiam & Abbeel
    (ICML 2020) tracks a tightened target d_eff = d * (1 - margin) instead of d, so that the
    final policy, which still oscillates around its target, stays under the true limit d (the
    cost-margin idea of conservative constrained RL, e.g. CUP, Yang et al. NeurIPS 2022, and
    CSC, Bharadhwaj et al. ICLR 2021). Surrogate (A_r - lambda * A_c) / (1 + lambda)."""

    def __init__(self, cost_limit, num_updates):
        self.cost_limit = float(cost_limit)
        self.num_updates = int(num_updates)
        self.target = self.cost_limit * 0.6
        self.kp, self.ki, self.kd = 0.1, 0.01, 0.1
        self.ema = 0.7
        self.integral = 0.0
        self.jc_p = None
        self.jc_d = None
        self.jc_d_prev = None
        self.lam = 0.0

    def update(self, ep_costs, ep_returns):
        jc = float(np.mean(ep_costs))
        err = jc - self.target
        self.integral = max(0.0, self.integral + err)
        if self.jc_p is None:
            self.jc_p = jc
            self.jc_d = jc
        self.jc_p = self.ema * self.jc_p + (1 - self.ema) * jc
        self.jc_d_prev = self.jc_d
        self.jc_d = self.ema * self.jc_d + (1 - self.ema) * jc
        deriv = max(0.0, self.jc_d - self.jc_d_prev)
        self.lam = max(0.0, self.kp * (self.jc_p - self.target) + self.ki * self.integral + self.kd * deriv)

    def combine(self, adv_r, adv_c):
        return (adv_r - self.lam * adv_c) / (1.0 + self.lam)
