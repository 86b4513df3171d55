

def true_prob(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p[np.arange(len(y)), y]


def attack(query, x, y, eps, budget, rng):
    """SimBA, pixel basis (Guo et al., ICML 2019), L-inf: walk through the pixels in a random
    order; for each, try x + eps e_q, then x - eps e_q (clipped to [0, 1]), and keep the first
    that lowers the probability of the true class. Stops a sample when it is misclassified."""
    n = x.shape[0]
    d = int(np.prod(x.shape[1:]))
    xf = x.reshape(n, d)
    lo, hi = np.maximum(xf - eps, 0.0), np.minimum(xf + eps, 1.0)
    cur = xf.copy()
    logits = query(cur.reshape(x.shape), np.arange(n))
    prob = true_prob(logits, y)
    done = logits.argmax(1) != y
    left = np.full(n, budget - 1)
    orders = np.stack([rng.permutation(d) for _ in range(n)])
    pos = np.zeros(n, dtype=np.int64)
    while True:
        active = np.flatnonzero(~done & (left >= 1) & (pos < d))
        if active.size == 0:
            break
        q = orders[active, pos[active]]
        pos[active] += 1
        for sign in (1.0, -1.0):
            if active.size == 0:
                break
            cand = cur[active].copy()
            bound = hi if sign > 0 else lo
            cand[np.arange(active.size), q] = bound[active, q]
            lg = query(cand.reshape((-1,) + x.shape[1:]), active)
            left[active] -= 1
            pr = true_prob(lg, y[active])
            better = pr < prob[active]
            acc = active[better]
            cur[acc] = cand[better]
            prob[acc] = pr[better]
            done[acc] = lg[better].argmax(1) != y[acc]
            keep = ~better & (left[active] >= 1)
            active, q = active[keep], q[keep]
    return cur.reshape(x.shape)
