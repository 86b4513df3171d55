"""The emulator's architecture: the EDITABLE file of this task (every line below the marker).
Lines above the marker are fixed.

Contract (kept by every submission) - a function `build_model(cfg) -> torch.nn.Module`:

    cfg          n_levels (30; index 0 = model top, 29 = lowest level), n_in_profiles (4: T, q,
                 u, v), n_in_scalars (3: Ts, S, Cd), n_out_profiles (4: tendencies of T, q, u,
                 v), n_out_scalars (2: precipitation, downwelling longwave at the surface), the
                 names (in_profiles, in_scalars, out_profiles, out_scalars), p_levels_hpa (the
                 pressure of each level), x_mean / x_std and y_mean / y_std (the standardization
                 of each input / output feature: physical = z * std + mean, features ordered
                 profile by profile, level by level, then the scalars), max_params (the cap).
    forward(x_prof, x_sca) -> (y_prof, y_sca)
                 x_prof (B, 4, 30) and x_sca (B, 3): standardized inputs of B columns;
                 y_prof (B, 4, 30) and y_sca (B, 2): the standardized tendencies. Each column's
                 prediction may depend on that column only (the harness checks it).
    The model (every element of its state_dict: parameters AND buffers) may hold at most
    cfg.max_params numbers; the harness counts them and fails the run above the cap.

The data, the standardization, the loss (mean squared error of the standardized outputs), the
optimizer (AdamW, fixed schedule), the batch size and the number of epochs are fixed
(harness.py, settings.py).  Allowed imports: torch, math.  No file I/O, no gradient hooks, no
optimizers of your own, no parameter changes outside the fixed optimizer.
"""
# ---- editable region starts here ----------------------------------------------------------
import torch
import torch.nn as nn


class ColumnED(nn.Module):
    """ClimSim's encoder-decoder baseline (Behrens et al. 2022; Yu et al. 2023): an MLP encoder
    squeezes the column into a small latent vector, an MLP decoder maps it to the tendencies."""

    def __init__(self, cfg, enc=(144, 64, 32), latent=8):
        super().__init__()
        self.cfg = cfg
        d_in = cfg.n_in_profiles * cfg.n_levels + cfg.n_in_scalars
        d_out = cfg.n_out_profiles * cfg.n_levels + cfg.n_out_scalars
        layers, d = [], d_in
        for h in enc:
            layers += [nn.Linear(d, h), nn.ELU()]
            d = h
        layers += [nn.Linear(d, latent), nn.ELU()]
        d = latent
        for h in reversed(enc):
            layers += [nn.Linear(d, h), nn.ELU()]
            d = h
        layers.append(nn.Linear(d, d_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x_prof, x_sca):
        B = x_prof.shape[0]
        y = self.net(torch.cat([x_prof.reshape(B, -1), x_sca], dim=1))
        n = self.cfg.n_out_profiles * self.cfg.n_levels
        return y[:, :n].reshape(B, self.cfg.n_out_profiles, self.cfg.n_levels), y[:, n:]


def build_model(cfg):
    return ColumnED(cfg)
