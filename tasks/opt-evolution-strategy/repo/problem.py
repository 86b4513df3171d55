"""The optimizer's side of the harness (fixed). Runs in the child process.

`Problem` is all the optimizer gets: the dimension, the box, the budget, and `evaluate`, which
sends a batch of points to the harness parent process and returns their objective values. The
parent owns the objective and counts evaluations; this process never holds the objective, its
optimum or its rotation.

Wire format (raw bytes, no pickling): a request is b"Q" and the float64 batch (n * dim
values), b"D" says the optimizer is done; a reply is one status byte, then float64 values
(b"F") or a UTF-8 message (b"B": budget exhausted, b"E": invalid request).
"""

from __future__ import annotations

import sys

import numpy as np


class BudgetExhausted(RuntimeError):
    """Raised by `Problem.evaluate` when a batch does not fit in the remaining budget.

    Nothing of such a batch is evaluated. If it escapes `optimize`, the run ends normally.
    """


class Problem:
    """A continuous box-constrained minimization problem behind an evaluation budget.

    Attributes: dim (int), lower and upper (read-only float arrays of shape (dim,)),
    budget (int, the total number of evaluations), evals_used, evals_left.
    """

    def __init__(self, conn, dim: int, lower, upper, budget: int):
        self._conn = conn
        self.dim = int(dim)
        self.lower = np.array(lower, dtype=np.float64)
        self.upper = np.array(upper, dtype=np.float64)
        self.lower.setflags(write=False)
        self.upper.setflags(write=False)
        self.budget = int(budget)
        self._used = 0

    @property
    def evals_used(self) -> int:
        return self._used

    @property
    def evals_left(self) -> int:
        return self.budget - self._used

    def evaluate(self, X):
        """Objective values of the points in X.

        X: array of shape (n, dim), n >= 1 (returns an array of shape (n,)), or a single point
        of shape (dim,) (returns a float). Every point must be finite and inside
        [lower, upper] (ValueError otherwise). Costs n evaluations of the budget; a batch that
        does not fit in `evals_left` raises BudgetExhausted and is not evaluated.
        """
        X = np.asarray(X, dtype=np.float64)
        single = X.ndim == 1
        if single:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.dim or X.shape[0] < 1:
            raise ValueError(f"evaluate expects shape (n, {self.dim}) or ({self.dim},) with "
                             f"n >= 1, got {np.shape(X)}")
        self._conn.send_bytes(b"Q" + np.ascontiguousarray(X, dtype="<f8").tobytes())
        reply = self._conn.recv_bytes()
        status, body = reply[:1], reply[1:]
        if status == b"F":
            f = np.frombuffer(body, dtype="<f8").copy()
            self._used += X.shape[0]
            return float(f[0]) if single else f
        message = body.decode("utf-8", "replace")
        if status == b"B":
            raise BudgetExhausted(message)
        raise ValueError(message)


def child_main(conn, dim, lower, upper, budget, seed):
    """Entry point of the child process (started by the task kit, which has dropped this
    process's privileges): run the optimizer against the remote problem."""
    problem = Problem(conn, dim, lower, upper, budget)
    rng = np.random.default_rng(seed)
    import optimizer  # imported here so that only the child process runs the editable code

    try:
        optimizer.optimize(problem, rng)
    except BudgetExhausted as e:
        print(f"[harness] optimize() stopped by BudgetExhausted: {e}", file=sys.stderr)
    conn.send_bytes(b"D")
