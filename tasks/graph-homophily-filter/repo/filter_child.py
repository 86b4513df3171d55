"""The filter's process (fixed): started by the task kit's Child, which has dropped its
privileges (it reads filters.py and nothing else of this folder) before child_main runs.

It receives the graph as raw bytes (the adjacency's int32 CSR arrays, the features, the training
nodes and their labels), calls filters.build_filter, checks the contract's types, and sends
one frame: b"O" + int32 K + int32 f + uint8 learn_coef + float64 coef_init[K] +
float64 bases[K, n, f]. The parent checks every limit and value again on the raw bytes.
"""

import struct

import numpy as np
import scipy.sparse as sp  # imported before the drop: filters.py uses it


def _as_bases(out, n: int) -> tuple[list[np.ndarray], np.ndarray, bool]:
    if not isinstance(out, dict) or set(out) != {"bases", "coef_init", "learn_coef"}:
        raise TypeError(
            "build_filter must return a dict with exactly the keys "
            "'bases', 'coef_init', 'learn_coef'"
        )
    bases = out["bases"]
    if not isinstance(bases, (list, tuple)) or not bases:
        raise TypeError("'bases' must be a non-empty list of numpy arrays")
    if not isinstance(out["learn_coef"], (bool, np.bool_)):
        raise TypeError("'learn_coef' must be a bool")
    checked = []
    for k, b in enumerate(bases):
        if not isinstance(b, np.ndarray) or b.ndim != 2 or b.shape[0] != n:
            raise TypeError(
                f"bases[{k}] must be a numpy array of shape (n={n}, f) (dense, not "
                f"scipy.sparse), got {type(b).__name__} {getattr(b, 'shape', '')}"
            )
        if b.dtype.kind not in "fiu":
            raise TypeError(f"bases[{k}] must be real-valued, got dtype {b.dtype}")
        checked.append(np.ascontiguousarray(b, dtype="<f8"))
    if any(b.shape[1] != checked[0].shape[1] for b in checked):
        raise ValueError(
            f"all bases must have the same number of columns; got {[b.shape[1] for b in checked]}"
        )
    coef = np.asarray(out["coef_init"], dtype="<f8").reshape(-1)
    if coef.size != len(checked):
        raise ValueError(f"'coef_init' must hold {len(checked)} floats, got {coef.size}")
    return checked, coef, bool(out["learn_coef"])


def child_main(conn, n, indptr, indices, features, p, train_idx, train_labels, num_classes):
    adj = sp.csr_matrix(
        (
            np.ones(len(indices) // 4),
            np.frombuffer(indices, dtype="<i4").copy(),
            np.frombuffer(indptr, dtype="<i4").copy(),
        ),
        shape=(n, n),
    )
    x = np.frombuffer(features, dtype="<f8").reshape(n, p).copy()
    idx = np.frombuffer(train_idx, dtype="<i8").copy()
    y = np.frombuffer(train_labels, dtype="<i8").copy()
    import filters  # the editable module, only in this process

    out = filters.build_filter(adj, x, idx, y, int(num_classes))
    bases, coef, learn = _as_bases(out, n)
    head = struct.pack("<iiB", len(bases), bases[0].shape[1], learn)
    conn.send_bytes(b"O" + head + coef.tobytes() + b"".join(b.tobytes() for b in bases))
