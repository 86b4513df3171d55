"""Fixed harness: runs `optimize` from optimizer.py on one benchmark function.

    python run.py --function rastrigin --dim 30 --budget-per-dim 2000

Environment: MLSBENCH_SEED (the seed; default 0), MLSBENCH_OUT (directory for result.json;
when unset, as in a run by hand, nothing is written).

This parent process builds the objective (shift and rotation drawn from the seed), starts the
optimizer in a child process (the task kit's Child: it reads optimizer.py and nothing else of
this folder, writes only its scratch folder and cannot see this process) and serves its
evaluation requests over a pipe. It counts every evaluation, refuses batches beyond the budget (the child gets
BudgetExhausted; nothing of the batch is evaluated) and records the best point it evaluated.
After the child has exited it writes result.json: best_f, best_x, n_evals, budget. The score
of a run is the objective value at best_x (the optimum value is 0), recomputed by the grader.

If optimize() raises (other than BudgetExhausted), or breaks a rule, the run fails:
result.json holds only the reason ("error"), which the grader reports.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import functions
from taskkit import Budget, Child, RunFailure, out_dir_from_env, read_secret, write_artifacts


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--function", required=True)
    p.add_argument("--dim", type=int, required=True)
    p.add_argument("--budget-per-dim", type=int, required=True,
                   help="evaluation budget = budget_per_dim * dim")
    return p.parse_args(argv)


def _serve(child, obj, budget):
    """Answer evaluation requests until the optimizer says it is done. Returns the record."""
    dim = obj.dim
    evals = Budget("evals", budget)
    best_f, best_x = np.inf, None
    milestones = [budget * k // 10 for k in range(1, 11)]
    while True:
        # a request larger than the whole budget is refused by its size alone
        msg = child.recv(maxlength=budget * dim * 8 + 1)
        if msg == b"D":
            break
        if msg[:1] != b"Q" or len(msg) == 1 or (len(msg) - 1) % (8 * dim) != 0:
            child.send(b"E", f"request of {len(msg)} bytes is not b'Q' and a batch of "
                             f"float64 points of dimension {dim}".encode())
            continue
        X = np.frombuffer(msg, dtype="<f8", offset=1).reshape(-1, dim)
        if not np.all(np.isfinite(X)):
            child.send(b"E", b"points must be finite (got NaN or inf)")
            continue
        if np.any(X < obj.lower) or np.any(X > obj.upper):
            child.send(b"E", f"points must lie in the box [{obj.lower[0]}, {obj.upper[0]}]^{dim}; "
                             "clip or repair them".encode())
            continue
        refused = evals.charge(X.shape[0])
        if refused:
            child.send(b"B", refused.encode())
            continue
        f = obj(X)
        i = int(np.argmin(f))
        if f[i] < best_f:
            best_f, best_x = float(f[i]), X[i].copy()
        child.send(b"F", f.astype("<f8").tobytes())
        while milestones and evals.used >= milestones[0]:
            print(f"[harness] evals {evals.used:>8d}/{budget}  best f {best_f:.6e}", flush=True)
            milestones.pop(0)
    return evals.used, best_f, best_x


def main(argv=None, extra_builders=None):
    args = _parse(argv)
    seed = int(os.environ.get("MLSBENCH_SEED", "0"))
    out = out_dir_from_env() if "MLSBENCH_OUT" in os.environ else None
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

    t0 = time.time()
    try:
        # the optimizer's process reads optimizer.py and nothing else of this folder
        with Child("problem:child_main", obj.dim, obj.lower.tolist(), obj.upper.tolist(),
                   budget, seed, may_read=["optimizer.py"], name="optimizer") as child:
            n_evals, best_f, best_x = _serve(child, obj, budget)
            isolation = child.isolation
            code = child.close(grace_s=30)
        if code != 0:
            raise RunFailure(f"the optimizer process exited with code {code} after it was done")
        if best_x is None:
            raise RunFailure("optimize() evaluated no point; no result written")
    except RunFailure as e:
        print(f"[harness] FAILED: {e}", file=sys.stderr)
        if out:  # the grader fails the setting with this message
            write_artifacts(out, {"error": str(e)})
            return
        sys.exit(1)
    wall = time.time() - t0
    result = {
        "function": args.function,
        "dim": args.dim,
        "seed": seed,
        "instance": instance,
        "budget": budget,
        "n_evals": n_evals,
        "best_f": best_f,
        "best_x": best_x.tolist(),
        "isolation": isolation,
    }
    if out:
        write_artifacts(out, result)
    print(f"[harness] done: best f {best_f:.6e} after {n_evals}/{budget} evaluations "
          f"({wall:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
