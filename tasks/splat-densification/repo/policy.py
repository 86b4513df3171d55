"""Densification policy for 2-D Gaussian-splat image fitting (lines above the marker are fixed).

The harness calls densify(stats, rng) in a separate process every INTERVAL (25) steps of the fit,
except after the last step. `stats` holds, for the N current Gaussians (row i = Gaussian i):
    n, step, total_steps, cap, height, width, n_init, image_index, loss   (ints / floats)
    ids        (N,) int64   a persistent id per Gaussian (fresh ids for new Gaussians)
    xy         (N, 2)       centre in pixels (x, y)
    scale      (N, 2)       standard deviations along the two axes, in pixels (before the 0.3 px^2
                            anti-aliasing dilation)
    rotation   (N,)         angle of the first axis (radians)
    opacity    (N,)         in (0, 1)
    color      (N, 3)       RGB weights
    and, summed over the steps since the previous call (count of them in `count`, N,):
    grad       (N,)         norm of dL/dmu_i (the positional, "view-space" gradient of 3DGS)
    abs_grad   (N,)         norm of (sum_p |dL_p/dmu_x|, sum_p |dL_p/dmu_y|) (AbsGS)
    err        (N,)         sum_p w_i(p) |I(p) - target(p)|  (blending-weighted error, w_i = alpha_i G_i)
    cover      (N,)         sum_p w_i(p)  (the Gaussian's footprint in pixels)
It returns a dict with any of
    "prune": indices to remove, "split": indices to split (two smaller Gaussians),
    "clone": indices to copy (repeats allowed; a Gaussian cloned k times shares its opacity among
             its k + 1 copies); prune + clone in one call is a relocation (3DGS-MCMC).
Indices refer to the rows of this call's stats. After the actions the number of Gaussians must be
at most stats["cap"]; otherwise the run fails. Allowed imports: numpy, math.
"""
import math

import numpy as np

# ---- editable below this line ----------------------------------------------------------------
# Default: 3DGS adaptive density control (Kerbl et al. 2023): every 100 iterations (here every
# 50 steps) between 15 % and 50 % of training, Gaussians whose mean positional gradient exceeds a
# threshold are cloned when small and split when large; nearly transparent ones are pruned. The
# cap is respected by keeping the candidates with the largest gradients.

GRAD_THRESHOLD = 5e-5      # mean positional gradient (pixel units, MSE loss)
PERCENT_DENSE = 0.05       # "small" = max scale <= PERCENT_DENSE * image extent
MIN_OPACITY = 0.005
EVERY, START, STOP = 50, 0.15, 0.5


def densify(stats, rng):
    step, total = stats["step"], stats["total_steps"]
    if step % EVERY or step < START * total or step > STOP * total:
        return {}
    n, cap = stats["n"], stats["cap"]
    extent = max(stats["height"], stats["width"])
    mean_grad = stats["grad"] / np.maximum(stats["count"], 1)
    prune = np.flatnonzero(stats["opacity"] < MIN_OPACITY)
    cand = np.flatnonzero(mean_grad >= GRAD_THRESHOLD)
    cand = np.setdiff1d(cand, prune)
    cand = cand[np.argsort(-mean_grad[cand], kind="stable")]
    room = cap - (n - prune.size)
    cand = cand[:max(room, 0)]
    small = stats["scale"][cand].max(axis=1) <= PERCENT_DENSE * extent
    return {"prune": prune, "clone": cand[small], "split": cand[~small]}
