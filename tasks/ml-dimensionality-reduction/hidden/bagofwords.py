"""Generator of the hidden bag-of-words setting (fixed; copied into a run's folder at the final
evaluation only). Documents are word counts drawn from a topic model (Blei, Ng & Jordan, JMLR
2003, with a shared background distribution of frequent words):

- the vocabulary's background distribution is Zipfian, p_w ~ 1 / (w + 2);
- `n_groups` broad themes, each a sparse Dirichlet(alpha) over the vocabulary, and
  `topics_per_group` topics per theme, each half its theme and half a sparse topic of its own;
- a document of topic z mixes the background (weight `background`) with topic z (weight
  `purity`) and a random Dirichlet(1) mixture of all topics (the rest); its length is
  log-normal (median `median_length` words, log-s.d. `length_sigma`), its counts multinomial.

The label is the document's topic z. The embedding sees the raw counts (float64): no
normalization, no vocabulary.
"""

from __future__ import annotations

import numpy as np


def generate(spec: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(X, labels): the counts (n x vocab, float64) and each document's topic."""
    n, V = spec["n"], spec["vocab"]
    G, per = spec["n_groups"], spec["topics_per_group"]
    alpha = spec["alpha"]
    background = 1.0 / (np.arange(V) + 2.0)
    background = rng.permutation(background / background.sum())
    themes = rng.dirichlet(np.full(V, alpha), size=G)
    own = rng.dirichlet(np.full(V, alpha), size=G * per)
    topics = 0.5 * np.repeat(themes, per, axis=0) + 0.5 * own
    z = rng.integers(0, G * per, size=n)
    mix = rng.dirichlet(np.ones(G * per), size=n)
    p_topic = spec["purity"] * topics[z] + (1 - spec["purity"]) * (mix @ topics)
    p = spec["background"] * background + (1 - spec["background"]) * p_topic
    p /= p.sum(axis=1, keepdims=True)
    length = np.exp(np.log(spec["median_length"]) + spec["length_sigma"] * rng.standard_normal(n))
    length = np.clip(np.round(length), 10, 2000).astype(np.int64)
    X = np.stack([rng.multinomial(m, q) for m, q in zip(length, p, strict=True)]).astype(np.float64)
    return X, z.astype(np.int64)
