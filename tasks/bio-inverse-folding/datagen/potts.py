"""Contact Potts model of sequences on a backbone (numpy only).

p(s | X) ~ exp( sum_i h_i(s_i) + sum_{i<j} w_ij M(s_i, s_j) )

  h_i(a)  = A_HYD * burial_i * hyd(a) + A_SS * log P_ss(i)(a) + log f(a)
            burial_i: standardized count of C-alpha atoms within 10 A (buried residues prefer
            hydrophobic amino acids); ss(i): helix / strand / coil of the generator's segment
            plan, P_ss the Chou-Fasman propensities (helix, sheet, turn); f: background
            amino-acid frequencies (UniProt-like).
  w_ij    = G * sigmoid((7.5 A - d_ij) / 0.7 A) for |i - j| >= 3 (C-alpha contacts)
  M(a, b) = hyd(a) hyd(b) - 0.8 q(a) q(b) + 0.35 R(a, b): hydrophobic attraction, opposite
            charges attract, plus a fixed random symmetric part (seeded) standing for the rest of
            a statistical contact potential (Miyazawa & Jernigan 1996).
Sequences are drawn by Gibbs sampling (site by site, all chains of a batch in parallel).
"""

from __future__ import annotations

import numpy as np

AA = "ACDEFGHIKLMNPQRSTVWY"
KD = dict(
    A=1.8,
    C=2.5,
    D=-3.5,
    E=-3.5,
    F=2.8,
    G=-0.4,
    H=-3.2,
    I=4.5,
    K=-3.9,
    L=3.8,
    M=1.9,
    N=-3.5,
    P=-1.6,
    Q=-3.5,
    R=-4.5,
    S=-0.8,
    T=-0.7,
    V=4.2,
    W=-0.9,
    Y=-1.3,
)
P_HELIX = dict(
    A=1.42,
    C=0.70,
    D=1.01,
    E=1.51,
    F=1.13,
    G=0.57,
    H=1.00,
    I=1.08,
    K=1.16,
    L=1.21,
    M=1.45,
    N=0.67,
    P=0.57,
    Q=1.11,
    R=0.98,
    S=0.77,
    T=0.83,
    V=1.06,
    W=1.08,
    Y=0.69,
)
P_SHEET = dict(
    A=0.83,
    C=1.19,
    D=0.54,
    E=0.37,
    F=1.38,
    G=0.75,
    H=0.87,
    I=1.60,
    K=0.74,
    L=1.30,
    M=1.05,
    N=0.89,
    P=0.55,
    Q=1.10,
    R=0.93,
    S=0.75,
    T=1.19,
    V=1.70,
    W=1.37,
    Y=1.47,
)
P_TURN = dict(
    A=0.66,
    C=1.19,
    D=1.46,
    E=0.74,
    F=0.60,
    G=1.56,
    H=0.95,
    I=0.47,
    K=1.01,
    L=0.59,
    M=0.60,
    N=1.56,
    P=1.52,
    Q=0.98,
    R=0.95,
    S=1.43,
    T=0.96,
    V=0.50,
    W=0.96,
    Y=1.14,
)
FREQ = dict(
    A=8.3,
    C=1.4,
    D=5.5,
    E=6.7,
    F=3.9,
    G=7.1,
    H=2.3,
    I=5.9,
    K=5.8,
    L=9.7,
    M=2.4,
    N=4.1,
    P=4.7,
    Q=3.9,
    R=5.5,
    S=6.6,
    T=5.3,
    V=6.9,
    W=1.1,
    Y=2.9,
)
CHARGE = dict(D=-1.0, E=-1.0, K=1.0, R=1.0, H=0.3)

A_HYD, A_SS, G_CONTACT = 1.2, 2.0, 0.6
Q = 20


def tables(seed: int = 7):
    hyd = np.array([KD[a] for a in AA]) / 4.5
    chg = np.array([CHARGE.get(a, 0.0) for a in AA])
    R = np.random.default_rng(seed).normal(0, 1, (Q, Q))
    R = (R + R.T) / np.sqrt(2)
    M = np.outer(hyd, hyd) - 0.8 * np.outer(chg, chg) + 0.35 * R
    ss_logp = np.log(
        np.array([[P_TURN[a] for a in AA], [P_HELIX[a] for a in AA], [P_SHEET[a] for a in AA]])
    )
    logf = np.log(np.array([FREQ[a] for a in AA]) / sum(FREQ.values()))
    return hyd, M, ss_logp, logf


def burial(x: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(x[:, :, None] - x[:, None], axis=-1)
    return (d < 10.0).sum(-1) - 1.0


def fields_couplings(x: np.ndarray, ss: np.ndarray, bur_mean: float, bur_std: float):
    """x (N, L, 3), ss (N, L) -> h (N, L, 20), w (N, L, L), M (20, 20)."""
    hyd, M, ss_logp, logf = tables()
    b = (burial(x) - bur_mean) / bur_std
    h = A_HYD * b[..., None] * hyd + A_SS * ss_logp[ss] + logf
    d = np.linalg.norm(x[:, :, None] - x[:, None], axis=-1)
    L = x.shape[1]
    sep = np.abs(np.arange(L)[:, None] - np.arange(L)[None])
    w = G_CONTACT / (1.0 + np.exp(-(7.5 - d) / 0.7)) * (sep >= 3)
    return h, w, M


def gibbs(h, w, M, rng, sweeps: int = 120, keep_from: int | None = None):
    """Gibbs sampling of N chains in parallel. Returns the final states (N, L) and, when
    keep_from is given, the counts (N, L, 20) of the states visited from that sweep on."""
    N, L, _ = h.shape
    s = rng.integers(0, Q, (N, L))
    Ms = M[s]  # (N, L, 20): M(., s_j)
    counts = np.zeros((N, L, Q)) if keep_from is not None else None
    ar = np.arange(N)
    for sw in range(sweeps):
        for i in range(L):
            logits = h[:, i] + np.einsum("nj,nja->na", w[:, i], Ms)
            logits -= logits.max(1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(1, keepdims=True)
            u = rng.random(N)[:, None]
            a = (p.cumsum(1) < u).sum(1).clip(0, Q - 1)
            s[:, i] = a
            Ms[:, i] = M[a]
            if counts is not None and sw >= keep_from:
                counts[ar, i, a] += 1
    return s, counts
