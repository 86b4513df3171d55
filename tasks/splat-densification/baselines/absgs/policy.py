# AbsGS (Ye, Li, Wu & Liu 2024): 3DGS's adaptive density control, but large Gaussians are split on
# the homodirectional (absolute) positional gradient sum_p |dL_p/dmu|, which does not cancel when a
# large Gaussian straddles detail of opposite signs (over-reconstruction); small Gaussians are still
# cloned on the ordinary gradient. Same schedule, pruning and cap guard as the 3DGS default.

GRAD_THRESHOLD = 5e-5      # clone: mean positional gradient
ABS_THRESHOLD = 2e-4       # split: mean absolute gradient (4x the clone threshold, as in AbsGS)
PERCENT_DENSE = 0.05
MIN_OPACITY = 0.005
EVERY, START, STOP = 50, 0.15, 0.5


def densify(stats, rng):
    step, total = stats["step"], stats["total_steps"]
    if step % EVERY or step < START * total or step > STOP * total:
        return {}
    n, cap = stats["n"], stats["cap"]
    extent = max(stats["height"], stats["width"])
    cnt = np.maximum(stats["count"], 1)
    mean_grad, mean_abs = stats["grad"] / cnt, stats["abs_grad"] / cnt
    prune = np.flatnonzero(stats["opacity"] < MIN_OPACITY)
    small = stats["scale"].max(axis=1) <= PERCENT_DENSE * extent
    clone = np.flatnonzero(small & (mean_grad >= GRAD_THRESHOLD))
    split = np.flatnonzero(~small & (mean_abs >= ABS_THRESHOLD))
    cand = np.setdiff1d(np.concatenate([clone, split]), prune)
    key = np.where(small, mean_grad / GRAD_THRESHOLD, mean_abs / ABS_THRESHOLD)
    cand = cand[np.argsort(-key[cand], kind="stable")]
    cand = cand[:max(cap - (n - prune.size), 0)]
    return {"prune": prune, "clone": cand[small[cand]], "split": cand[~small[cand]]}
