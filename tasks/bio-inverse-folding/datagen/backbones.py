"""Compact C-alpha backbones with secondary structure (numpy only, fixed seed).

A chain is built residue by residue from internal coordinates of the C-alpha trace (NeRF):
virtual bond 3.8 A, virtual bond angle theta and dihedral tau.  Helices use theta 91 deg,
tau 50 deg (rise 1.5 A, 3.6 residues per turn), strands theta 120-125 deg, tau about -170 deg
(3.3-3.4 A rise); loop residues pick, among random (theta, tau) candidates drawn from the coil
region, the one that keeps the chain compact (a helix or strand residue that would clash becomes a
loop residue: a kink or bulge), and (closest to the centroid of the chain so far) and
clash-free (every non-neighbour C-alpha pair at least 4.2 A apart).  A chain is kept only if it
is compact (radius of gyration below 3.4 L^0.34 A) - globular proteins have Rg ~ 2.2 L^0.38.

Fold classes (segment plans; lengths drawn per chain):
  alpha      helices of 10-16 residues joined by 3-4-residue loops (helical bundles)
  beta       strands of 5-7 residues joined by 2-3-residue turns (meanders / sheets)
  alpha+beta helices first, then strands (segregated, as in CATH class 'alpha beta' 2-layer)
  alpha/beta beta-alpha-beta units (strand, loop, helix, loop, ...) as in Rossmann-like folds
"""

from __future__ import annotations

import numpy as np

BOND = 3.8
HELIX = (np.deg2rad(91.0), np.deg2rad(50.0))
CLASSES = ("alpha", "beta", "alpha+beta", "alpha/beta")


def _place(a, b, c, theta, tau):
    """NeRF: positions d given a, b, c, |cd| = BOND, angle bcd = theta, dihedral abcd = tau
    (theta, tau: arrays of candidates)."""
    bc = c - b
    bc /= np.linalg.norm(bc)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, bc)
    theta, tau = np.atleast_1d(theta), np.atleast_1d(tau)
    d0 = -BOND * np.cos(theta)
    d1 = BOND * np.sin(theta) * np.cos(tau)
    d2 = BOND * np.sin(theta) * np.sin(tau)
    return c + d0[:, None] * bc + d1[:, None] * m + d2[:, None] * n


def plan(cls: str, L: int, rng) -> np.ndarray:
    """Secondary-structure string as int array: 0 coil, 1 helix, 2 strand."""
    ss = []

    def helix():
        ss.extend([1] * int(rng.integers(10, 17)))

    def strand():
        ss.extend([2] * int(rng.integers(5, 8)))

    def loop(lo, hi):
        ss.extend([0] * int(rng.integers(lo, hi + 1)))

    loop(1, 3)
    k = 0
    while len(ss) < L:
        if cls == "alpha":
            helix()
            loop(3, 4)
        elif cls == "beta":
            strand()
            loop(2, 3)
        elif cls == "alpha+beta":
            if len(ss) < 0.5 * L:
                helix()
                loop(3, 4)
            else:
                strand()
                loop(2, 3)
        else:  # alpha/beta
            if k % 2 == 0:
                strand()
                loop(2, 3)
            else:
                helix()
                loop(2, 3)
        k += 1
    ss = np.array(ss[:L])
    ss[-2:] = 0
    return ss


def _clash_free(p, x, i):
    if i <= 3:
        return np.ones(len(p), bool)
    return np.sqrt(((p[:, None, :] - x[None, : i - 2]) ** 2).sum(-1)).min(1) >= 4.2


def build(ss0: np.ndarray, rng, n_cand: int = 24, max_tries: int = 60):
    L = len(ss0)
    rg_max = 3.4 * L**0.34
    for _ in range(max_tries):
        ss = ss0.copy()
        x = np.zeros((L, 3))
        x[1] = [BOND, 0, 0]
        x[2] = x[1] + BOND * np.array([-np.cos(np.deg2rad(100)), np.sin(np.deg2rad(100)), 0])
        ok = True
        for i in range(3, L):
            if ss[i] == 1 and ss[i - 1] == 1:
                th, tau = HELIX[0] + rng.normal(0, 0.03, 1), HELIX[1] + rng.normal(0, 0.05, 1)
            elif ss[i] == 2 and ss[i - 1] == 2:
                th, tau = np.deg2rad(rng.uniform(118, 126, 1)), np.deg2rad(rng.normal(-170, 8, 1))
            else:
                th, tau = (
                    np.deg2rad(rng.uniform(85, 150, n_cand)),
                    rng.uniform(-np.pi, np.pi, n_cand),
                )
            p = _place(x[i - 3], x[i - 2], x[i - 1], th, tau)
            good = _clash_free(p, x, i)
            if not good.any() and len(p) == 1:
                # a helix / strand residue that would clash becomes a loop residue (a kink or bulge)
                ss[i] = 0
                th, tau = (
                    np.deg2rad(rng.uniform(85, 150, n_cand)),
                    rng.uniform(-np.pi, np.pi, n_cand),
                )
                p = _place(x[i - 3], x[i - 2], x[i - 1], th, tau)
                good = _clash_free(p, x, i)
            if not good.any():
                ok = False
                break
            s = np.linalg.norm(p - x[:i].mean(0), axis=1)
            s[~good] = np.inf
            x[i] = p[int(np.argmin(s))]
        if not ok:
            continue
        rg = np.sqrt(((x - x.mean(0)) ** 2).sum(1).mean())
        if rg < rg_max:
            return x - x.mean(0), ss
    return None


def sample_backbone(cls: str, L: int, rng):
    while True:
        ss = plan(cls, L, rng)
        r = build(ss, rng)
        if r is not None:
            return r
