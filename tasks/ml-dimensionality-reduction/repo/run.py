"""Fixed harness: embeds the points of one setting with embed() of embedding.py and measures it.

    python run.py --setting digits

Environment: MLSBENCH_SEED (the seed; default 0), MLSBENCH_OUT (the folder for result.json and
embedding.npy; `out` in a run by hand).

This parent process builds the setting's instance from the seed and the instance key (it loads
the data set, draws the subset or generates the points) and holds the labels; the embedding runs
in a child process (the task kit's Child: it reads embedding.py and nothing else of this folder,
writes only its scratch folder, cannot see this process and is denied the data sets packages
ship) that receives the points only, as an array. After the child has exited the parent writes
the embedding it received and result.json; the grader rebuilds the instance and recomputes every
metric from the embedding.
"""

from __future__ import annotations

import importlib
import sys
import time

import datasets
import metrics
from taskkit import (
    Child,
    RunFailure,
    out_dir_from_env,
    read_secret,
    run_seed,
    setting_spec,
    write_artifacts,
)

N_COMPONENTS = 2
TIMEOUT_S = 240.0


def main(argv=None):
    name, spec, _ = setting_spec(datasets.SETTINGS, argv=argv)
    spec = datasets.check_spec(spec)
    seed = run_seed()
    out = out_dir_from_env()
    secret_key = read_secret("instance_key.txt")  # the final evaluation's runs only
    key, instance = (secret_key.strip(), "final") if secret_key else (datasets.PUBLIC_KEY, "public")
    generators = {}
    if spec["kind"] not in ("digits", "fashion", "s_curve"):
        generators[spec["kind"]] = importlib.import_module(spec["generator"])
    data = datasets.load(name, spec, seed, key, generators)
    n, d = data.X.shape
    print(f"[harness] {name}: {spec['kind']} n={n} d={d} seed={seed}", flush=True)
    try:
        with Child(
            "worker:child_main",
            n,
            d,
            N_COMPONENTS,
            seed,
            may_read=["embedding.py"],
            timeout_s=TIMEOUT_S,
            name="embedding",
        ) as child:
            child.send(b"X", data.X.astype("<f8").tobytes())
            t0 = time.monotonic()
            raw = child.expect(b"E", size=8 * n * N_COMPONENTS)
            wall_s, cpu_s = time.monotonic() - t0, child.cpu_ns() / 1e9
            isolation = child.isolation
            code = child.close(grace_s=10)
        if code != 0:
            raise RunFailure(f"the embedding process exited with code {code} after it was done")
        import numpy as np

        Y = metrics.check_embedding(
            np.frombuffer(raw, dtype="<f8").reshape(n, N_COMPONENTS), n, N_COMPONENTS
        )
    except (RunFailure, ValueError) as e:
        print(f"[harness] FAILED: {e}", file=sys.stderr)
        write_artifacts(out, {"error": str(e)})
        return
    score = metrics.evaluate(data.X, Y, data.labels, data.targets, k=datasets.K)
    record = {
        "setting": name,
        "spec": spec,
        "seed": seed,
        "instance": instance,
        "isolation": isolation,
        "embed_wall_s": wall_s,
        "embed_cpu_s": cpu_s,
        **score,
    }
    write_artifacts(out, record, arrays={"embedding": Y})
    print(
        f"[harness] done in {wall_s:.1f} s ({cpu_s:.1f} s CPU): knn_score "
        f"{score['knn_score']:.4f}  trustworthiness {score['trustworthiness']:.4f}  "
        f"continuity {score['continuity']:.4f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
