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


BLOCKS = (32, 64, 128, 256)


def plan(n, avail):
    """(entries signed per step, block size): the smallest block whose float16 scales fit
    next to one sign bit for every entry; under that budget, the largest subset that fits
    with blocks of 128."""
    for b in BLOCKS:
        if n + 16 * (-(-n // b)) <= avail:
            return n, b
    m = max(1, min(n, int(avail / (1 + 16 / 128))))
    while m + 16 * (-(-m // 128)) > avail:
        m -= 1
    return m, 128


class Compressor:
    """EF-SignSGD (Karimireddy, Rebjock, Stich & Jaggi, "Error feedback fixes SignSGD and other
    gradient compression schemes", ICML 2019) with block-wise scales as in its distributed
    form, dist-EF-blockSGD (Zheng, Huang & Kwok, "Communication-efficient distributed blockwise
    momentum SGD with error-feedback", NeurIPS 2019): p = g + e; each block of consecutive
    entries is sent as its scaled sign (mean |p| over the block, float16) * sign(p), one bit
    per entry; e = p - sent. Smaller blocks follow the gradient's scale more closely, so the
    block is the smallest the budget allows. When the budget is under one bit per entry, the
    signs of a random subset that the workers and the aggregator share (seeded by the run
    seed and the step, so no indices are sent) are sent and the rest stays in the memory."""

    def __init__(self, shapes, budget_bits, worker, num_workers, seed):
        self.flat = Flat(shapes)
        self.seed = seed
        n = self.flat.numel
        avail = budget_bits - header_bits("s", 1) - header_bits("a", 1)
        self.m, self.block = plan(n, avail)
        self.memory = np.zeros(n, dtype=np.float64)

    def compress(self, grads, step, round, reply):
        p = self.memory + self.flat.flatten(grads)
        sub = sign_subset(self.flat.numel, self.m, self.seed, step)
        blk = np.arange(sub.size) // self.block
        nb = int(blk[-1]) + 1
        l1 = np.bincount(blk, weights=np.abs(p[sub]), minlength=nb)
        cnt = np.bincount(blk, minlength=nb)
        scales = (l1 / cnt).astype(np.float16)
        neg = p[sub] < 0
        sent = np.where(neg, -1.0, 1.0) * scales[blk].astype(np.float64)
        p[sub] -= sent
        self.memory = p
        return {"s": neg, "a": scales}


class Aggregator:
    """Mean of the workers' scaled signs."""

    def __init__(self, shapes, budget_bits, num_workers, seed):
        self.flat = Flat(shapes)
        self.num_workers = num_workers
        self.seed = seed
        n = self.flat.numel
        avail = budget_bits - header_bits("s", 1) - header_bits("a", 1)
        self.m, self.block = plan(n, avail)

    def aggregate(self, payloads, step, round):
        sub = sign_subset(self.flat.numel, self.m, self.seed, step)
        blk = np.arange(sub.size) // self.block
        out = np.zeros(self.flat.numel, dtype=np.float64)
        for p in payloads:
            out[sub] += np.where(p["s"], -1.0, 1.0) * p["a"].astype(np.float64)[blk]
        return "grad", self.flat.unflatten((out / self.num_workers).astype(np.float32))
