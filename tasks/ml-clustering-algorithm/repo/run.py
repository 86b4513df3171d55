"""Fixed harness: clusters one setting's points with cluster.py and records the labels.

    python run.py --setting moons

Environment: MLSBENCH_SEED (the seed; default 0), MLSBENCH_OUT (the folder for result.json and
labels.npy; `out` in a run by hand).

This parent process builds the data set from the seed and the instance key (datasets.py; a
hidden setting's kind from hidden_sets.py, which is present at the final evaluation only) and
keeps the true classes. The clustering code runs in a child process (the task kit's Child: it
reads cluster.py and nothing else of this folder, writes only its scratch folder and cannot see
this process) and receives the points and the number of clusters, nothing else. After the child
has exited, the parent writes labels.npy and result.json; the grader rebuilds the classes and
recomputes the metrics from the labels.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import agreement
import datasets
from taskkit import Child, RunFailure, out_dir_from_env, read_secret, run_seed, setting_spec
from taskkit import write_artifacts

CHILD_TIMEOUT_S = 240


def _makers() -> tuple[tuple, dict]:
    kinds, makers = datasets.KINDS, dict(datasets.MAKERS)
    try:
        import hidden_sets  # the hidden settings' data (final evaluation only)
    except ImportError:
        return kinds, makers
    return kinds + hidden_sets.KINDS, {**makers, **hidden_sets.MAKERS}


def main(argv=None):
    name, spec, _ = setting_spec(datasets.SETTINGS, argv=argv)
    kinds, makers = _makers()
    spec = datasets.check_spec(spec, kinds)
    seed = run_seed()
    out = out_dir_from_env()
    secret_key = read_secret("instance_key.txt")  # the final evaluation's runs only
    key, instance = (secret_key.strip(), "final") if secret_key else (datasets.PUBLIC_KEY, "public")
    X, y = datasets.make(name, spec, seed, key, makers)
    n, dim = X.shape
    k = int(len(np.unique(y)))
    print(f"[harness] {name}: n={n} dim={dim} n_clusters={k} seed={seed}", flush=True)
    t0 = time.time()
    try:
        with Child("arena:child_main", n, dim, k, seed, may_read=["cluster.py"],
                   name="clustering", timeout_s=CHILD_TIMEOUT_S) as child:
            child.send(b"X", X.astype("<f8").tobytes())
            labels = np.frombuffer(child.expect(b"L", size=4 * n), dtype="<i4").copy()
            cpu_s = child.cpu_ns() / 1e9
            isolation = child.isolation
            code = child.close(grace_s=30)
        if code != 0:
            raise RunFailure(f"the clustering process exited with code {code} after it was done")
        if labels.min() < -1 or labels.max() >= n:
            raise RunFailure(f"a label outside [-1, {n})")
    except RunFailure as e:
        print(f"[harness] FAILED: {e}", file=sys.stderr)
        write_artifacts(out, {"error": str(e)})
        return
    score = {"ari": agreement.ari(y, labels), "nmi": agreement.nmi(y, labels)}
    record = {"setting": name, "spec": spec, "seed": seed, "instance": instance, "n": n,
              "isolation": isolation, "child_cpu_s": cpu_s, **score}
    write_artifacts(out, record, arrays={"labels": labels})
    found = len(np.unique(labels[labels >= 0]))
    print(f"[harness] done: ARI {score['ari']:.4f}  NMI {score['nmi']:.4f}  ({found} clusters, "
          f"{int((labels < 0).sum())} noise points; {time.time() - t0:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
