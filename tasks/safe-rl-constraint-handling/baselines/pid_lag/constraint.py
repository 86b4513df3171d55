

class ConstraintHandler:
    """PID-Lagrangian (CPPO-PID; Stooke, Achiam & Abbeel, ICML 2020): the multiplier is a PID
    controller on the cost violation, lambda = max(0, Kp * e + Ki * I + Kd * max(0, dJ_c)),
    with e = J_c - d, the integral I kept non-negative and EMA-smoothed J_c for the P and D
    terms; surrogate advantage (A_r - lambda * A_c) / (1 + lambda)."""

    def __init__(self, cost_limit, num_updates):
        self.cost_limit = float(cost_limit)
        self.num_updates = int(num_updates)
        self.kp, self.ki, self.kd = 0.1, 0.01, 0.1
        self.ema = 0.7  # smoothing of J_c for the P and D terms
        self.integral = 0.0
        self.jc_p = None
        self.jc_d = None
        self.jc_d_prev = None
        self.lam = 0.0

    def update(self, ep_costs, ep_returns):
        jc = float(np.mean(ep_costs))
        err = jc - self.cost_limit
        self.integral = max(0.0, self.integral + err)
        if self.jc_p is None:
            self.jc_p = jc
            self.jc_d = jc
        self.jc_p = self.ema * self.jc_p + (1 - self.ema) * jc
        self.jc_d_prev = self.jc_d
        self.jc_d = self.ema * self.jc_d + (1 - self.ema) * jc
        deriv = max(0.0, self.jc_d - self.jc_d_prev)
        self.lam = max(0.0, self.kp * (self.jc_p - self.cost_limit) + self.ki * self.integral + self.kd * deriv)

    def combine(self, adv_r, adv_c):
        return (adv_r - self.lam * adv_c) / (1.0 + self.lam)
