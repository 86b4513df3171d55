"""The calibrator's side of the harness (fixed). Runs in the child process started by the task
kit, after it has dropped its privileges: it can read calibrator.py and nothing else of this
folder.

Wire format (raw bytes, no pickling), one round trip per split:
  parent -> child  b"S" + calibration scores (float64, n_cal x K) + their labels (int64, n_cal)
                   + test scores (float64, n_test x K);
  child -> parent  b"P" + calibrated test probabilities (float64, n_test x K); b"D" when done.
"""

from __future__ import annotations

import numpy as np


def child_main(conn, kind, n_classes, n_cal, n_test, n_splits):
    """Entry point of the child process: one fit and one prediction per split."""
    import calibrator  # imported here so that only this process runs the editable code

    K = n_classes
    for _ in range(n_splits):
        msg = conn.recv_bytes()
        body = memoryview(msg)[1:]
        a = n_cal * K * 8
        cal = np.frombuffer(body[:a], dtype="<f8").reshape(n_cal, K).copy()
        labels = np.frombuffer(body[a : a + n_cal * 8], dtype="<i8").copy()
        test = np.frombuffer(body[a + n_cal * 8 :], dtype="<f8").reshape(n_test, K).copy()
        model = calibrator.Calibrator(kind, K)
        fitted = model.fit(cal, labels)
        if fitted is None:
            fitted = model
        p = np.asarray(fitted.predict(test), dtype="<f8")
        if p.shape != (n_test, K):
            raise ValueError(f"predict() must return an array of shape ({n_test}, {K}), "
                             f"got {p.shape}")
        conn.send_bytes(b"P" + np.ascontiguousarray(p).tobytes())
    conn.send_bytes(b"D")
