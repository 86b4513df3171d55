"""Harness of one setting: sample data sets from a Bayesian network, call learn_cpdag on each
in a fresh child process, write the returned graphs as the run's artifact.

usage: python run.py --network NAME --n SAMPLES [--replicates R] [--time-limit SECONDS]

The parent process reads the network, draws the data (seeded by MLSBENCH_SEED) and hands each
child one data set and the cardinalities, nothing else. The child (the task kit's Child: it
reads discover.py and graphs.py and nothing else of this folder, so neither the networks nor
bn.py, and cannot see this process) imports discover.py and returns a d x d matrix as raw
bytes; the parent validates it, reads the child's CPU time from outside, and writes
$MLSBENCH_OUT/result.json after every child has exited. The true graph never enters a child.
"""

import argparse
import os
import struct
import sys
import time

import numpy as np

from taskkit import Child, RunFailure, out_dir_from_env, write_artifacts

IMPORT_LIMIT_S = 120  # seconds allowed for starting the child and importing discover.py
WALL_FACTOR = 4       # a call may take at most WALL_FACTOR x its CPU limit of wall time
POLL_S = 0.05         # how often the parent checks the child's CPU time


def _child(conn, data, n, d, cards):
    """Runs in the kit's child: imports the method, says it is ready, waits for the start,
    calls it on the data set (bytes of an (n, d) int64 array in Fortran order) and sends the
    graph back as bytes."""
    import discover  # the editable module, imported after the kit dropped this process's rights

    conn.send_bytes(b"R")
    if conn.recv_bytes() != b"S":
        return
    data = np.frombuffer(data, dtype="<i8").reshape(d, n).T.copy(order="F")
    G = np.asarray(discover.learn_cpdag(data, np.array(cards, dtype=np.int64)), dtype=np.float64)
    conn.send_bytes(b"G" + struct.pack("<q", G.ndim) + struct.pack(f"<{G.ndim}q", *G.shape)
                    + np.ascontiguousarray(G).tobytes())


def _parse(payload, d):
    """Check the child's reply (b"G" + ndim + shape + float64 values); returns the matrix."""
    ndim = struct.unpack("<q", payload[1:9])[0] if len(payload) >= 9 else -1
    if ndim != 2 or len(payload) < 9 + 16:
        raise RunFailure(f"learn_cpdag must return a 2-d (d, d) matrix, got {ndim} dimensions")
    shape = struct.unpack("<2q", payload[9:25])
    if shape != (d, d):
        raise RunFailure(f"learn_cpdag must return a ({d}, {d}) matrix, got {shape}")
    body = payload[25:]
    if len(body) != 8 * d * d:
        raise RunFailure("malformed matrix payload from the method process")
    G = np.frombuffer(body, dtype=np.float64).reshape(d, d)
    if not np.all((G == 0) | (G == 1)):
        raise RunFailure("learn_cpdag must return a 0/1 matrix (see the encoding in graphs.py)")
    if np.any(np.diag(G) != 0):
        raise RunFailure("learn_cpdag returned a self-loop (non-zero diagonal)")
    return G.astype(np.int8)


def run_one(data, cards, cpu_limit):
    """Call learn_cpdag once in a fresh kit child. Returns (graph or None, message, cpu
    seconds, wall seconds, isolation) of the call (the import of discover.py excluded)."""
    n, d = data.shape
    wall_limit = WALL_FACTOR * cpu_limit
    cpu = wall = 0.0
    isolation = None
    try:
        # the method may import graphs.py (the task's graph utilities) and nothing else of here
        with Child("run:_child", data.T.tobytes(), n, d, cards.tolist(), name="method",
                   may_read=("discover.py", "graphs.py"), timeout_s=IMPORT_LIMIT_S) as child:
            isolation = child.isolation
            try:
                child.expect(b"R", size=0)
            except RunFailure as e:
                raise RunFailure(f"importing discover.py failed: {e}") from None
            cpu0, t0 = child.cpu_ns(), time.perf_counter()
            child.send(b"S")
            while not child.conn.poll(POLL_S):
                cpu, wall = (child.cpu_ns() - cpu0) / 1e9, time.perf_counter() - t0
                if cpu > cpu_limit:
                    raise RunFailure(f"time limit exceeded: learn_cpdag used over {cpu_limit:g} CPU seconds")
                if wall > wall_limit:
                    raise RunFailure(f"time limit exceeded: learn_cpdag ran over {wall_limit:g} s of wall time")
                if child.proc.poll() is not None:
                    break  # recv reports how it ended
            payload = child.expect(b"G", maxlength=64 + 8 * d * d)
            # the child waits for the end of the protocol, so its CPU clock is still readable
            cpu, wall = (child.cpu_ns() - cpu0) / 1e9, time.perf_counter() - t0
            child.send(b"Q")
        if cpu > cpu_limit:
            raise RunFailure(f"time limit exceeded: learn_cpdag used over {cpu_limit:g} CPU seconds")
        return _parse(b"G" + payload, d), "", cpu, wall, isolation
    except RunFailure as e:
        return None, str(e), cpu, wall, isolation


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--network", required=True, help="a file networks/NAME.bif")
    ap.add_argument("--n", type=int, required=True, help="samples per data set")
    ap.add_argument("--replicates", type=int, default=3, help="independent data sets per run")
    ap.add_argument("--time-limit", type=float, default=30.0,
                    help="CPU seconds allowed for each call of learn_cpdag")
    args = ap.parse_args()

    seed = int(os.environ.get("MLSBENCH_SEED", "0"))
    out_dir = out_dir_from_env() if "MLSBENCH_OUT" in os.environ else None
    os.environ.pop("MLSBENCH_SEED", None)
    import bn  # here, not at the top: the child imports this module and must not hold bn

    net = bn.load_network(args.network)
    results, isolation = [], None
    for r in range(args.replicates):
        data, cards = bn.make_dataset(net, args.network, args.n, seed, r)
        G, msg, cpu, wall, isolation = run_one(data, cards, args.time_limit)
        status = "ok" if G is not None else "failed"
        line = f"data set {r}: {status}, {cpu:.2f} CPU s, {wall:.2f} wall s {msg}"
        print(line.rstrip(), flush=True)
        results.append({"replicate": r, "status": status, "message": msg,
                        "cpu_s": round(cpu, 4), "wall_s": round(wall, 4),
                        "graph": None if G is None else G.tolist()})
        if G is None:
            break  # the run has failed; spare the remaining data sets

    if out_dir:
        record = {"network": args.network, "n": args.n, "seed": seed,
                  "time_limit_s": args.time_limit, "isolation": isolation,
                  "replicates": results}
        write_artifacts(out_dir, record)
    failed = [r["message"] for r in results if r["status"] != "ok"]
    if failed:  # the grader fails the setting with this message (from result.json)
        print("FAILED: " + failed[0], file=sys.stderr)


if __name__ == "__main__":
    main()
