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


class EdgeFeatures(nn.Module):
    """StructGNN-style edge features of the k-nearest-neighbour graph: RBF of the C-alpha distance,
    the direction of j in the local frame of i, the relative orientation of the two frames, and a
    sinusoidal encoding of the sequence offset."""

    def __init__(self, k=10, n_rbf=16, n_pos=16):
        super().__init__()
        self.k, self.n_rbf, self.n_pos = k, n_rbf, n_pos
        self.dim = n_rbf + 3 + 9 + n_pos

    def forward(self, x):
        d, idx = knn(x, self.k)
        R = local_frames(x)                                          # (B, L, 3, 3)
        dx = gather_nodes(x, idx) - x.unsqueeze(2)                   # (B, L, k, 3)
        direction = torch.einsum("blij,blki->blkj", R, _unit(dx))   # in i's frame
        Rj = gather_nodes(R.flatten(2), idx).view(*idx.shape, 3, 3)
        orient = torch.einsum("blij,blkim->blkjm", R, Rj).flatten(3)
        e = torch.cat([rbf(d, self.n_rbf), direction, orient, rel_pos(idx, self.n_pos)], -1)
        return e, idx


class MPLayer(nn.Module):
    """Message passing over the residue graph (Ingraham et al. 2019 encoder layer): messages
    MLP([h_i, h_j, e_ij]) averaged over the neighbours, residual + LayerNorm, then a feed-forward.
    (The first linear map of the message MLP is applied to h_i, h_j and e_ij separately, which is
    the same map computed per node instead of per edge.)"""

    def __init__(self, h, e):
        super().__init__()
        self.a_i, self.a_j, self.a_e = nn.Linear(h, h), nn.Linear(h, h, bias=False), nn.Linear(e, h, bias=False)
        self.msg = nn.Sequential(nn.GELU(), nn.Linear(h, h))
        self.ff = nn.Sequential(nn.Linear(h, 2 * h), nn.GELU(), nn.Linear(2 * h, h))
        self.n1, self.n2 = nn.LayerNorm(h), nn.LayerNorm(h)

    def forward(self, hv, he, idx):
        pre = self.a_i(hv).unsqueeze(2) + gather_nodes(self.a_j(hv), idx) + self.a_e(he)
        m = self.msg(pre).mean(2)
        hv = self.n1(hv + m)
        return self.n2(hv + self.ff(hv))


class StructGNN(nn.Module):
    """Structured-transformer-style GNN with one-shot per-residue output."""

    def __init__(self, cfg, hidden=48, layers=3, k=10):
        super().__init__()
        self.edges = EdgeFeatures(k)
        self.node_in = nn.Linear(10, hidden)
        self.edge_in = nn.Linear(self.edges.dim, hidden)
        self.layers = nn.ModuleList([MPLayer(hidden, hidden) for _ in range(layers)])
        self.out = nn.Linear(hidden, cfg.n_aa)

    def forward(self, x, seq=None):
        e, idx = self.edges(x)
        hv = self.node_in(local_features(x))
        he = self.edge_in(e)
        for layer in self.layers:
            hv = layer(hv, he, idx)
        return self.out(hv)


def build_model(cfg):
    return StructGNN(cfg)
