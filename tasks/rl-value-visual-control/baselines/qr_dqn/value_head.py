

class ValueHead:
    """QR-DQN (Dabney, Rowland, Bellemare & Munos 2018): each action's return distribution is
    represented by N = 50 quantile estimates at the midpoints tau_i = (2i + 1) / 2N; the target
    quantiles r + gamma * theta_j(s', a*) (a* greedy for the target network's mean) are fitted with
    the quantile Huber loss (kappa = 1)."""

    def __init__(self, num_actions, gamma, n_quantiles=50, kappa=1.0):
        self.num_actions = num_actions
        self.gamma = gamma
        self.atoms = n_quantiles
        self.kappa = kappa
        self.tau = (torch.arange(n_quantiles, dtype=torch.float32) + 0.5) / n_quantiles

    def q_values(self, out):
        return out.mean(2)

    def loss(self, out, actions, rewards, dones, target_next, online_next):
        B = out.shape[0]
        theta = out[torch.arange(B), actions]                                      # (B, N)
        with torch.no_grad():
            a_star = target_next.mean(2).argmax(1)
            tq = target_next[torch.arange(B), a_star]                              # (B, N)
            y = rewards[:, None] + self.gamma * (1.0 - dones[:, None]) * tq
        N = self.atoms
        pred, targ = theta[:, :, None].expand(B, N, N), y[:, None, :].expand(B, N, N)  # (B, N_i, N_j)
        # the Huber loss of u = targ - pred (torch's fused op: a third of the time of the formula)
        huber = F.huber_loss(pred, targ, reduction="none", delta=self.kappa)
        weight = (self.tau[None, :, None] - (targ < pred).float()).abs()            # |tau_i - 1{u<0}|
        return (weight * huber / self.kappa).sum(1).mean(1).mean()
