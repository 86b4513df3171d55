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

    def flatten(self, d):
        return np.concatenate([np.asarray(d[n], dtype=np.float32).reshape(-1) for n in self.names])

    def unflatten(self, v):
        out, i = {}, 0
        for n, s, k in zip(self.names, self.shapes, self.sizes):
            out[n] = v[i:i + k].reshape(s)
            i += k
        return out


def sign_subset(numel, m, seed, step):
    """The coordinates signed at this step: all of them when the budget allows one bit each,
    otherwise m of them drawn from a generator that the workers and the aggregator share
    (seeded by the run seed and the step), so no indices need to be sent."""
    if m >= numel:
        return np.arange(numel)
    return np.sort(np.random.default_rng([seed, 104729, step]).choice(numel, m, replace=False))


class Compressor:
    """EF-SignSGD (Karimireddy, Rebjock, Stich & Jaggi, "Error feedback fixes SignSGD and other
    gradient compression schemes", ICML 2019): p = g + e; send the scaled sign
    (||p_t||_1 / d_t) sign(p_t) of every parameter tensor t (one bit per entry plus one float32
    scale per tensor); e = p - sent. When the budget is under one bit per entry, the signs of a
    shared random subset of the entries are sent and the rest stays in the memory."""

    def __init__(self, shapes, budget_bits, worker, num_workers, seed):
        self.flat = Flat(shapes)
        self.seed = seed
        T = len(self.flat.names)
        self.m = max(1, min(self.flat.numel,
                            budget_bits - header_bits("s", 1) - header_bits("a", 1) - 32 * T))
        self.memory = np.zeros(self.flat.numel, dtype=np.float64)
        self.owner = np.repeat(np.arange(T), self.flat.sizes)

    def compress(self, grads, step, round, reply):
        p = self.memory + self.flat.flatten(grads)
        sub = sign_subset(self.flat.numel, self.m, self.seed, step)
        own = self.owner[sub]
        cnt = np.bincount(own, minlength=len(self.flat.names))
        l1 = np.bincount(own, weights=np.abs(p[sub]), minlength=len(self.flat.names))
        scales = (l1 / np.maximum(cnt, 1)).astype(np.float32)
        neg = p[sub] < 0
        sent = np.where(neg, -1.0, 1.0) * scales[own].astype(np.float64)
        p[sub] -= sent
        self.memory = p
        return {"s": neg, "a": scales}


class Aggregator:
    """Mean of the workers' scaled signs."""

    def __init__(self, shapes, budget_bits, num_workers, seed):
        self.flat = Flat(shapes)
        self.num_workers = num_workers
        self.seed = seed
        T = len(self.flat.names)
        self.m = max(1, min(self.flat.numel,
                            budget_bits - header_bits("s", 1) - header_bits("a", 1) - 32 * T))
        self.owner = np.repeat(np.arange(T), self.flat.sizes)

    def aggregate(self, payloads, step, round):
        sub = sign_subset(self.flat.numel, self.m, self.seed, step)
        own = self.owner[sub]
        out = np.zeros(self.flat.numel, dtype=np.float64)
        for p in payloads:
            out[sub] += np.where(p["s"], -1.0, 1.0) * p["a"].astype(np.float64)[own]
        return "grad", self.flat.unflatten((out / self.num_workers).astype(np.float32))
