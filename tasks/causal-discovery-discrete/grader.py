"""Trusted grader of causal-discovery-discrete.

Rebuilds the true DAG of every data set of a run from the network file, the seed and the
replicate index (the column permutation is a function of them), converts it to its CPDAG,
and scores the graphs that the harness wrote to result.json:
    shd          structural Hamming distance between CPDAGs (Tsamardinos et al. 2006), mean
                 over the run's data sets; lower is better, 0 is perfect
    skeleton_f1  F1 of the estimated adjacencies, mean over the data sets; 1 is perfect
A run fails (an Exception) when the artifact is missing or malformed, when it was made for
another setting or seed, when a call of learn_cpdag failed or ran over its CPU time limit.
"""

import importlib.util
import json
import shlex
from pathlib import Path

import numpy as np
import yaml


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _setting_args(task_dir, setting):
    spec = yaml.safe_load((task_dir / "task.yaml").read_text())
    for s in spec["settings"]:
        if s["label"] == setting:
            argv = shlex.split(s["command"])
            break
    else:
        raise ValueError(f"unknown setting {setting!r}")
    args = {"replicates": 3, "time_limit": 30.0}  # run.py's defaults
    for flag, key, cast in (("--network", "network", str), ("--n", "n", int),
                            ("--replicates", "replicates", int),
                            ("--time-limit", "time_limit", float)):
        if flag in argv:
            args[key] = cast(argv[argv.index(flag) + 1])
    return args


def grade(setting, seed, out_dir, task_dir):
    task_dir, out_dir = Path(task_dir), Path(out_dir)
    bn = _load(task_dir / "repo" / "bn.py", "_cdd_bn")
    graphs = _load(task_dir / "repo" / "graphs.py", "_cdd_graphs")
    args = _setting_args(task_dir, setting)

    path = out_dir / "result.json"
    if not path.is_file():
        raise RuntimeError("no result.json: the harness did not finish (crash or timeout)")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RuntimeError(f"result.json is not valid JSON: {e}") from e
    got = (record.get("network"), record.get("n"), record.get("seed"))
    if got != (args["network"], args["n"], int(seed)):
        raise RuntimeError(f"result.json is for network={got[0]} n={got[1]} seed={got[2]}, "
                           f"expected {args['network']} n={args['n']} seed={seed}")
    reps = record.get("replicates")
    if not isinstance(reps, list) or not all(isinstance(r, dict) for r in reps):
        raise RuntimeError("result.json has no list of data sets")
    for r in reps:
        if r.get("status") != "ok":
            why = r.get("message") or "learn_cpdag failed"
            raise RuntimeError(f"data set {r.get('replicate')}: {why}")
    if [r.get("replicate") for r in reps] != list(range(args["replicates"])):
        raise RuntimeError(f"result.json must hold data sets 0..{args['replicates'] - 1}")

    bif = task_dir / "repo" / "networks" / f"{args['network']}.bif"
    if not bif.is_file():
        bif = task_dir / "hidden" / "networks" / f"{args['network']}.bif"
    net = bn.read_bif(bif)
    d = len(net.names)

    shds, f1s = [], []
    for r in reps:
        k = r["replicate"]
        cpu = r.get("cpu_s")
        if not isinstance(cpu, (int, float)) or not 0 <= cpu <= args["time_limit"]:
            raise RuntimeError(f"data set {k}: time limit exceeded ({r.get('cpu_s')} CPU s > "
                               f"{args['time_limit']:g} CPU s)")
        G = np.asarray(r.get("graph"), dtype=np.float64)
        if G.shape != (d, d) or not np.all((G == 0) | (G == 1)) or np.any(np.diag(G) != 0):
            raise RuntimeError(f"data set {k}: the graph must be a 0/1 ({d}, {d}) matrix "
                               "with a zero diagonal")
        perm = bn.column_order(args["network"], args["n"], int(seed), k, d)
        true = graphs.dag_to_cpdag(net.dag[np.ix_(perm, perm)])
        shds.append(graphs.shd(true, G))
        f1s.append(graphs.skeleton_f1(true, G))
    return {"shd": float(np.mean(shds)), "skeleton_f1": float(np.mean(f1s))}
