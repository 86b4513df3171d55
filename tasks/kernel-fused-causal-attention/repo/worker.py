"""The children's side of the harness (fixed file). harness.py starts two children with the task
kit's Child, which imports this module (torch and the fixed reference), drops the process's
privileges for good and then calls `serve`:
  - the candidate: imports attention.py on "I" and from then on runs only it, on "A";
  - the reference: never imports attention.py; runs the naive reference on "B" and the matmul
    probe on "G". No agent code ever runs in its process, so nothing the candidate does to
    torch (a global mode, a patched function) reaches these measurements.

Protocol, raw bytes only (the first byte of a frame is its kind):
  parent -> child  b"L" + int32[4] (B, H, T, D) + float32 q, k, v   load inputs       -> b"K"
                   b"I"                          import the candidate (candidate only) -> b"K"
                                                 (before it, the candidate's process runs B and
                                                 G too, to warm up)
                   b"A" | b"B" | b"G"            run it -> b"O" + the float32 output (none for
                                                 G), then b"K" once the output is freed
                   b"C"                          -> b"C" + q, k, v as they are now
                   b"D"                          done -> b"K"
"""

from __future__ import annotations

import struct

import numpy as np
import reference
import torch
from taskkit import RunFailure, send_frame


def _check(out, shape, q, k, v) -> None:
    if not isinstance(out, torch.Tensor):
        raise RunFailure(f"attention() returned {type(out).__name__}, not a tensor")
    if out.dtype != torch.float32 or tuple(out.shape) != tuple(shape):
        raise RunFailure(
            f"attention() returned {out.dtype} {tuple(out.shape)}, expected torch.float32 "
            f"{tuple(shape)}"
        )
    if out.device.type != "cpu" or out.requires_grad or out.is_sparse:
        raise RunFailure("attention() must return a dense CPU tensor without grad")
    if out.untyped_storage().data_ptr() in {t.untyped_storage().data_ptr() for t in (q, k, v)}:
        raise RunFailure(
            "attention() returned a tensor that shares memory with its inputs (it must "
            "return a new tensor)"
        )
    if torch.get_num_threads() != 1:
        raise RunFailure(
            "attention() changed torch's number of threads: the harness runs everything in "
            "one thread"
        )


def serve(conn, role: str, probe_n: int) -> None:
    torch.set_num_threads(1)
    # the candidate's process runs them too, before it imports attention.py only: warm-up, so
    # that buffers the libraries keep after a first call are not charged to the candidate
    fixed = {b"B": reference.naive_attention, b"G": reference.make_probe(probe_n)}
    fns = fixed
    q = k = v = shape = None
    while (msg := conn.recv_bytes())[:1] != b"D":
        kind = msg[:1]
        if kind == b"L":
            q = k = v = None
            shape = struct.unpack("<4i", msg[1:17])
            arr = np.frombuffer(msg, dtype=np.float32, offset=17).reshape((3, *shape))
            q, k, v = (torch.from_numpy(arr[i].copy()) for i in range(3))
            del msg, arr
            conn.send_bytes(b"K")
        elif kind == b"I" and role == "candidate":
            import attention  # the editable module, imported after the privilege drop

            fns = {b"A": attention.attention}
            conn.send_bytes(b"K")
        elif kind in fns:
            out = fns[kind](q, k, v)
            if kind == b"G":
                conn.send_bytes(b"O")
            else:
                _check(out, shape, q, k, v)
                send_frame(conn, b"O", out.contiguous().numpy())  # no copy: it would count in the peak
            out = None
            conn.send_bytes(b"K")  # the output is freed: the parent may read the RSS again
        elif kind == b"C":
            conn.send_bytes(b"C" + b"".join(t.numpy().tobytes() for t in (q, k, v)))
        else:
            raise RunFailure(f"protocol error: the {role} process got {kind!r}")
    # `fixed` kept the probe's buffers alive until now: the candidate's kept memory is measured
    # from before its import, and they must not look freed by it
    del fixed
    conn.send_bytes(b"K")
