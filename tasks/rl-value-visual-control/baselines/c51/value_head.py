

class ValueHead:
    """C51 (Bellemare, Dabney & Munos 2017): a categorical return distribution on 51 fixed atoms
    in [-10, 10] per action (softmax over the outputs); the target distribution of
    r + gamma * z under the greedy next action of the target network is projected onto the
    support, and the loss is the cross-entropy to it."""

    def __init__(self, num_actions, gamma, n_atoms=51, v_min=-10.0, v_max=10.0):
        self.num_actions = num_actions
        self.gamma = gamma
        self.atoms = n_atoms
        self.v_min, self.v_max = v_min, v_max
        self.support = torch.linspace(v_min, v_max, n_atoms)
        self.dz = (v_max - v_min) / (n_atoms - 1)

    def q_values(self, out):
        return (torch.softmax(out, dim=2) * self.support).sum(2)

    def loss(self, out, actions, rewards, dones, target_next, online_next):
        B = out.shape[0]
        logp = torch.log_softmax(out, dim=2)[torch.arange(B), actions]          # (B, atoms)
        with torch.no_grad():
            p_next = torch.softmax(target_next, dim=2)                            # (B, A, atoms)
            a_star = (p_next * self.support).sum(2).argmax(1)
            p = p_next[torch.arange(B), a_star]                                   # (B, atoms)
            tz = rewards[:, None] + self.gamma * (1.0 - dones[:, None]) * self.support[None]
            tz = tz.clamp(self.v_min, self.v_max)
            b = (tz - self.v_min) / self.dz
            lo = b.floor().long()
            hi = b.ceil().long()
            # when b is an integer, lo == hi: give the whole mass to that atom
            lo[(hi > 0) & (lo == hi)] -= 1
            hi[(lo < self.atoms - 1) & (lo == hi)] += 1
            m = torch.zeros(B, self.atoms)
            m.scatter_add_(1, lo, p * (hi.float() - b))
            m.scatter_add_(1, hi, p * (b - lo.float()))
        return -(m * logp).sum(1).mean()
