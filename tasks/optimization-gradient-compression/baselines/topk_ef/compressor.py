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


class Compressor:
    """Top-k sparsification WITH error feedback (memory): Stich, Cordonnier & Jaggi, "Sparsified
    SGD with memory", NeurIPS 2018; Karimireddy et al. 2019; Lin et al. 2018 (DGC). The worker
    adds its residual memory to the gradient, sends the k largest entries (int32 index, float32
    value, k as large as the budget allows) and keeps what it did not send."""

    def __init__(self, shapes, budget_bits, worker, num_workers, seed):
        self.flat = Flat(shapes)
        self.k = max(1, min(self.flat.numel,
                            (budget_bits - header_bits("i", 1) - header_bits("v", 1)) // 64))
        self.memory = np.zeros(self.flat.numel, dtype=np.float32)

    def compress(self, grads, step, round, reply):
        acc = self.memory + self.flat.flatten(grads)
        idx = np.argpartition(np.abs(acc), -self.k)[-self.k:]
        idx.sort()
        val = acc[idx].astype(np.float32)
        acc[idx] = 0.0
        self.memory = acc
        return {"i": idx.astype(np.int32), "v": val}


class Aggregator:
    """Mean of the workers' sparse vectors."""

    def __init__(self, shapes, budget_bits, num_workers, seed):
        self.flat = Flat(shapes)
        self.num_workers = num_workers

    def aggregate(self, payloads, step, round):
        out = np.zeros(self.flat.numel, dtype=np.float64)
        for p in payloads:
            np.add.at(out, p["i"].astype(np.int64), p["v"].astype(np.float64))
        return "grad", self.flat.unflatten((out / self.num_workers).astype(np.float32))
