"""Discrete Bayesian networks: a BIF reader, a forward sampler and the data set of a setting.

Fixed harness code (the method never imports it). The grader uses the same functions to
rebuild the true graph of each data set from the network file, the seed and the replicate.
"""

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NETWORK_DIR = Path(__file__).resolve().parent / "networks"

_VAR = re.compile(
    r"variable\s+(\S+)\s*\{[^}]*?type\s+discrete\s*\[\s*(\d+)\s*\]\s*\{([^}]*)\}", re.S
)
_PROB = re.compile(r"probability\s*\(\s*([^|)]+?)\s*(?:\|\s*([^)]*?))?\s*\)\s*\{([^}]*)\}", re.S)
_ROW = re.compile(r"\(([^)]*)\)\s*([^;]*);")


@dataclass(frozen=True)
class Network:
    names: tuple          # variable names, in file order
    cards: np.ndarray     # number of states of each variable
    parents: tuple        # parents[v]: tuple of parent indices
    cpts: tuple           # cpts[v]: (prod of parent cards, cards[v]) array; row index mixes
                          # parent states with the first parent most significant

    @property
    def dag(self):
        """Adjacency matrix A with A[p, v] = 1 iff p -> v."""
        d = len(self.names)
        A = np.zeros((d, d), dtype=np.int8)
        for v, pa in enumerate(self.parents):
            A[list(pa), v] = 1
        return A

    def topological_order(self):
        order, done = [], set()
        while len(order) < len(self.names):
            for v, pa in enumerate(self.parents):
                if v not in done and all(p in done for p in pa):
                    order.append(v)
                    done.add(v)
        return order


def read_bif(path):
    """Parse a BIF file as written by the bnlearn repository (discrete variables only)."""
    text = Path(path).read_text()
    names, cards, states = [], [], []
    for m in _VAR.finditer(text):
        names.append(m.group(1))
        cards.append(int(m.group(2)))
        states.append([s.strip() for s in m.group(3).split(",")])
        if len(states[-1]) != cards[-1]:
            raise ValueError(f"{path}: variable {names[-1]} lists {len(states[-1])} states, "
                             f"declares {cards[-1]}")
    index = {n: i for i, n in enumerate(names)}
    parents = [()] * len(names)
    cpts = [None] * len(names)
    for m in _PROB.finditer(text):
        v = index[m.group(1).strip()]
        pa = tuple(index[p.strip()] for p in m.group(2).split(",")) if m.group(2) else ()
        body = m.group(3)
        q = int(np.prod([cards[p] for p in pa])) if pa else 1
        table = np.full((q, cards[v]), np.nan)
        if not pa:
            vals = body.split("table", 1)[1].split(";")[0]
            table[0] = [float(x) for x in vals.replace(",", " ").split()]
        else:
            for row in _ROW.finditer(body):
                cfg = [s.strip() for s in row.group(1).split(",")]
                j = 0
                for p, s in zip(pa, cfg, strict=True):
                    j = j * cards[p] + states[p].index(s)
                table[j] = [float(x) for x in row.group(2).replace(",", " ").split()]
        if np.isnan(table).any():
            raise ValueError(f"{path}: incomplete table for {names[v]}")
        parents[v] = pa
        cpts[v] = table / table.sum(axis=1, keepdims=True)
    if any(c is None for c in cpts):
        raise ValueError(f"{path}: a variable has no probability table")
    return Network(tuple(names), np.array(cards, dtype=np.int64), tuple(parents), tuple(cpts))


def load_network(name):
    return read_bif(NETWORK_DIR / f"{name}.bif")


def forward_sample(net, n, rng):
    """n i.i.d. samples (n x d int array, states 0..card-1) by ancestral sampling."""
    d = len(net.names)
    X = np.zeros((n, d), dtype=np.int64)
    for v in net.topological_order():
        j = np.zeros(n, dtype=np.int64)
        for p in net.parents[v]:
            j = j * net.cards[p] + X[:, p]
        cum = np.cumsum(net.cpts[v], axis=1)[j]
        u = rng.random(n)
        X[:, v] = np.minimum((u[:, None] >= cum).sum(axis=1), net.cards[v] - 1)
    return X


def _streams(network, n, seed, replicate):
    key = zlib.crc32(f"{network}/{n}".encode())
    return np.random.SeedSequence([int(seed), key, int(replicate)]).spawn(2)


def column_order(network, n, seed, replicate, d):
    """The seeded column permutation of a data set: column k of the data is node perm[k]."""
    return np.random.default_rng(_streams(network, n, seed, replicate)[0]).permutation(d)


def make_dataset(net, network, n, seed, replicate):
    """One data set of a run: (data n x d, cards d), columns permuted by column_order.

    The data are column-major (Fortran order), so that each column is contiguous."""
    d = len(net.names)
    perm = column_order(network, n, seed, replicate, d)
    X = forward_sample(net, n, np.random.default_rng(_streams(network, n, seed, replicate)[1]))
    return np.asfortranarray(X[:, perm]), net.cards[perm].copy()

