import torch
import torch.nn as nn
import torch.nn.functional as F


class ColumnFeatures(nn.Module):
    """Per-level inputs as channels: the standardized profiles, the same profiles rescaled per
    variable (so that vertical differences, e.g. lapse rates, are physical), the surface scalars
    broadcast to every level and log-pressure; and a per-level affine output head (the outputs
    are standardized per level)."""

    def __init__(self, cfg):
        super().__init__()
        L, P = cfg.n_levels, cfg.n_in_profiles
        m = torch.tensor(cfg.x_mean[: P * L], dtype=torch.float32).reshape(1, P, L)
        s = torch.tensor(cfg.x_std[: P * L], dtype=torch.float32).reshape(1, P, L)
        vm = m.mean(-1, keepdim=True)
        vs = ((s ** 2 + (m - vm) ** 2).mean(-1, keepdim=True)).sqrt()
        self.register_buffer("scale", s / vs)            # z -> per-variable standardized
        self.register_buffer("shift", (m - vm) / vs)
        p = torch.tensor(cfg.p_levels_hpa, dtype=torch.float32)
        self.register_buffer("logp", torch.log(p / 1000.0).reshape(1, 1, L))
        self.channels = 2 * P + cfg.n_in_scalars + 1
        self.a = nn.Parameter(torch.ones(1, cfg.n_out_profiles, L))
        self.b = nn.Parameter(torch.zeros(1, cfg.n_out_profiles, L))

    def forward(self, x_prof, x_sca):
        B, _, L = x_prof.shape
        return torch.cat([x_prof, x_prof * self.scale + self.shift,
                          x_sca[:, :, None].expand(B, x_sca.shape[1], L), self.logp.expand(B, 1, L)], 1)

    def head(self, y):
        return y * self.a + self.b


class ResBlock(nn.Module):
    def __init__(self, c, k, dilation):
        super().__init__()
        pad = dilation * (k // 2)
        self.c1 = nn.Conv1d(c, c, k, padding=pad, dilation=dilation)
        self.c2 = nn.Conv1d(c, c, k, padding=pad, dilation=dilation)

    def forward(self, h):
        return h + self.c2(F.gelu(self.c1(F.gelu(h))))


class ColumnCNN(nn.Module):
    """1-D ResNet-style CNN over the vertical levels (the ClimSim CNN baseline, Yu et al. 2023;
    He et al. 2016): the variables are channels and the levels the spatial axis; dilations 1, 2,
    4, 8 give every output level a receptive field covering the whole column.  The surface
    outputs are read from the column mean and the lowest level."""

    def __init__(self, cfg, channels=32, dilations=(1, 2, 4, 8), k=3):
        super().__init__()
        self.cfg = cfg
        self.feat = ColumnFeatures(cfg)
        self.inp = nn.Conv1d(self.feat.channels, channels, k, padding=k // 2)
        self.blocks = nn.Sequential(*[ResBlock(channels, k, d) for d in dilations])
        self.out = nn.Conv1d(channels, cfg.n_out_profiles, 1)
        self.sca = nn.Linear(2 * channels, cfg.n_out_scalars)

    def forward(self, x_prof, x_sca):
        h = F.gelu(self.blocks(self.inp(self.feat(x_prof, x_sca))))
        return self.feat.head(self.out(h)), self.sca(torch.cat([h.mean(-1), h[:, :, -1]], dim=1))


def build_model(cfg):
    return ColumnCNN(cfg)
