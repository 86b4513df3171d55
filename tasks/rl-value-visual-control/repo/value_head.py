"""The value-learning component of a DQN-family agent (the only file you edit).

The fixed network maps a MinAtar frame to num_actions * atoms outputs, reshaped to
(batch, num_actions, atoms); `atoms` (outputs per action, 1..128) is yours to choose. This module
says how Q-values for acting are read from those outputs and what loss trains them.

  ValueHead(num_actions, gamma)   built once, in its own process
    .atoms                        int, outputs per action
    .q_values(out)                out (n, A, atoms) float32 -> (n, A) Q-values; the agent acts
                                  epsilon-greedily on their argmax
    .loss(out, actions, rewards, dones, target_next, online_next) -> scalar tensor
        out          (B, A, atoms)  online network on s (requires grad: the loss is
                                    differentiated with respect to it)
        actions      (B,) int64     action taken in s
        rewards      (B,) float32   reward received
        dones        (B,) float32   1.0 when s' is terminal
        target_next  (B, A, atoms)  target network on s' (no grad)
        online_next  (B, A, atoms)  online network on s' (no grad)
"""
import torch
import torch.nn.functional as F

# ---- editable region starts here


class ValueHead:
    """DQN (Mnih et al. 2015): one output per action is its Q-value; one-step Q-learning target
    r + gamma * max_a' Q_target(s', a') and the Huber loss."""

    def __init__(self, num_actions, gamma):
        self.num_actions = num_actions
        self.gamma = gamma
        self.atoms = 1

    def q_values(self, out):
        return out[:, :, 0]

    def loss(self, out, actions, rewards, dones, target_next, online_next):
        q = out[:, :, 0].gather(1, actions[:, None])[:, 0]
        with torch.no_grad():
            next_q = target_next[:, :, 0].max(1).values
            y = rewards + self.gamma * (1.0 - dones) * next_q
        return F.smooth_l1_loss(q, y)
