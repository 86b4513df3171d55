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


def plan(shapes, budget_bits):
    """Rank r and wire dtype of the low-rank factors: the largest r (float32, else float16) whose
    per-step traffic fits the budget. A parameter is a matrix (first dim x the rest) when rank-r
    factors are smaller than it; vectors (biases) and small matrices are sent uncompressed."""
    flat = Flat(shapes)
    for dtype, width in ((np.float32, 32), (np.float16, 16)):
        best = None
        for r in range(1, 65):
            mats, vec = [], 0
            for n, s in zip(flat.names, flat.shapes):
                rows, cols = s[0], int(np.prod(s[1:])) if len(s) > 1 else 1
                rr = min(r, rows, cols)
                if len(s) > 1 and rr * (rows + cols) < rows * cols:
                    mats.append((n, rows, cols, rr))
                else:
                    vec += rows * cols
            np_, nq = sum(a[1] * a[3] for a in mats), sum(a[2] * a[3] for a in mats)
            bits0 = (np_ + vec) * width + header_bits("p", 1) + header_bits("v", 1)
            bits1 = nq * width + header_bits("q", 1)
            if bits0 + bits1 <= budget_bits and (np_ + nq) * width + 2 * header_bits("p", 1) <= budget_bits:
                best = (r, mats)
            else:
                break
        if best is not None:
            return best[0], best[1], dtype
    raise ValueError("PowerSGD: even rank 1 in float16 does not fit the budget")


class Compressor:
    """PowerSGD (Vogels, Karimireddy & Jaggi, NeurIPS 2019), rank r with error feedback and
    warm start, over three rounds per step as its two all-reduces need:
      round 0: M = g + e for each matrix; send P_i = M Q (Q shared, warm-started) and the
               uncompressed vectors;
      round 1: the aggregator replies P^ = orthogonalise(mean P_i); send Q_i = M^T P^; the error
               memory keeps e = M - P^ Q_i^T;
      round 2: the aggregator replies mean Q_i, which becomes the next step's Q (warm start);
               send nothing."""

    def __init__(self, shapes, budget_bits, worker, num_workers, seed):
        self.flat = Flat(shapes)
        self.r, self.mats, self.dtype = plan(shapes, budget_bits)
        self.matset = {m[0] for m in self.mats}
        self.vecs = [n for n in self.flat.names if n not in self.matset]
        rng = np.random.default_rng([seed, 31337])          # the same Q on every worker
        self.Q = {n: rng.standard_normal((cols, rr)) for n, rows, cols, rr in self.mats}
        self.memory = {n: np.zeros((rows, cols)) for n, rows, cols, rr in self.mats}
        self.M = {}

    def compress(self, grads, step, round, reply):
        if round == 0:
            self.M = {n: self.memory[n] + np.asarray(grads[n], np.float64).reshape(rows, cols)
                      for n, rows, cols, rr in self.mats}
            P = [(self.M[n] @ self.Q[n]).reshape(-1) for n, rows, cols, rr in self.mats]
            v = [np.asarray(grads[n], np.float64).reshape(-1) for n in self.vecs]
            return {"p": np.concatenate(P + [np.zeros(0)]).astype(self.dtype),
                    "v": np.concatenate(v + [np.zeros(0)]).astype(self.dtype)}
        if round == 1:
            Ph, Qs, i = reply["p"].astype(np.float64), [], 0
            for n, rows, cols, rr in self.mats:
                P = Ph[i:i + rows * rr].reshape(rows, rr)
                i += rows * rr
                Q = self.M[n].T @ P
                Q = Q.astype(self.dtype).astype(np.float64)
                self.memory[n] = self.M[n] - P @ Q.T
                Qs.append(Q.reshape(-1))
            return {"q": np.concatenate(Qs + [np.zeros(0)]).astype(self.dtype)}
        Qm, i = reply["q"].astype(np.float64), 0
        for n, rows, cols, rr in self.mats:
            self.Q[n] = Qm[i:i + cols * rr].reshape(cols, rr)
            i += cols * rr
        return {}


class Aggregator:
    def __init__(self, shapes, budget_bits, num_workers, seed):
        self.flat = Flat(shapes)
        self.K = num_workers
        self.r, self.mats, self.dtype = plan(shapes, budget_bits)
        self.matset = {m[0] for m in self.mats}
        self.vecs = [n for n in self.flat.names if n not in self.matset]

    def aggregate(self, payloads, step, round):
        if round == 0:
            P = sum(p["p"].astype(np.float64) for p in payloads) / self.K
            self.vmean = sum(p["v"].astype(np.float64) for p in payloads) / self.K
            Ph, i = [], 0
            for n, rows, cols, rr in self.mats:
                q, _ = np.linalg.qr(P[i:i + rows * rr].reshape(rows, rr))
                Ph.append(q.reshape(-1))
                i += rows * rr
            self.Ph = np.concatenate(Ph + [np.zeros(0)]).astype(self.dtype)
            return "reply", {"p": self.Ph}
        if round == 1:
            self.Qm = (sum(p["q"].astype(np.float64) for p in payloads) / self.K).astype(self.dtype)
            return "reply", {"q": self.Qm}
        out, i, j = {}, 0, 0
        Ph, Qm = self.Ph.astype(np.float64), self.Qm.astype(np.float64)
        for n, rows, cols, rr in self.mats:
            P = Ph[i:i + rows * rr].reshape(rows, rr)
            Q = Qm[j:j + cols * rr].reshape(cols, rr)
            i += rows * rr
            j += cols * rr
            out[n] = (P @ Q.T).reshape(self.flat.shapes[self.flat.names.index(n)])
        k = 0
        for n in self.vecs:
            sz = self.flat.sizes[self.flat.names.index(n)]
            out[n] = self.vmean[k:k + sz].reshape(self.flat.shapes[self.flat.names.index(n)])
            k += sz
        return "grad", {n: out[n].astype(np.float32) for n in self.flat.names}
