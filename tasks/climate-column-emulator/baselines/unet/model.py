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


class DoubleConv(nn.Module):
    def __init__(self, c_in, c_out, k=3):
        super().__init__()
        self.c1 = nn.Conv1d(c_in, c_out, k, padding=k // 2)
        self.c2 = nn.Conv1d(c_out, c_out, k, padding=k // 2)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h):
        return self.skip(h) + self.c2(F.gelu(self.c1(F.gelu(h))))


class ColumnUNet(nn.Module):
    """1-D U-Net over the vertical levels, as in the ClimSim-Online U-Net emulator (Hu et al.
    2024; Ronneberger et al. 2015): an encoder that halves the number of levels twice (so deep
    layers see the whole column: convection and radiation couple distant levels), a decoder with
    skip connections back to full resolution, scalars broadcast to every level as channels, and
    the surface outputs read from the bottleneck and the lowest level."""

    def __init__(self, cfg, widths=(24, 40, 56)):
        super().__init__()
        self.cfg = cfg
        L = cfg.n_levels
        self.feat = ColumnFeatures(cfg)
        c_in = self.feat.channels
        w0, w1, w2 = widths
        self.e0 = DoubleConv(c_in, w0)
        self.e1 = DoubleConv(w0, w1)
        self.mid = DoubleConv(w1, w2)
        self.d1 = DoubleConv(w2 + w1, w1)
        self.d0 = DoubleConv(w1 + w0, w0)
        self.out = nn.Conv1d(w0, cfg.n_out_profiles, 1)
        self.sca = nn.Linear(w2 + w0, cfg.n_out_scalars)

    def forward(self, x_prof, x_sca):
        B, _, L = x_prof.shape
        h = self.feat(x_prof, x_sca)
        h0 = self.e0(h)                                          # L
        h1 = self.e1(F.avg_pool1d(h0, 2, ceil_mode=True))        # L/2
        m = self.mid(F.avg_pool1d(h1, 2, ceil_mode=True))        # L/4
        u1 = F.interpolate(m, size=h1.shape[-1], mode="linear", align_corners=False)
        u1 = self.d1(torch.cat([u1, h1], dim=1))
        u0 = F.interpolate(u1, size=L, mode="linear", align_corners=False)
        u0 = F.gelu(self.d0(torch.cat([u0, h0], dim=1)))
        return self.feat.head(self.out(u0)), self.sca(torch.cat([m.mean(-1), u0[:, :, -1]], dim=1))


def build_model(cfg):
    return ColumnUNet(cfg)
