import torch
import torch.nn as nn


class ColumnMLP(nn.Module):
    """ClimSim's MLP baseline (Yu et al. 2023): the flattened column (all levels of all
    profiles, and the surface scalars) -> fully connected layers with LeakyReLU(0.15) -> the
    flattened tendencies."""

    def __init__(self, cfg, hidden=(150, 150)):
        super().__init__()
        self.cfg = cfg
        d_in = cfg.n_in_profiles * cfg.n_levels + cfg.n_in_scalars
        layers = []
        for h in hidden:
            layers += [nn.Linear(d_in, h), nn.LeakyReLU(0.15)]
            d_in = h
        layers.append(nn.Linear(d_in, cfg.n_out_profiles * cfg.n_levels + cfg.n_out_scalars))
        self.net = nn.Sequential(*layers)

    def forward(self, x_prof, x_sca):
        B = x_prof.shape[0]
        y = self.net(torch.cat([x_prof.reshape(B, -1), x_sca], dim=1))
        n = self.cfg.n_out_profiles * self.cfg.n_levels
        return y[:, :n].reshape(B, self.cfg.n_out_profiles, self.cfg.n_levels), y[:, n:]


def build_model(cfg):
    return ColumnMLP(cfg)
