"""The processes that run agent code (fixed): each simulated worker and the aggregator is a
task kit Child, which has dropped its privileges (it reads compressor.py and nothing else of
this folder) before worker_main / server_main runs. Frames are raw bytes (comm.py's payload
format); the parent parses and counts every payload and never unpickles anything.
"""

import numpy as np

from comm import decode, encode, flat_to_dict, unpack_ints

# The training and test data (data.py: scikit-learn's digits file, the Debian package's
# Fashion-MNIST, whose test labels the grader scores against) are among the packaged data the
# kit denies every child: agent code reads neither.


def worker_main(conn, worker, num_workers, names, shapes, budget_bits, seed):
    """One simulated worker: holds its own Compressor; sees only its own gradients and replies.

    parent -> worker  b"G" step | float32 gradient (all parameters, flattened, in order)
                      b"R" step round | canonical reply payload
                      b"D" (done)
    worker -> parent  b"P" payload bytes
    """
    import compressor  # the editable module, only in this process

    comp = compressor.Compressor(
        {n: tuple(s) for n, s in zip(names, shapes)}, int(budget_bits), int(worker),
        int(num_workers), int(seed),
    )
    grads = None
    while True:
        msg = conn.recv_bytes()
        kind = msg[:1]
        if kind == b"D":
            return
        if kind == b"G":
            (step,) = unpack_ints(msg[1:9], 1)
            grads = flat_to_dict(np.frombuffer(msg, dtype="<f4", offset=9), names, shapes)
            rnd, reply = 0, None
        elif kind == b"R":
            step, rnd = unpack_ints(msg[1:17], 2)
            reply = decode(msg[17:])
        else:
            raise RuntimeError(f"unknown message {kind!r}")
        conn.send_bytes(b"P" + encode(comp.compress(grads, int(step), int(rnd), reply)))


def server_main(conn, num_workers, names, shapes, budget_bits, seed):
    """The aggregator: sees only the (counted, canonical) payloads of all workers.

    parent -> server  b"A" step round K len_1..len_K | payload_1 .. payload_K
                      b"D" (done)
    server -> parent  b"G" float32 aggregated gradient (flattened, in order)
                      b"R" reply payload bytes (broadcast to every worker for another round)
    """
    shapes = [tuple(s) for s in shapes]
    import compressor  # the editable module, only in this process

    agg = compressor.Aggregator(
        {n: s for n, s in zip(names, shapes)}, int(budget_bits), int(num_workers), int(seed)
    )
    while True:
        msg = conn.recv_bytes()
        if msg[:1] == b"D":
            return
        step, rnd, k = unpack_ints(msg[1:25], 3)
        lens = unpack_ints(msg[25:25 + 8 * k], k)
        off, payloads = 25 + 8 * k, []
        for ln in lens:
            payloads.append(decode(msg[off:off + ln]))
            off += ln
        out = agg.aggregate(payloads, int(step), int(rnd))
        if not (isinstance(out, tuple) and len(out) == 2 and out[0] in ("grad", "reply")):
            raise TypeError('aggregate() must return ("grad", dict) or ("reply", dict)')
        if out[0] == "reply":
            conn.send_bytes(b"R" + encode(out[1]))
            continue
        g = out[1]
        if not isinstance(g, dict) or set(g) != set(names):
            raise ValueError("the aggregated gradient must be a dict with one entry per parameter")
        parts = []
        for n, s in zip(names, shapes):
            a = np.asarray(g[n], dtype=np.float32)
            if a.shape != s:
                raise ValueError(f"aggregated gradient[{n!r}] has shape {a.shape}, expected {s}")
            parts.append(a.reshape(-1))
        conn.send_bytes(b"G" + np.concatenate(parts).astype("<f4").tobytes())
