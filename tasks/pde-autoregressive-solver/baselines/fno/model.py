import torch
import torch.nn as nn


class SpectralConv1d(nn.Module):
    """Fourier layer of Li et al. (ICLR 2021): multiply the lowest `modes` Fourier modes by a
    learned complex matrix (channels in x channels out) and drop the rest."""

    def __init__(self, width, modes):
        super().__init__()
        self.modes = modes
        scale = 1.0 / (width * width)
        self.w_re = nn.Parameter(scale * torch.randn(width, width, modes))
        self.w_im = nn.Parameter(scale * torch.randn(width, width, modes))

    def forward(self, x):
        n = x.shape[-1]
        xf = torch.fft.rfft(x, dim=-1)[..., : self.modes]
        w = torch.complex(self.w_re, self.w_im)
        yf = torch.einsum("bim,iom->bom", xf, w)
        out = torch.zeros(x.shape[0], w.shape[1], n // 2 + 1, dtype=yf.dtype)
        out[..., : self.modes] = yf
        return torch.fft.irfft(out, n=n, dim=-1)


class FNO1d(nn.Module):
    """FNO-1d: lift (history + grid coordinate) to `width` channels, four Fourier layers
    (spectral convolution + pointwise linear, GELU), project back; a residual on the last
    snapshot, as PDEBench's autoregressive FNO predicts the next step."""

    def __init__(self, cfg, width=24, modes=12, layers=4):
        super().__init__()
        self.register_buffer("grid", (torch.arange(cfg.n_x) + 0.5) / cfg.n_x, persistent=False)
        self.lift = nn.Conv1d(cfg.t_in + 1, width, 1)
        self.spectral = nn.ModuleList(SpectralConv1d(width, modes) for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Conv1d(width, width, 1) for _ in range(layers))
        self.proj = nn.Sequential(nn.Conv1d(width, 64, 1), nn.GELU(), nn.Conv1d(64, 1, 1))
        self.act = nn.GELU()

    def forward(self, u):
        grid = self.grid.expand(u.shape[0], 1, -1)
        h = self.lift(torch.cat([u, grid], dim=1))
        for i, (sc, pw) in enumerate(zip(self.spectral, self.pointwise)):
            h = sc(h) + pw(h)
            if i < len(self.spectral) - 1:
                h = self.act(h)
        return u[:, -1] + self.proj(h).squeeze(1)


def build_model(cfg):
    return FNO1d(cfg)
