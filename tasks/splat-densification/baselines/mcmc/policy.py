# 3DGS-MCMC (Kheradmand et al. 2024): Gaussians are samples; no heuristic clone/split. At every
# refinement step dead Gaussians (opacity < 0.005) are relocated onto live ones drawn with
# probability proportional to opacity (the relocated copies share the source's opacity, which keeps
# the rendered image unchanged), and new Gaussians are added the same way (a fixed fraction of the
# current count, until the cap is reached). The paper adds 5 % every 100 of 25,000 iterations; with
# 300 steps here the rate is scaled so that the cap is reached around half-way through training.
# (MCMC's noise injection and opacity/scale regularisers belong to the optimizer and loss, which are
# fixed in this task.)

MIN_OPACITY = 0.005
GROWTH = 0.3               # fraction of the current count added per refinement
EVERY, STOP = 25, 0.85


def densify(stats, rng):
    step, total = stats["step"], stats["total_steps"]
    if step % EVERY or step > STOP * total:
        return {}
    n, cap = stats["n"], stats["cap"]
    op = stats["opacity"]
    dead = np.flatnonzero(op <= MIN_OPACITY)
    alive = np.flatnonzero(op > MIN_OPACITY)
    if alive.size == 0:
        return {}
    n_add = int(min(cap - n, math.floor(GROWTH * n) + 1)) if n < cap else 0
    k = dead.size + max(n_add, 0)
    if k == 0:
        return {}
    p = op[alive] / op[alive].sum()
    src = rng.choice(alive, size=k, replace=True, p=p)
    return {"prune": dead, "clone": src}
