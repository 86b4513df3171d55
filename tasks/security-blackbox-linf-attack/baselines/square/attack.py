

def margin(logits, y):
    """logit of the true class minus the largest other logit (< 0: misclassified)."""
    true = logits[np.arange(len(y)), y]
    other = logits.copy()
    other[np.arange(len(y)), y] = -np.inf
    return true - other.max(axis=1)


P_INIT = 0.8  # initial fraction of pixels changed per step (the paper's MNIST value; best of {0.1, 0.3, 0.5, 0.8} here)


def p_selection(it, n_iters):
    """Square Attack's piecewise-constant schedule of the square's area, rescaled to the budget."""
    it = int(it / n_iters * 10000)
    for bound, div in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32),
                       (4000, 64), (6000, 128), (8000, 256)):
        if it <= bound:
            return P_INIT / div
    return P_INIT / 512


def attack(query, x, y, eps, budget, rng):
    """Square Attack, L-inf (Andriushchenko et al., ECCV 2020): vertical-stripe initialisation at
    the vertices of the eps-ball, then random-search steps that redraw one square window with a
    single +-eps value per channel, accepted when the margin loss decreases."""
    n, c, h, w = x.shape
    lo, hi = np.maximum(x - eps, 0.0), np.minimum(x + eps, 1.0)
    x_best = np.clip(x + eps * rng.choice([-1.0, 1.0], size=(n, c, 1, w)).astype(np.float32), lo, hi)
    m_best = margin(query(x_best, np.arange(n)), y)
    for it in range(1, budget):
        active = np.flatnonzero(m_best >= 0)
        if active.size == 0:
            break
        s = int(round(np.sqrt(p_selection(it, budget) * h * w)))
        s = min(max(s, 1), h - 1)
        A = active.size
        r = rng.integers(0, h - s + 1, size=A)[:, None, None, None]
        col = rng.integers(0, w - s + 1, size=A)[:, None, None, None]
        ii, jj = np.arange(h)[None, None, :, None], np.arange(w)[None, None, None, :]
        win = (ii >= r) & (ii < r + s) & (jj >= col) & (jj < col + s)          # (A, 1, h, w)
        sign = rng.choice([-1.0, 1.0], size=(A, c, 1, 1)).astype(np.float32)
        xa, la, ha, xb = x[active], lo[active], hi[active], x_best[active]
        x_new = np.where(win, np.clip(xa + eps * sign, la, ha), xb)
        # as the original code: a window that would not change is redrawn (here: its sign flipped)
        same = np.all((np.abs(x_new - xb) < 1e-7) | ~win, axis=(1, 2, 3))
        if same.any():
            x_new[same] = np.where(win[same], np.clip(xa[same] - eps * sign[same], la[same], ha[same]), xb[same])
        m_new = margin(query(x_new, active), y[active])
        better = m_new < m_best[active]
        x_best[active[better]] = x_new[better]
        m_best[active[better]] = m_new[better]
    return x_best
