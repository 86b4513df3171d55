"""The attack's process (fixed): started by the task kit's Child, which has dropped its
privileges (it reads attack.py and nothing else of this folder: not the weights, not the
hidden spec) before child_main runs. The attack gets `query`, an Oracle that forwards each
batch to the parent, where the model, the query counter and every check live.

Frames (raw bytes; the parent never unpickles):
  child -> parent  b"Q" + int32 m + int32 idx[m] + float32 x[m, d]   a query: logits of m images
                   b"R" + float32 x_adv[n, d]                        the attack's final images
  parent -> child  b"O" + float32 logits[m, k]                       the answer
                   b"E" + utf-8 text                                 the query was refused
"""

import struct

import numpy as np

# The data sets the targets were trained and are tested on (data.py: scikit-learn's digits
# and the Debian package's Fashion-MNIST) are among the packaged data the kit denies every
# child: a black-box attack may not read them (a surrogate trained on them is a transfer
# attack).


class Oracle:
    """The `query` callable handed to the attack: forwards each batch to the parent.

    query(x_batch, idx=None) -> logits, float64 array (m, n_classes).
      x_batch: (m, C, H, W) (or (m, C*H*W)) images; row j is charged to sample idx[j]
      (idx=None: m must be n and row j is sample j). Each row must lie in [0, 1] and in the
      eps-ball of its sample's clean image. Every row counts as one query of its sample. A batch
      that breaks the budget, [0, 1] or the eps-ball is refused by the parent (RuntimeError
      here) and the run fails, even if the exception is caught.
    query.remaining() -> int array (n,): queries each sample has left (a copy of this
      process's tally; the parent keeps the count that matters).
    """

    def __init__(self, conn, n, shape, eps, budget):
        self._conn = conn
        self._n = n
        self._d = int(np.prod(shape))
        self._budget = int(budget)
        self._used = np.zeros(n, dtype=np.int64)

    def remaining(self):
        return self._budget - self._used

    def __call__(self, x_batch, idx=None):
        xb = np.asarray(x_batch, dtype=np.float32).reshape(-1, self._d)
        m = xb.shape[0]
        if idx is None:
            if m != self._n:
                raise ValueError(f"query: idx=None needs all {self._n} samples, got {m} rows")
            idx = np.arange(self._n)
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.shape[0] != m or m == 0:
            raise ValueError(
                f"query: {m} rows but {idx.shape[0]} indices (need one index per row, m >= 1)"
            )
        if idx.min() < 0 or idx.max() >= self._n:
            raise ValueError("query: sample index out of range")
        if not np.all(np.isfinite(xb)):
            raise ValueError("query: images contain NaN or inf")
        # the budget, [0, 1] and the eps-ball are checked (and enforced) by the parent
        head = b"Q" + struct.pack("<i", m) + idx.astype("<i4").tobytes()
        self._conn.send_bytes(head + np.ascontiguousarray(xb, dtype="<f4").tobytes())
        reply = self._conn.recv_bytes()
        if reply[:1] != b"O":
            raise RuntimeError("query refused by the harness: " + reply[1:].decode("utf-8", "replace"))
        self._used += np.bincount(idx, minlength=self._n)
        return np.frombuffer(reply, dtype="<f4", offset=1).reshape(m, -1).astype(np.float64)


def child_main(conn, x0_bytes, shape, y, eps, budget, seed):
    x0 = np.frombuffer(x0_bytes, dtype="<f4").reshape(shape).copy()
    y = np.asarray(y, dtype=np.int64)
    import attack  # the editable module, only in this process

    oracle = Oracle(conn, x0.shape[0], x0.shape[1:], eps, budget)
    rng = np.random.default_rng(seed)
    out = attack.attack(oracle, x0.copy(), y.copy(), float(eps), int(budget), rng)
    out = np.ascontiguousarray(np.asarray(out, dtype="<f4"))
    if out.size != x0.size:
        raise ValueError(f"attack() must return an array of shape {x0.shape}, got {out.shape}")
    conn.send_bytes(b"R" + out.tobytes())
