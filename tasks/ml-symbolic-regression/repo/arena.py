"""The search's side of the harness (fixed). Runs in the child process started by the task kit,
after it has dropped its privileges: it can read gp.py and grammar.py and nothing else of this
folder (not the problems, not the harness).

Wire format (raw bytes, no pickling), for each of the setting's runs in turn:
  parent -> child  b"I" + the run's search seed (int64) + the training inputs (float64,
                   n_train x n_vars, row-major);
  child -> parent  b"E" + expressions (UTF-8, one per line) to evaluate; the parent answers
                   b"O" + absolute errors (float64, n_expressions x n_train) or b"B" + the
                   reason it refused (budget exhausted, an invalid expression);
  child -> parent  b"R" + the run's answer, one expression (UTF-8).
Then b"D" when every run is done.
"""

from __future__ import annotations

import numpy as np


class Refused(RuntimeError):
    """The harness refused an evaluation request (the message says why)."""


def _evaluator(conn, n_train: int):
    def evaluate(exprs):
        if isinstance(exprs, str):
            raise TypeError("evaluate() takes a list of expressions, not one string")
        exprs = list(exprs)
        if not exprs:
            return np.zeros((0, n_train))
        if not all(isinstance(e, str) and "\n" not in e for e in exprs):
            raise TypeError("evaluate() takes a list of one-line expression strings")
        conn.send_bytes(b"E" + "\n".join(exprs).encode("utf-8"))
        reply = conn.recv_bytes()
        if reply[:1] != b"O":
            raise Refused("evaluation refused by the harness: " + reply[1:].decode("utf-8"))
        return np.frombuffer(reply, dtype="<f8", offset=1).reshape(len(exprs), n_train).copy()

    return evaluate


def child_main(conn, n_runs, n_vars, n_train, budget):
    """Entry point of the child process: one search per run."""
    import gp  # imported here so that only this process runs the editable code

    for _ in range(n_runs):
        msg = conn.recv_bytes()
        seed = int(np.frombuffer(msg, dtype="<i8", count=1, offset=1)[0])
        X = np.frombuffer(msg, dtype="<f8", offset=9).reshape(n_train, n_vars).copy()
        X.setflags(write=False)
        answer = gp.search(X, _evaluator(conn, n_train), budget, np.random.default_rng(seed))
        if not isinstance(answer, str):
            raise TypeError(f"search() must return an expression string, got "
                            f"{type(answer).__name__}")
        conn.send_bytes(b"R" + answer.encode("utf-8"))
    conn.send_bytes(b"D")
