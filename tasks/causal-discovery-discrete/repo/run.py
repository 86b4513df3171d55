"""Harness of one setting: sample data sets from a Bayesian network, call learn_cpdag on each
in a fresh child process, write the returned graphs as the run's artifact.

usage: python run.py --network NAME --n SAMPLES [--replicates R] [--time-limit SECONDS]

The parent process reads the network, draws the data (seeded by MLSBENCH_SEED) and hands each
child one data set and the cardinalities, nothing else. The child imports discover.py and
returns a d x d matrix as raw bytes; the parent validates it, times the call, and writes
$MLSBENCH_OUT/result.json after every child has exited. The true graph never enters a child.
"""

import argparse
import json
import multiprocessing as mp
import os
import shutil
import struct
import sys
import time
from pathlib import Path

import numpy as np

import bn


def _child(conn):
    """Runs in a fresh interpreter: receives (data, cards), sends back the graph as bytes."""
    try:
        data, cards = conn.recv()
        import discover

        G = np.asarray(discover.learn_cpdag(data, cards), dtype=np.float64)
        conn.send_bytes(b"G" + struct.pack("<q", G.ndim) + struct.pack(f"<{G.ndim}q", *G.shape)
                        + np.ascontiguousarray(G).tobytes())
    except BaseException as e:  # report any failure of the method to the parent
        conn.send_bytes(b"E" + f"{type(e).__name__}: {e}".encode("utf-8", "replace")[:4000])
    finally:
        conn.close()


def _parse(payload, d):
    """Decode and check the child's reply; returns (matrix or None, error message)."""
    if payload[:1] == b"E":
        return None, "learn_cpdag raised " + payload[1:].decode("utf-8", "replace")
    if payload[:1] != b"G" or len(payload) < 9:
        return None, "malformed reply from the method process"
    ndim = struct.unpack("<q", payload[1:9])[0]
    if ndim != 2 or len(payload) < 9 + 16:
        return None, f"learn_cpdag must return a 2-d (d, d) matrix, got {ndim} dimensions"
    shape = struct.unpack("<2q", payload[9:25])
    if shape != (d, d):
        return None, f"learn_cpdag must return a ({d}, {d}) matrix, got {shape}"
    body = payload[25:]
    if len(body) != 8 * d * d:
        return None, "malformed matrix payload from the method process"
    G = np.frombuffer(body, dtype=np.float64).reshape(d, d)
    if not np.all((G == 0) | (G == 1)):
        return None, "learn_cpdag must return a 0/1 matrix (see the encoding in graphs.py)"
    if np.any(np.diag(G) != 0):
        return None, "learn_cpdag returned a self-loop (non-zero diagonal)"
    return G.astype(np.int8), ""


def run_one(ctx, data, cards, time_limit):
    """Call learn_cpdag once in a fresh child; returns (graph or None, message, seconds)."""
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=_child, args=(child_conn,), daemon=True)
    proc.start()
    child_conn.close()
    t0 = time.perf_counter()
    parent_conn.send((data, cards))
    payload, problem = None, ""
    try:
        if parent_conn.poll(time_limit):
            payload = parent_conn.recv_bytes(maxlength=64 + 8 * data.shape[1] ** 2 + 8192)
    except EOFError:
        pass
    except OSError:
        problem = "the method process sent an oversized reply"
    elapsed = time.perf_counter() - t0
    if proc.is_alive():
        proc.kill()
    proc.join()
    parent_conn.close()
    if payload is None:
        if problem:
            return None, problem, elapsed
        if elapsed >= time_limit:
            return None, f"time limit exceeded: learn_cpdag ran over {time_limit:g} s", elapsed
        return None, f"the method process died (exit code {proc.exitcode}) without a result", elapsed
    G, msg = _parse(payload, data.shape[1])
    return G, msg, elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--network", required=True, help="a file networks/NAME.bif")
    ap.add_argument("--n", type=int, required=True, help="samples per data set")
    ap.add_argument("--replicates", type=int, default=3, help="independent data sets per run")
    ap.add_argument("--time-limit", type=float, default=30.0,
                    help="wall seconds allowed for each call of learn_cpdag")
    args = ap.parse_args()

    seed = int(os.environ.get("MLSBENCH_SEED", "0"))
    out_dir = os.environ.pop("MLSBENCH_OUT", None)
    os.environ.pop("MLSBENCH_SEED", None)
    net = bn.load_network(args.network)

    ctx = mp.get_context("spawn")
    results = []
    for r in range(args.replicates):
        data, cards = bn.make_dataset(net, args.network, args.n, seed, r)
        G, msg, elapsed = run_one(ctx, data, cards, args.time_limit)
        status = "ok" if G is not None else "failed"
        print(f"replicate {r}: {status} in {elapsed:.2f} s {msg}".rstrip(), flush=True)
        results.append({"replicate": r, "status": status, "message": msg,
                        "elapsed_s": round(elapsed, 4),
                        "graph": None if G is None else G.tolist()})

    if out_dir:
        out = Path(out_dir)
        for p in out.iterdir():  # nothing a child may have left there survives
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        record = {"network": args.network, "n": args.n, "seed": seed,
                  "time_limit_s": args.time_limit, "replicates": results}
        (out / "result.json").write_text(json.dumps(record))
    failed = [r["message"] for r in results if r["status"] != "ok"]
    if failed:
        print("FAILED: " + failed[0], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
