"""Fixed harness: runs `optimize` from optimizer.py on one benchmark function.

    python run.py --function rastrigin --dim 30 --budget-per-dim 2000

Environment: MLSBENCH_SEED (the seed; default 0), MLSBENCH_OUT (directory for result.json;
when unset, as in a run by hand, nothing is written).

This parent process builds the objective (shift and rotation drawn from the seed), starts the
optimizer in a child process (multiprocessing, spawn) and serves its evaluation requests over a
pipe. It counts every evaluation, refuses batches beyond the budget (the child gets
BudgetExhausted; nothing of the batch is evaluated) and records the best point it evaluated.
After the child has exited it writes result.json: best_f, best_x, n_evals, budget. The score
of a run is the objective value at best_x (the optimum value is 0), recomputed by the grader.

If optimize() raises (other than BudgetExhausted), the run fails: no result is written and
the traceback is in the log.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

import functions
import problem


_SECRETS: dict | None = None


def read_secret(name: str) -> str | None:
    """A secret of a final-evaluation run (a key, a salt, a hidden setting's spec) from the
    environment's secrets channel: a descriptor only this process inherits, read once and
    closed. None in test runs, where the channel is absent."""
    global _SECRETS
    if _SECRETS is None:
        fd = os.environ.pop("MLSBENCH_SECRETS_FD", None)
        _SECRETS = {}
        if fd is not None:
            with os.fdopen(int(fd)) as f:
                _SECRETS = json.load(f)
    return _SECRETS.get(name)


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--function", required=True)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--budget-per-dim", type=int, required=True,
                   help="evaluation budget = budget_per_dim * dim")
    return p.parse_args(argv)


def _serve(conn, obj, budget):
    """Answer evaluation requests until the child closes the pipe. Returns the record."""
    dim = obj.dim
    n_evals, best_f, best_x = 0, np.inf, None
    max_bytes = budget * dim * 8 + 1024
    milestones = [budget * k // 10 for k in range(1, 11)]
    while True:
        try:
            msg = conn.recv_bytes(maxlength=max_bytes)
        except EOFError:
            break
        except OSError as e:  # larger than the whole budget, or a broken pipe
            raise RuntimeError(f"invalid request from the optimizer process: {e}") from None
        if len(msg) == 0 or len(msg) % (8 * dim) != 0:
            conn.send_bytes(b"E" + f"request of {len(msg)} bytes is not a batch of "
                                   f"float64 points of dimension {dim}".encode())
            continue
        X = np.frombuffer(msg, dtype="<f8").reshape(-1, dim)
        n = X.shape[0]
        if not np.all(np.isfinite(X)):
            conn.send_bytes(b"E" + b"points must be finite (got NaN or inf)")
            continue
        if np.any(X < obj.lower) or np.any(X > obj.upper):
            conn.send_bytes(b"E" + f"points must lie in the box [{obj.lower[0]}, "
                                   f"{obj.upper[0]}]^{dim}; clip or repair them".encode())
            continue
        if n > budget - n_evals:
            conn.send_bytes(b"B" + f"evaluation budget exhausted: requested {n}, "
                                   f"{budget - n_evals} of {budget} left".encode())
            continue
        f = obj(X)
        n_evals += n
        i = int(np.argmin(f))
        if f[i] < best_f:
            best_f, best_x = float(f[i]), X[i].copy()
        conn.send_bytes(b"F" + f.astype("<f8").tobytes())
        while milestones and n_evals >= milestones[0]:
            print(f"[harness] evals {n_evals:>8d}/{budget}  best f {best_f:.6e}", flush=True)
            milestones.pop(0)
    return n_evals, best_f, best_x


def main(argv=None, extra_builders=None):
    args = _parse(argv)
    seed = int(os.environ.get("MLSBENCH_SEED", "0"))
    out = os.environ.pop("MLSBENCH_OUT", None)  # the child never learns where results go
    secret_key = read_secret("instance_key.txt")  # the final evaluation's runs only
    if secret_key:
        key, instance = secret_key.strip(), "final"
    else:
        key, instance = functions.PUBLIC_KEY, "public"
    builders = {**functions.FUNCTIONS, **(extra_builders or {})}
    obj = functions.make_objective(args.function, args.dim, seed, key, builders)
    budget = args.budget_per_dim * args.dim
    print(f"[harness] {args.function} dim={args.dim} budget={budget} seed={seed} "
          f"box=[{obj.lower[0]}, {obj.upper[0]}]", flush=True)

    ctx = mp.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=problem.child_main, name="optimizer",
                       args=(child_conn, obj.dim, obj.lower, obj.upper, budget, seed))
    t0 = time.time()
    proc.start()
    child_conn.close()
    try:
        n_evals, best_f, best_x = _serve(parent_conn, obj, budget)
    except RuntimeError as e:
        proc.kill()
        proc.join()
        print(f"[harness] FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    proc.join(timeout=30)
    if proc.is_alive():  # it closed the pipe but does not exit
        proc.kill()
        proc.join()
        print("[harness] FAILED: the optimizer process did not exit after closing its pipe",
              file=sys.stderr)
        sys.exit(1)
    wall = time.time() - t0
    if proc.exitcode != 0:
        print(f"[harness] FAILED: the optimizer process exited with code {proc.exitcode} "
              f"(traceback above); no result written", file=sys.stderr)
        sys.exit(1)
    if best_x is None:
        print("[harness] FAILED: optimize() evaluated no point; no result written",
              file=sys.stderr)
        sys.exit(1)
    result = {
        "function": args.function,
        "dim": args.dim,
        "seed": seed,
        "instance": instance,
        "budget": budget,
        "n_evals": n_evals,
        "best_f": best_f,
        "best_x": best_x.tolist(),
    }
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "result.json").write_text(json.dumps(result))
    print(f"[harness] done: best f {best_f:.6e} after {n_evals}/{budget} evaluations "
          f"({wall:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
