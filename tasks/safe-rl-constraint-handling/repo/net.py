"""Fixed file. The policy network (shared by the learner and the parent's evaluation)."""
import torch
import torch.nn as nn

HIDDEN = 64


def mlp(i, o, h=HIDDEN):
    return nn.Sequential(nn.Linear(i, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(), nn.Linear(h, o))


class Actor(nn.Module):
    """Gaussian policy: mean = MLP(obs), state-independent log std."""

    def __init__(self, obs_dim, act_dim):
        super().__init__()
        self.mu = mlp(obs_dim, act_dim)
        self.log_std = nn.Parameter(torch.full((act_dim,), -0.5))

    def dist(self, obs):
        return torch.distributions.Normal(self.mu(obs), self.log_std.exp())


def flat_params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy().astype("float32")


def load_flat(model, flat):
    flat = torch.as_tensor(flat, dtype=torch.float32)
    n = sum(p.numel() for p in model.parameters())
    if flat.numel() != n:
        raise ValueError(f"policy has {flat.numel()} parameters, expected {n}")
    i = 0
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(flat[i:i + p.numel()].reshape(p.shape))
            i += p.numel()
