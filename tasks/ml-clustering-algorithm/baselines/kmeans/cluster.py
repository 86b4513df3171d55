

def pairwise_sq_dists(X, C=None):
    """Squared Euclidean distances between the rows of X and of C (default X), clipped at 0."""
    C = X if C is None else C
    D = (X * X).sum(axis=1)[:, None] + (C * C).sum(axis=1)[None, :] - 2.0 * (X @ C.T)
    return np.maximum(D, 0.0)


def kmeans_pp_init(X, k, rng):
    """k-means++ seeding (Arthur & Vassilvitskii 2007): each new centre is a point drawn with
    probability proportional to its squared distance to the nearest centre chosen so far,
    with 2 + ln k candidates per step, the one that lowers the potential most kept."""
    n = len(X)
    centres = [X[rng.integers(n)]]
    closest = pairwise_sq_dists(X, centres[0][None])[:, 0]
    trials = 2 + int(math.log(k))
    for _ in range(1, k):
        p = closest / closest.sum() if closest.sum() > 0 else np.full(n, 1.0 / n)
        cand = rng.choice(n, trials, p=p)
        d = np.minimum(closest[None, :], pairwise_sq_dists(X[cand], X))
        best = int(np.argmin(d.sum(axis=1)))
        centres.append(X[cand[best]])
        closest = d[best]
    return np.array(centres)


def lloyd(X, centres, max_iter=300, tol=1e-6):
    """Lloyd's iterations (Lloyd 1982): assign to the nearest centre, move centres to means."""
    for _ in range(max_iter):
        d = pairwise_sq_dists(X, centres)
        labels = np.argmin(d, axis=1)
        new = centres.copy()
        for j in range(len(centres)):
            members = X[labels == j]
            if len(members):
                new[j] = members.mean(axis=0)
            else:  # an empty cluster takes the point farthest from its centre
                new[j] = X[np.argmax(d[np.arange(len(X)), labels])]
        shift = float(((new - centres) ** 2).sum())
        centres = new
        if shift <= tol * float(X.var(axis=0).mean()):
            break
    d = pairwise_sq_dists(X, centres)
    labels = np.argmin(d, axis=1)
    return labels, float(d[np.arange(len(X)), labels].sum())


def kmeans(X, k, rng, n_init=10):
    """The best of n_init runs of k-means++ seeding + Lloyd's iterations (lowest inertia)."""
    best, best_inertia = None, np.inf
    for _ in range(n_init):
        labels, inertia = lloyd(X, kmeans_pp_init(X, k, rng))
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return best


def cluster(X, n_clusters, rng):
    """k-means with k-means++ seeding (MacQueen 1967; Lloyd 1982; Arthur & Vassilvitskii 2007),
    ten restarts."""
    return kmeans(np.asarray(X, dtype=np.float64), n_clusters, rng)
