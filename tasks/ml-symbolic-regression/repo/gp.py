"""The search of a symbolic regressor (editable below the marked line).

`search(X, evaluate, budget, rng)` returns one expression (a string in the grammar of
grammar.py, prefix notation: "add mul x0 x0 sin x1") that should predict the unknown target y
from the inputs X. X (read-only, shape (n_train, n_vars)) holds the training inputs; the targets
stay with the harness. `evaluate(exprs)` sends a list of expression strings to the harness and
returns an array (len(exprs), n_train) of absolute errors |f(x_i) - y_i| on the training points
(inf where f is not finite); each expression costs one of the run's `budget` evaluations, and a
request over the budget or with an invalid expression raises. `rng` is a numpy Generator seeded
by the harness; draw all randomness from it. The returned expression is scored on held-out
points; it need not have been evaluated.
"""

import math

import numpy as np

from grammar import ARITY, MAX_TOKENS, parse

# ---- editable region (lines 21 to end): the search ----

FUNCTIONS = ("add", "sub", "mul", "div", "sin", "cos", "exp", "log")
POP = 100
MAX_DEPTH = 8


def terminals(n_vars):
    """The terminal set: the variables and the constant 1 (Nguyen et al.'s set with a constant)."""
    return [f"x{i}" for i in range(n_vars)] + ["1"]


def random_tree(rng, n_vars, depth, full):
    """A tree of at most `depth` levels, as prefix tokens: Koza's full or grow method."""
    terms = terminals(n_vars)
    if depth <= 1 or (not full and rng.random() < len(terms) / (len(terms) + len(FUNCTIONS))):
        return [terms[rng.integers(len(terms))]]
    f = FUNCTIONS[rng.integers(len(FUNCTIONS))]
    out = [f]
    for _ in range(ARITY[f]):
        out += random_tree(rng, n_vars, depth - 1, full)
    return out


def ramped_half_and_half(rng, n_vars, n, depths=(2, 6)):
    """Koza (1992): depths spread over the range, half full and half grow trees."""
    return [random_tree(rng, n_vars, int(rng.integers(depths[0], depths[1] + 1)), i % 2 == 0)
            for i in range(n)]


def search(X, evaluate, budget, rng):
    """Random search (the scaffold): ramped half-and-half trees, evaluated in batches of POP;
    the tree with the lowest training mean squared error is the answer."""
    n_vars = X.shape[1]
    best, best_mse = None, math.inf
    while budget > 0:
        trees = ramped_half_and_half(rng, n_vars, min(POP, budget))
        errors = evaluate([" ".join(t) for t in trees])
        budget -= len(trees)
        mse = np.mean(errors**2, axis=1)
        i = int(np.argmin(mse))
        if best is None or mse[i] < best_mse:
            best, best_mse = trees[i], mse[i]
    return " ".join(best)
