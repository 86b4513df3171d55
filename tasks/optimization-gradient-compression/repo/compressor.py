"""The gradient compressor under study: the EDITABLE file of this task (every line below the
marker). The harness simulates K data-parallel workers; every step each worker has its own
stochastic gradient and may send the aggregator a budget of bits.

Contract (kept by every submission):

    class Compressor:                       # one instance per worker, in that worker's process
        __init__(shapes, budget_bits, worker, num_workers, seed)
        compress(grads, step, round, reply) -> payload

    class Aggregator:                       # one instance, in the aggregator's own process
        __init__(shapes, budget_bits, num_workers, seed)
        aggregate(payloads, step, round) -> ("grad", {name: array}) | ("reply", payload)

  shapes: {parameter name: shape}; grads: {name: float32 array of that shape}, this worker's
  gradient at this step (the same arrays in every round of the step). A payload is a dict
  {key: numpy array}, keys matching [A-Za-z0-9_.]{1,64}, numeric or bool dtypes, at most 256
  arrays of ndim <= 4. It is serialised and is the ONLY thing that crosses from a worker to
  the aggregator: the workers and the aggregator live in separate processes, so module
  globals, closures or class attributes are not shared. Worker-local state (error-feedback
  memory, a private RNG) lives in the Compressor instance; anything the aggregator and the
  workers must share (e.g. PowerSGD's Q matrix) must be sent, or be derived from the seed and
  the step number, which both sides know.

  Rounds: round 0 of a step calls compress(grads, step, 0, None) on every worker and then
  aggregate(list of the K payloads in worker order, step, 0). If aggregate returns
  ("reply", payload), that payload is broadcast to every worker, which is called again with
  compress(grads, step, round + 1, reply), and so on (at most 4 rounds per step). The step
  ends when aggregate returns ("grad", g): g must hold one array of each parameter's shape,
  the estimate of the MEAN gradient over the workers; the harness applies SGD with momentum
  (fixed learning-rate schedule) to it.

  Budget: bits(payload) = sum over arrays of numel * width(dtype) + 8 * len(key) + 8
  + 32 * ndim, width = 1 for bool, 8/16/32/64 for the other dtypes (uint8 and int8 count 8
  per element whatever values they hold, so pack bits with np.packbits or send bool). A
  worker's payloads summed over the rounds of one step must not exceed budget_bits =
  floor(32 * n_params / ratio); the aggregator's replies summed over one step neither. The
  harness counts the bits of the serialised payloads and stops the run (the setting fails) at
  the first excess.

Allowed imports in this file: numpy, math. No file I/O.
"""
# ---- editable region starts here ----------------------------------------------------------
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
    """Top-k sparsification without error feedback (Aji & Heafield 2017; Stich et al. 2018
    without memory): each worker sends the k largest-magnitude entries of its gradient,
    as int32 indices and float32 values, k as large as the budget allows."""

    def __init__(self, shapes, budget_bits, worker, num_workers, seed):
        self.flat = Flat(shapes)
        per_entry = 32 + 32
        self.k = max(1, min(self.flat.numel,
                            (budget_bits - header_bits("i", 1) - header_bits("v", 1)) // per_entry))

    def compress(self, grads, step, round, reply):
        g = self.flat.flatten(grads)
        idx = np.argpartition(np.abs(g), -self.k)[-self.k:]
        idx.sort()
        return {"i": idx.astype(np.int32), "v": g[idx].astype(np.float32)}


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
