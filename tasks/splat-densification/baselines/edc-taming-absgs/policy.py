# EDC + Taming 3DGS + AbsGS, the combination that leads the original task. Taming 3DGS (Mallick et
# al. 2024) sets how many Gaussians to add: a growth schedule that reaches the cap, filled with the
# top-k of a score (gradient, blending-weighted error, footprint, opacity). AbsGS (Ye et al. 2024)
# sets the score's gradient term: the homodirectional absolute gradient, which does not cancel on
# a large Gaussian over detail of opposite signs. EDC (Deng et al. 2024, Efficient Density Control)
# sets how to densify and what to prune: a long-axis split in place of clone for elongated
# Gaussians (the harness's split draws the children from N(mu, Sigma), i.e. along the long axis,
# and shrinks them; a clone would copy the elongated shape onto itself), and recovery-aware
# pruning: once the budget is reached, Gaussians whose opacity stays low and has not recovered
# since the previous call are pruned, and their slots are refilled by the score.

PERCENT_DENSE = 0.05       # "small" = max scale <= PERCENT_DENSE * image extent
LONG_AXIS = 2.0            # elongated = long axis > LONG_AXIS x short axis: split, never clone
MIN_OPACITY = 0.005
RECOVER_OPACITY = 0.05     # recovery-aware pruning: below this and not rising ...
RECOVER_FRAC = 0.05        # ... at most this fraction of the cap per call
EVERY, START, STOP, END = 25, 0.08, 0.4, 0.85
W_GRAD, W_ERR, W_COVER, W_OPAC = 1.0, 1.0, 0.25, 0.25
_last_opacity = {}         # image index -> {Gaussian id: opacity at the previous call}


def _norm(x):
    return x / (x.mean() + 1e-12)


def _not_recovering(stats, op, prune):
    """Indices of weak Gaussians whose opacity has not risen since the previous call (one born
    since then has had no time to recover and is kept)."""
    before = _last_opacity.get(stats["image_index"], {})
    prev = np.array([before.get(int(i), -np.inf) for i in stats["ids"]])
    weak = np.flatnonzero((op < RECOVER_OPACITY) & (op <= prev) & ~prune)
    weak = weak[np.argsort(op[weak], kind="stable")]
    return weak[:int(RECOVER_FRAC * stats["cap"])]


def densify(stats, rng):
    step, total = stats["step"], stats["total_steps"]
    if step % EVERY or step < START * total or step > END * total:
        return {}
    n, cap, n0 = stats["n"], stats["cap"], stats["n_init"]
    extent = max(stats["height"], stats["width"])
    op = stats["opacity"]
    prune = op < MIN_OPACITY
    if step > STOP * total:
        prune[_not_recovering(stats, op, prune)] = True
    _last_opacity[stats["image_index"]] = dict(zip(stats["ids"].tolist(), op.tolist()))
    prune = np.flatnonzero(prune)
    # Taming's schedule: quadratic ease-out from n_init at START to the cap at STOP
    f = min(1.0, (step - START * total) / ((STOP - START) * total))
    target = int(round(n0 + (cap - n0) * (1 - (1 - f) ** 2)))
    k = min(target, cap) - (n - prune.size)
    if k <= 0:
        return {"prune": prune}
    cnt = np.maximum(stats["count"], 1)
    score = (W_GRAD * _norm(stats["abs_grad"] / cnt) + W_ERR * _norm(stats["err"] / cnt)
             + W_COVER * _norm(stats["cover"] / cnt) + W_OPAC * _norm(op))
    score[prune] = -np.inf
    cand = np.argsort(-score, kind="stable")[:k]
    cand = cand[np.isfinite(score[cand])]
    sc = stats["scale"][cand]
    long_axis, short_axis = sc.max(axis=1), sc.min(axis=1)
    small = (long_axis <= PERCENT_DENSE * extent) & (long_axis <= LONG_AXIS * short_axis)
    return {"prune": prune, "clone": cand[small], "split": cand[~small]}
