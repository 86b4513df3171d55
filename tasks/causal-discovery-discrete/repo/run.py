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

IMPORT_LIMIT_S = 120  # seconds allowed for starting the child and importing discover.py
WALL_FACTOR = 4       # a call may take at most WALL_FACTOR x its CPU limit of wall time
POLL_S = 0.05         # how often the parent checks the child's CPU time


def _child(conn):
    """Runs in a fresh interpreter: imports the method, says it is ready, receives
    (data, cards) and sends back the graph as bytes."""
    try:
        import discover

        conn.send_bytes(b"R")
        data, cards = conn.recv()
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


def _cpu_seconds(pid):
    """User + system CPU seconds of a live (or not yet reaped) process, from /proc."""
    try:
        head, tail = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)
    except (OSError, ValueError):
        return None
    if head.split(" (", 1)[0] != str(pid):  # a /proc of another PID namespace
        return None
    fields = tail.split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _receive(conn, proc, cpu_limit, wall_limit, maxlength):
    """Wait for the child's next message while it stays within its CPU and wall limits.

    Returns (payload, why): payload is None and why in {"cpu", "wall", "died", "oversized"}
    when no message came."""
    t0 = time.perf_counter()
    cpu0 = _cpu_seconds(proc.pid) or 0.0
    try:
        while not conn.poll(POLL_S):
            cpu = _cpu_seconds(proc.pid)
            if cpu is not None and cpu - cpu0 > cpu_limit:
                return None, "cpu"
            if time.perf_counter() - t0 > wall_limit:
                return None, "wall"
        return conn.recv_bytes(maxlength=maxlength), ""
    except EOFError:
        return None, "died"
    except OSError:
        return None, "oversized"


def run_one(ctx, data, cards, cpu_limit):
    """Call learn_cpdag once in a fresh child.

    Returns (graph or None, message, cpu seconds, wall seconds) of the call (the import of
    discover.py excluded)."""
    d = data.shape[1]
    wall_limit = WALL_FACTOR * cpu_limit
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=_child, args=(child_conn,), daemon=True)
    proc.start()
    child_conn.close()
    cpu = wall = 0.0
    try:
        ready, why = _receive(parent_conn, proc, IMPORT_LIMIT_S, IMPORT_LIMIT_S, 8192)
        if ready != b"R":
            if ready is not None and ready[:1] == b"E":
                msg = ready[1:].decode("utf-8", "replace")
                return None, "importing discover.py failed: " + msg, 0.0, 0.0
            if why in ("cpu", "wall"):
                return None, f"importing discover.py took over {IMPORT_LIMIT_S} s", 0.0, 0.0
            return None, "the method process died while importing discover.py", 0.0, 0.0
        cpu0, t0 = _cpu_seconds(proc.pid) or 0.0, time.perf_counter()
        try:
            parent_conn.send((data, cards))
            payload, why = _receive(parent_conn, proc, cpu_limit, wall_limit, 64 + 8 * d * d + 8192)
        except (BrokenPipeError, EOFError):
            payload, why = None, "died"
        wall = time.perf_counter() - t0
        cpu_now = _cpu_seconds(proc.pid)  # the child is not reaped yet, so /proc still has it
        cpu = wall if cpu_now is None else cpu_now - cpu0
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        parent_conn.close()
    if payload is not None and cpu > cpu_limit:
        payload, why = None, "cpu"
    if payload is None:
        return None, {
            "cpu": f"time limit exceeded: learn_cpdag used over {cpu_limit:g} CPU seconds",
            "wall": f"time limit exceeded: learn_cpdag ran over {wall_limit:g} s of wall time",
            "oversized": "the method process sent an oversized reply",
            "died": f"the method process died (exit code {proc.exitcode}) without a result",
        }[why], cpu, wall
    G, msg = _parse(payload, d)
    return G, msg, cpu, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--network", required=True, help="a file networks/NAME.bif")
    ap.add_argument("--n", type=int, required=True, help="samples per data set")
    ap.add_argument("--replicates", type=int, default=3, help="independent data sets per run")
    ap.add_argument("--time-limit", type=float, default=30.0,
                    help="CPU seconds allowed for each call of learn_cpdag")
    args = ap.parse_args()

    seed = int(os.environ.get("MLSBENCH_SEED", "0"))
    out_dir = os.environ.pop("MLSBENCH_OUT", None)
    os.environ.pop("MLSBENCH_SEED", None)
    net = bn.load_network(args.network)

    ctx = mp.get_context("spawn")
    results = []
    for r in range(args.replicates):
        data, cards = bn.make_dataset(net, args.network, args.n, seed, r)
        G, msg, cpu, wall = run_one(ctx, data, cards, args.time_limit)
        status = "ok" if G is not None else "failed"
        line = f"data set {r}: {status}, {cpu:.2f} CPU s, {wall:.2f} wall s {msg}"
        print(line.rstrip(), flush=True)
        results.append({"replicate": r, "status": status, "message": msg,
                        "cpu_s": round(cpu, 4), "wall_s": round(wall, 4),
                        "graph": None if G is None else G.tolist()})
        if G is None:
            break  # the run has failed; spare the remaining data sets

    if out_dir:
        out = Path(out_dir)
        for p in out.iterdir():  # nothing a child may have left there survives
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        record = {"network": args.network, "n": args.n, "seed": seed,
                  "time_limit_s": args.time_limit, "replicates": results}
        (out / "result.json").write_text(json.dumps(record))
    failed = [r["message"] for r in results if r["status"] != "ok"]
    if failed:
        print("FAILED: " + failed[0], file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
