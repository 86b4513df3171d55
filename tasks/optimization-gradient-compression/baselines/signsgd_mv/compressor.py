import math

import numpy as np


def header_bits(key, ndim):
    """Bits the harness charges for one array's key, dtype and shape."""
    return 8 * len(key) + 8 + 32 * ndim


class Flat:
    """Flatten a {name: array} dict into one vector (sorted names) and back."""

    def __init__(self, shapes):
        self.names = sorted(shapes)
        self.shapes = [tuple(shapes[n]) for n in self.names]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.numel = int(sum(self.sizes))
        self.tensor = np.repeat(np.arange(len(self.names)), self.sizes)

    def flatten(self, d):
        return np.concatenate([np.asarray(d[n], dtype=np.float32).reshape(-1) for n in self.names])

    def unflatten(self, v):
        out, i = {}, 0
        for n, s, k in zip(self.names, self.shapes, self.sizes):
            out[n] = v[i:i + k].reshape(s)
            i += k
        return out


def voters(numel, m, seed, step):
    """The coordinates voted on at this step: all of them when the budget allows one bit each,
    otherwise m of them drawn from a generator the workers and the aggregator share (seeded by
    the run seed and the step), so no indices are sent."""
    if m >= numel:
        return np.arange(numel)
    return np.sort(np.random.default_rng([seed, 7919, step]).choice(numel, m, replace=False))


def plan(flat, budget_bits):
    """Entries whose sign fits next to the per-tensor float16 scales and both headers."""
    avail = budget_bits - header_bits("s", 1) - header_bits("a", 1) - 16 * len(flat.names)
    return max(1, min(flat.numel, int(avail)))


class Compressor:
    """signSGD with majority vote (Bernstein, Wang, Azizzadenesheli & Anandkumar, "signSGD:
    compressed optimisation for non-convex problems", ICML 2018; Bernstein, Zhao,
    Azizzadenesheli & Anandkumar, "signSGD with majority vote is communication efficient and
    fault tolerant", ICLR 2019): each worker sends sign(g), one bit per entry, with no error
    feedback. The sign step's size is the learning rate in the paper; here the harness's
    learning rate is fixed for all methods, so each worker also sends the mean |g| of each
    tensor (float16), the l1 scale the paper's analysis ties the sign step to. Under one bit
    per entry, only a shared random subset (seeded, no indices sent) votes this step."""

    def __init__(self, shapes, budget_bits, worker, num_workers, seed):
        self.flat = Flat(shapes)
        self.seed = seed
        self.m = plan(self.flat, budget_bits)

    def compress(self, grads, step, round, reply):
        g = self.flat.flatten(grads)
        parts = np.split(np.abs(g), np.cumsum(self.flat.sizes)[:-1])
        scales = np.array([p.mean() for p in parts])
        sub = voters(self.flat.numel, self.m, self.seed, step)
        return {"s": g[sub] < 0, "a": scales.astype(np.float16)}


class Aggregator:
    """Majority vote: sign of the sum of the workers' signs (a tie gives 0), times the mean of
    the workers' per-tensor scales."""

    def __init__(self, shapes, budget_bits, num_workers, seed):
        self.flat = Flat(shapes)
        self.seed = seed
        self.m = plan(self.flat, budget_bits)

    def aggregate(self, payloads, step, round):
        sub = voters(self.flat.numel, self.m, self.seed, step)
        votes = np.zeros(sub.size, dtype=np.float64)
        scale = np.zeros(len(self.flat.names), dtype=np.float64)
        for p in payloads:
            votes += np.where(p["s"], -1.0, 1.0)
            scale += p["a"].astype(np.float64)
        scale /= len(payloads)
        out = np.zeros(self.flat.numel, dtype=np.float64)
        out[sub] = np.sign(votes) * scale[self.flat.tensor[sub]]
        return "grad", self.flat.unflatten(out.astype(np.float32))
