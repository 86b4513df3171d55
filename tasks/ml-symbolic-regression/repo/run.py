"""Fixed harness: runs the search of gp.py on one setting.

    python run.py --setting nguyen-7

Environment: MLSBENCH_SEED (the seed; default 0), MLSBENCH_OUT (the folder for result.json; `out`
in a run by hand).

This parent process draws every run's data (training points, noise, test points) from the seed
and the instance key; the search runs in a child process (the task kit's Child: it reads gp.py
and grammar.py and nothing else of this folder, writes only its scratch folder and cannot see
this process). The child gets the training inputs only; the parent evaluates every expression it
asks for against the noisy training targets, counts the evaluations against the budget, and
returns the absolute errors. The child's answer, one expression per run, is parsed and evaluated
here on the noiseless test points; the grader re-evaluates the same expressions itself.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import grammar
import problems
from taskkit import Budget, Child, RunFailure, out_dir_from_env, read_secret, run_seed
from taskkit import setting_spec, write_artifacts

CHILD_CPU_S = 60.0  # CPU seconds the search may use per setting run, all runs together
MAX_FRAME = 1 << 22


def _errors(child, frame: bytes, evals: Budget, inst: problems.Instance, n_vars: int) -> bytes:
    try:
        texts = frame.decode("utf-8").split("\n")
        parsed = [grammar.parse(t, n_vars) for t in texts]
    except (UnicodeDecodeError, ValueError) as e:
        return b"B" + f"invalid expression: {e}".encode()
    refused = evals.charge(len(parsed))
    if refused:
        return b"B" + refused.encode()
    out = np.empty((len(parsed), len(inst.y_train)))
    for i, tokens in enumerate(parsed):
        err = np.abs(problems.evaluate(tokens, inst.X_train) - inst.y_train)
        out[i] = np.where(np.isfinite(err), err, np.inf)
    return b"O" + out.astype("<f8").tobytes()


def _play(child, name: str, spec: dict, seed: int, key: str):
    d, n = spec["n_vars"], spec["n_train"]
    answers, used, values = [], [], []
    for run in range(spec["n_runs"]):
        inst = problems.Instance(name, spec, seed, key, run)
        evals = Budget("evals", spec["budget"])
        child.send(b"I", np.int64(inst.search_seed).astype("<i8").tobytes()
                   + inst.X_train.astype("<f8").tobytes())
        while (msg := child.recv(maxlength=MAX_FRAME))[:1] == b"E":
            child.send(b"", _errors(child, msg[1:], evals, inst, d))
            if child.cpu_ns() > CHILD_CPU_S * 1e9:
                raise RunFailure(f"the search used more than {CHILD_CPU_S:.0f} s of CPU")
        if msg[:1] != b"R":
            raise RunFailure(f"protocol error: the search sent {msg[:1]!r}, expected b'E' or b'R'")
        try:
            text = msg[1:].decode("utf-8")
            tokens = grammar.parse(text, d)
        except (UnicodeDecodeError, ValueError) as e:
            raise RunFailure(f"run {run}: search() returned an invalid expression: {e}") from None
        answers.append(" ".join(tokens))
        used.append(evals.used)
        values.append(problems.nmse(problems.evaluate(tokens, inst.X_test), inst.y_test))
        exact = " (exact)" if values[-1] <= problems.EXACT else ""
        print(f"[harness] run {run}: {evals.used} evals, test NMSE {values[-1]:.3g}{exact}: "
              f"{grammar.to_infix(tokens)[:160]}", flush=True)
    child.expect(b"D", size=0)
    return answers, used, values


def main(argv=None):
    name, spec, _ = setting_spec(problems.SETTINGS, argv=argv)
    spec = problems.check_spec(spec)
    seed = run_seed()
    out = out_dir_from_env()
    secret_key = read_secret("instance_key.txt")  # the final evaluation's runs only
    key, instance = (secret_key.strip(), "final") if secret_key else (problems.PUBLIC_KEY, "public")
    print(f"[harness] {name}: {spec['n_runs']} runs of {spec['budget']} evaluations, "
          f"{spec['n_train']} training points, seed {seed}", flush=True)
    t0 = time.time()
    try:
        with Child("arena:child_main", spec["n_runs"], spec["n_vars"], spec["n_train"],
                   spec["budget"], may_read=["gp.py", "grammar.py"], name="search") as child:
            answers, used, values = _play(child, name, spec, seed, key)
            isolation, cpu_s = child.isolation, child.cpu_ns() / 1e9
            code = child.close(grace_s=30)
        if code != 0:
            raise RunFailure(f"the search process exited with code {code} after it was done")
    except RunFailure as e:
        print(f"[harness] FAILED: {e}", file=sys.stderr)
        write_artifacts(out, {"error": str(e)})
        return
    score = problems.score_expressions(name, spec, seed, key, answers)
    record = {"setting": name, "spec": spec, "seed": seed, "instance": instance,
              "isolation": isolation, "expressions": answers, "evals_used": used,
              "search_cpu_s": cpu_s, **score}
    write_artifacts(out, record)
    print(f"[harness] done: test NMSE {score['test_nmse']:.4g} (geometric mean), recovery "
          f"{score['recovery_rate']:.2f}; {time.time() - t0:.1f} s, search CPU {cpu_s:.1f} s",
          flush=True)


if __name__ == "__main__":
    main()
