

FD_ETA = 0.1        # finite-difference step (L2 length of the query perturbation)
EXPLORATION = 1.0   # scale of the exploration noise on the prior
ONLINE_LR = 100.0   # learning rate of the prior (exponentiated gradient, L-inf version)
IMAGE_LR = 0.2      # image step, in units of eps (signed step)
TILE = 4            # data-dependent prior: one prior value per TILE x TILE tile (2 on 8x8 images)


def ce_loss(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    return np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]


def upsample(p, t, h, w):
    return np.repeat(np.repeat(p, t, axis=2), t, axis=3)[:, :, :h, :w]


def attack(query, x, y, eps, budget, rng):
    """Bandits-TD (Ilyas, Engstrom & Madry, ICLR 2019): a bandit that keeps a prior on the
    gradient with time (the prior carries over between steps) and data dependence (one value per
    tile), updated from an antithetic finite-difference pair of queries around the current image;
    the image takes signed (L-inf) steps along the prior and is projected on the eps-ball.
    Two queries per step; a sample stops as soon as one of its queries is misclassified."""
    n, c, h, w = x.shape
    t = TILE if h > 8 else 2
    ph, pw = -(-h // t), -(-w // t)
    lo, hi = np.maximum(x - eps, 0.0), np.minimum(x + eps, 1.0)
    cur = x.copy()
    x_adv = x.copy()
    prior = np.zeros((n, c, ph, pw))
    done = np.zeros(n, dtype=bool)
    fd = FD_ETA
    for _ in range(budget // 2):
        a = np.flatnonzero(~done)
        if a.size == 0:
            break
        noise = EXPLORATION * rng.standard_normal((a.size, c, ph, pw)) / np.sqrt(c * ph * pw)
        q1 = upsample(prior[a] + noise, t, h, w)
        q2 = upsample(prior[a] - noise, t, h, w)
        n1 = np.sqrt((q1 ** 2).sum(axis=(1, 2, 3), keepdims=True)) + 1e-12
        n2 = np.sqrt((q2 ** 2).sum(axis=(1, 2, 3), keepdims=True)) + 1e-12
        x1 = np.clip(cur[a] + fd * q1 / n1, lo[a], hi[a]).astype(np.float32)
        x2 = np.clip(cur[a] + fd * q2 / n2, lo[a], hi[a]).astype(np.float32)
        lg = query(np.concatenate([x1, x2]), np.concatenate([a, a]))
        l1, l2 = ce_loss(lg[:a.size], y[a]), ce_loss(lg[a.size:], y[a])
        f1, f2 = lg[:a.size].argmax(1) != y[a], lg[a.size:].argmax(1) != y[a]
        hit = f1 | f2
        x_adv[a[f1]] = x1[f1]
        x_adv[a[f2 & ~f1]] = x2[f2 & ~f1]
        done[a[hit]] = True
        est = ((l1 - l2) / (fd * EXPLORATION))[:, None, None, None] * noise
        # L-inf prior step: exponentiated gradient on (prior + 1) / 2 in [0, 1]
        real = (prior[a] + 1.0) / 2.0
        g = np.clip(ONLINE_LR * est, -30.0, 30.0)
        pos = real * np.exp(g)
        neg = (1.0 - real) * np.exp(-g)
        prior[a] = 2.0 * pos / (pos + neg) - 1.0
        step = cur[a] + IMAGE_LR * eps * np.sign(upsample(prior[a], t, h, w))
        cur[a] = np.clip(step, lo[a], hi[a]).astype(np.float32)
    return x_adv
