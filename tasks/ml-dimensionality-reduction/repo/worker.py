"""The embedding's side of the harness (fixed). Runs in the child process started by the task
kit, after it has dropped its privileges: it can read embedding.py and nothing else of this
folder.

Wire format (raw bytes, no pickling):
  parent -> child  b"X" + the points (float64, n x d, C order)
  child -> parent  b"E" + the embedding (float64, n x n_components, C order)
"""

from __future__ import annotations

import numpy as np
from taskkit import send_frame


def child_main(conn, n, d, n_components, seed):
    """Entry point of the child process: embed the points the parent sends."""
    msg = conn.recv_bytes()
    if msg[:1] != b"X" or len(msg) != 1 + 8 * n * d:
        raise RuntimeError("protocol error: expected the points from the harness")
    X = np.frombuffer(msg, dtype="<f8", offset=1).reshape(n, d).copy()
    del msg
    import embedding  # imported here so that only this process runs the editable code

    Y = np.asarray(embedding.embed(X, n_components=n_components, seed=seed))
    if Y.shape != (n, n_components):
        raise ValueError(
            f"embed() must return an array of shape ({n}, {n_components}), got shape {Y.shape}"
        )
    if not (np.issubdtype(Y.dtype, np.floating) or np.issubdtype(Y.dtype, np.integer)):
        raise ValueError(f"embed() must return a numeric array, got dtype {Y.dtype}")
    send_frame(conn, b"E", np.ascontiguousarray(Y, dtype="<f8"))
