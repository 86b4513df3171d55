# Taming 3DGS (Mallick, Goel, Kerbl, Steinberger, Vicente Carrasco & De La Torre 2024): densification
# under a fixed budget. The number of Gaussians follows a predetermined schedule that reaches the
# budget at the end of the densification phase, and the Gaussians to densify are not chosen by a
# gradient threshold but as the top-k of a score that combines the positional gradient, the
# Gaussian's blending-weighted error (the per-pixel loss it covers), its pixel footprint and its
# opacity (each normalised by its mean). Large ones are split, small ones cloned; nearly transparent
# ones are pruned and their slots reused.

PERCENT_DENSE = 0.05
MIN_OPACITY = 0.005
EVERY, START, STOP = 25, 0.08, 0.5
W_GRAD, W_ERR, W_COVER, W_OPAC = 1.0, 1.0, 0.25, 0.25


def _norm(x):
    return x / (x.mean() + 1e-12)


def densify(stats, rng):
    step, total = stats["step"], stats["total_steps"]
    if step % EVERY or step < START * total or step > STOP * total:
        return {}
    n, cap, n0 = stats["n"], stats["cap"], stats["n_init"]
    extent = max(stats["height"], stats["width"])
    # budget schedule: quadratic ease-out from n_init at START to cap at STOP
    f = min(1.0, (step - START * total) / ((STOP - START) * total))
    target = int(round(n0 + (cap - n0) * (1 - (1 - f) ** 2)))
    prune = np.flatnonzero(stats["opacity"] < MIN_OPACITY)
    k = min(target, cap) - (n - prune.size)
    if k <= 0:
        return {"prune": prune}
    cnt = np.maximum(stats["count"], 1)
    score = (W_GRAD * _norm(stats["grad"] / cnt) + W_ERR * _norm(stats["err"] / cnt)
             + W_COVER * _norm(stats["cover"] / cnt) + W_OPAC * _norm(stats["opacity"]))
    score[prune] = -np.inf
    cand = np.argsort(-score, kind="stable")[:k]
    cand = cand[np.isfinite(score[cand])]
    small = stats["scale"][cand].max(axis=1) <= PERCENT_DENSE * extent
    return {"prune": prune, "clone": cand[small], "split": cand[~small]}
