import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _unit(v):
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-6)


def _pad_ends(t, left, right):
    """Pad dim 1 by repeating the first / last entry."""
    parts = [t[:, :1]] * left + [t] + [t[:, -1:]] * right
    return torch.cat(parts, dim=1)


def local_features(x):
    """Per-residue local geometry of a C-alpha trace x (B, L, 3) -> (B, L, 10): cos / sin of the
    virtual bond angle and of the virtual dihedral, and the C-alpha distances to i+-2, i+-3, i+-4
    (scaled), which separate helix (5.4 / 5.0 / 6.2 A) from strand (6.4 / 10 / 13 A)."""
    u = _unit(x[:, 1:] - x[:, :-1])                      # bonds (B, L-1, 3)
    cos_a = -(u[:, :-1] * u[:, 1:]).sum(-1)              # angle at residues 1..L-2
    ang = torch.stack([cos_a, (1 - cos_a ** 2).clamp_min(0).sqrt()], -1)
    ang = _pad_ends(ang, 1, 1)
    n1 = _unit(torch.cross(u[:, :-2], u[:, 1:-1], dim=-1))
    n2 = _unit(torch.cross(u[:, 1:-1], u[:, 2:], dim=-1))
    cos_d = (n1 * n2).sum(-1)
    sin_d = (torch.cross(n1, n2, dim=-1) * u[:, 1:-1]).sum(-1)
    dih = _pad_ends(torch.stack([cos_d, sin_d], -1), 1, 2)   # dihedral of (i-1, i, i+1, i+2)
    feats = [ang, dih]
    for k in (2, 3, 4):
        d = (x[:, k:] - x[:, :-k]).norm(dim=-1) / 10.0
        feats.append(_pad_ends(d.unsqueeze(-1), k, 0))
        feats.append(_pad_ends(d.unsqueeze(-1), 0, k))
    return torch.cat(feats, -1)


def local_frames(x):
    """An orthonormal frame per residue from C-alpha(i-1), C-alpha(i), C-alpha(i+1): (B, L, 3, 3)."""
    u = _unit(x[:, 1:-1] - x[:, :-2])
    v = _unit(x[:, 2:] - x[:, 1:-1])
    b = _unit(u - v)
    n = _unit(torch.cross(u, v, dim=-1))
    R = torch.stack([b, n, torch.cross(b, n, dim=-1)], -1)
    return _pad_ends(R, 1, 1)


def knn(x, k):
    """Indices (B, L, k) of the k nearest other residues and their distances."""
    D = torch.cdist(x, x)
    L = x.shape[1]
    D = D + torch.eye(L, dtype=x.dtype) * 1e4
    d, idx = torch.topk(D, min(k, L - 1), dim=-1, largest=False)
    return d, idx


def gather_nodes(h, idx):
    """h (B, L, C), idx (B, L, k) -> (B, L, k, C)."""
    B, L, k = idx.shape
    flat = idx.reshape(B, L * k, 1).expand(-1, -1, h.shape[-1])
    return torch.gather(h, 1, flat).reshape(B, L, k, h.shape[-1])


def rbf(d, n=16, lo=2.0, hi=22.0):
    mu = torch.linspace(lo, hi, n, dtype=d.dtype)
    sigma = (hi - lo) / n
    return torch.exp(-(((d.unsqueeze(-1) - mu) / sigma) ** 2))


def rel_pos(idx, n=16):
    """Sinusoidal encoding of the clipped sequence offset j - i, (B, L, k, n)."""
    L = idx.shape[1]
    off = (idx - torch.arange(L).view(1, L, 1)).clamp(-32, 32).float()
    freq = torch.exp(-math.log(100.0) * torch.arange(n // 2, dtype=torch.float32) / (n // 2))
    a = off.unsqueeze(-1) * freq
    return torch.cat([torch.sin(a), torch.cos(a)], -1)


def exposure_features(x):
    """Per-residue solvent exposure of a C-alpha trace x (B, L, 3) -> (B, L, 5): contact numbers
    (other C-alpha atoms within 8, 10 and 12 A) and the C-alpha half-sphere exposure within 13 A
    (Hamelryck 2005: neighbours on the side of the pseudo side-chain direction
    2 CA(i) - CA(i-1) - CA(i+1), and on the other side), each divided by 10."""
    L = x.shape[1]
    D = torch.cdist(x, x) + torch.eye(L, dtype=x.dtype) * 1e4
    cn = [(D < r).float().sum(-1) for r in (8.0, 10.0, 12.0)]
    side = _pad_ends(_unit(2 * x[:, 1:-1] - x[:, :-2] - x[:, 2:]), 1, 1)      # (B, L, 3)
    rel = x.unsqueeze(1) - x.unsqueeze(2)                                       # j - i
    up = ((rel * side.unsqueeze(2)).sum(-1) > 0).float()
    near = (D < 13.0).float()
    hse = [(near * up).sum(-1), (near * (1 - up)).sum(-1)]
    return torch.stack(cn + hse, -1) / 10.0


class ExposureMLP(nn.Module):
    """SPIN2-style per-residue MLP: the local geometry of residues i-3 .. i+3 (angles,
    dihedrals, i+-2..4 distances, as the default) and their solvent exposure (contact numbers,
    half-sphere exposure) -> amino-acid logits of residue i. No residue graph: burial is
    summarised by counts, contacts are not resolved."""

    def __init__(self, cfg, window=3, hidden=128):
        super().__init__()
        self.window = window
        d_in = 15 * (2 * window + 1)
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, cfg.n_aa))

    def forward(self, x, seq=None):
        f = torch.cat([local_features(x), exposure_features(x)], -1)
        w = self.window
        fp = _pad_ends(f, w, w)
        L = x.shape[1]
        win = torch.cat([fp[:, o: o + L] for o in range(2 * w + 1)], -1)
        return self.net(win)


def build_model(cfg):
    return ExposureMLP(cfg)
