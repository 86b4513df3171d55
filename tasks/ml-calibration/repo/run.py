"""Fixed harness: calibrates one setting's classifier with the Calibrator of calibrator.py.

    python run.py --setting rf-digits

Environment: MLSBENCH_SEED (the seed; default 0), MLSBENCH_OUT (the folder for result.json and
probs.npy; `out` in a run by hand).

This parent process loads the data, trains the classifier and draws the splits (from the seed
and the instance key); the calibrator runs in a child process (the task kit's Child: it reads
calibrator.py and nothing else of this folder, writes only its scratch folder and cannot see
this process) and receives, per split, the calibration scores with their labels and the test
scores without. The parent checks the returned probabilities, measures ECE and NLL against the
test labels it alone holds, and after the child has exited writes probs.npy and result.json,
from which the grader recomputes both.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import setups
from taskkit import Child, RunFailure, out_dir_from_env, read_secret, run_seed, setting_spec
from taskkit import write_artifacts


def _calibrate(child, kind, K, s, y, splits):
    out, eces, nlls = [], [], []
    for i, (cal, test) in enumerate(splits):
        frame = s[cal].astype("<f8").tobytes() + y[cal].astype("<i8").tobytes()
        child.send(b"S", frame + s[test].astype("<f8").tobytes())
        raw = child.expect(b"P", size=len(test) * K * 8)
        p = np.frombuffer(raw, dtype="<f8").reshape(len(test), K)
        why = setups.check_probs(p, len(test), K)
        if why:
            raise RunFailure(f"split {i}: predict() returned {why}")
        out.append(p)
        eces.append(setups.ece(p, y[test]))
        nlls.append(setups.nll(p, y[test]))
        print(f"[harness] split {i}: ECE {eces[-1]:.4f}  NLL {nlls[-1]:.4f}  (uncalibrated ECE "
              f"{setups.ece(setups.uncalibrated(kind, s[test]), y[test]):.4f})", flush=True)
    child.expect(b"D", size=0)
    return np.stack(out), float(np.mean(eces)), float(np.mean(nlls))


def main(argv=None):
    name, spec, _ = setting_spec(setups.SETTINGS, argv=argv)
    seed = run_seed()
    out = out_dir_from_env()
    secret_key = read_secret("instance_key.txt")  # the final evaluation's runs only
    key, instance = (secret_key.strip(), "final") if secret_key else (setups.PUBLIC_KEY, "public")
    t0 = time.time()
    kind, K, s, y, splits = setups.train_and_score(name, spec, seed, key)
    n_cal, n_test = spec["n_cal"], spec["n_test"]
    print(f"[harness] {name}: {kind} scores, K={K}, calibration {n_cal}, test {n_test}, "
          f"{len(splits)} splits, seed={seed} (classifier trained in {time.time() - t0:.1f} s)",
          flush=True)
    try:
        with Child("fitting:child_main", kind, K, n_cal, n_test, len(splits),
                   may_read=["calibrator.py"], name="calibrator", timeout_s=120) as child:
            probs, ece, nll = _calibrate(child, kind, K, s, y, splits)
            isolation = child.isolation
            code = child.close(grace_s=30)
        if code != 0:
            raise RunFailure(f"the calibrator process exited with code {code} after it was done")
    except RunFailure as e:
        print(f"[harness] FAILED: {e}", file=sys.stderr)
        write_artifacts(out, {"error": str(e)})
        return
    record = {"setting": name, "spec": spec, "seed": seed, "instance": instance, "kind": kind,
              "n_classes": K, "isolation": isolation, "ece": ece, "nll": nll}
    write_artifacts(out, record, arrays={"probs": probs})
    print(f"[harness] done: ECE {ece:.4f}, NLL {nll:.4f} ({time.time() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
