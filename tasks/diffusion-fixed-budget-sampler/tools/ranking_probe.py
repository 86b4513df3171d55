"""Ranking probe (README "Ranking against the original"): run samplers in-process (no child
process) on the visible mixtures at another NFE budget and print sw2 and intra_fd as the grader
computes them (its functions; the setting's label seeds the sw2 directions). The NFE is
counted here as the harness counts it. Not part of the harness.

    python tools/ranking_probe.py METHODS NFE SEEDS PROBLEMS
    e.g. python tools/ranking_probe.py default,dpmpp_2m,unipc,ipndm 20 0,1,2 gmm2d-8modes"""

import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TASK = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TASK / "repo"))
import gmm  # noqa: E402
import problems  # noqa: E402

TMP = Path(tempfile.mkdtemp(prefix="ranking-probe-"))


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def sampler(name):
    """sampler.py with the editable region (line 21 on) replaced by a baseline's."""
    src = (TASK / "repo" / "sampler.py").read_text().splitlines(keepends=True)
    region = "".join(src[20:])
    if name != "default":
        region = (TASK / "baselines" / name / "sampler.py").read_text()
    path = TMP / f"sampler_{name}.py"
    path.write_text("".join(src[:20]) + region)
    return load(path, f"sampler_{name}")


def main():
    names, nfe, seeds, probs = sys.argv[1].split(","), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    grader = load(TASK / "grader.py", "ranking_probe_grader")
    mods = {n: sampler(n) for n in names}
    for prob in probs.split(","):
        spec = problems.make_spec(**problems.PROBLEMS[prob])
        mix = gmm.GaussianMixture.from_spec(spec)
        n = int(spec["n_samples"])
        label = f"{prob}-nfe{spec['nfe']}"
        for name in names:
            t0 = time.process_time()
            sw2, fd = [], []
            for seed in (int(s) for s in seeds.split(",")):
                calls = []

                def denoise(x, sigma, calls=calls, mix=mix):
                    calls.append(sigma)
                    if len(calls) > nfe:
                        raise RuntimeError(f"NFE budget of {nfe} exhausted")
                    return mix.denoise(np.asarray(x, dtype=np.float64), float(sigma))

                x = mods[name].sample(
                    denoise,
                    (n, mix.d),
                    nfe,
                    problems.SIGMA_MIN,
                    problems.SIGMA_MAX,
                    np.random.default_rng(seed),
                )
                x = np.asarray(x, dtype=np.float64)
                sw2.append(float(f"{grader.sliced_w2(x, mix, label):.4g}"))
                fd.append(float(f"{grader.intra_fd(x, mix):.4g}"))
            row = {"problem": prob, "nfe": nfe, "method": name, "sw2": sw2, "intra_fd": fd}
            row["cpu_s"] = round(time.process_time() - t0, 1)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
