

class ValueHead:
    """Double DQN (van Hasselt, Guez & Silver 2016): the online network picks the next action,
    the target network evaluates it; Huber loss as in DQN."""

    def __init__(self, num_actions, gamma):
        self.num_actions = num_actions
        self.gamma = gamma
        self.atoms = 1

    def q_values(self, out):
        return out[:, :, 0]

    def loss(self, out, actions, rewards, dones, target_next, online_next):
        q = out[:, :, 0].gather(1, actions[:, None])[:, 0]
        with torch.no_grad():
            a_star = online_next[:, :, 0].argmax(1, keepdim=True)
            next_q = target_next[:, :, 0].gather(1, a_star)[:, 0]
            y = rewards + self.gamma * (1.0 - dones) * next_q
        return F.smooth_l1_loss(q, y)
