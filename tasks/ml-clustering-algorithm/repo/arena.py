"""The clustering code's side of the harness (fixed). Runs in the child process started by the
task kit, after it has dropped its privileges: it can read cluster.py and nothing else of this
folder.

Wire format (raw bytes, no pickling):
  parent -> child  b"X" + the points (float64, n x dim, C order)
  child -> parent  b"L" + one label per point (int32, n)
"""

from __future__ import annotations

import numpy as np


def _labels(out, n: int) -> np.ndarray:
    a = np.asarray(out)
    if a.shape != (n,) or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(
            f"cluster() must return an integer array of shape ({n},), got dtype {a.dtype} "
            f"and shape {a.shape}"
        )
    if n and (a.min() < -1 or a.max() >= n):
        raise ValueError(f"cluster() returned a label outside [-1, {n}) (-1 marks noise)")
    return a.astype("<i4")


def child_main(conn, n, dim, n_clusters, seed):
    """Entry point of the child process: cluster the points the parent sends."""
    msg = conn.recv_bytes()
    X = np.frombuffer(msg, dtype="<f8", offset=1).reshape(n, dim).copy()
    X.setflags(write=False)
    rng = np.random.default_rng(seed)
    import cluster  # imported here so that only this process runs the editable code

    labels = _labels(cluster.cluster(X, n_clusters, rng), n)
    conn.send_bytes(b"L" + labels.tobytes())
