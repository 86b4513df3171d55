"""Ranking probe (README "Ranking against the original"): run baselines in-process on one data
set per seed of a network at a given sample size, report SHD and skeleton F1 against the true
CPDAG and the BDeu (ess 1) of a DAG of the returned CPDAG. Not part of the harness.

    python tools/ranking_probe.py NETWORK N SEEDS METHODS
    e.g. python tools/ranking_probe.py alarm 5000 0,1,2 ges_bdeu,boss_bdeu,boss_bdeu@1s0

A method is a baseline folder name; NAME@KsS sets NUM_STARTS = K and SHUFFLE_SEED = S in it;
cl_boss / cl_ges run causal-learn's BOSS / GES with local_score_BDeu (needs causal-learn)."""

import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TASK = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TASK / "repo"))
sys.path.insert(0, str(TASK.parents[1] / "mlsbench_env"))  # taskkit, imported by repo modules
import bn  # noqa: E402
import graphs  # noqa: E402

TMP = Path(tempfile.mkdtemp(prefix="ranking-probe-"))


def load(name):
    """discover.py with the editable region (lines 116-165) replaced by a baseline's."""
    src = (TASK / "repo" / "discover.py").read_text().splitlines(keepends=True)
    base, _, variant = name.partition("@")
    region = (TASK / "baselines" / base / "discover.py").read_text()
    if variant:
        starts, seed = variant.split("s")
        region = region.replace("NUM_STARTS = 3", f"NUM_STARTS = {starts}")
        region = region.replace("SHUFFLE_SEED = 0", f"SHUFFLE_SEED = {seed}")
    mod_name = "discover_" + name.replace("@", "_")
    path = TMP / f"{mod_name}.py"
    path.write_text("".join(src[:115]) + region + "".join(src[165:]))
    spec = importlib.util.spec_from_file_location(mod_name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def causal_learn(name, X):
    """causal-learn's BOSS or GES; its graph encoding (i -> j: M[j, i] = 1, M[i, j] = -1;
    i -- j: both -1) converted to graphs.py's."""
    from causallearn.search.PermutationBased.BOSS import boss
    from causallearn.search.ScoreBased.GES import ges

    if name == "cl_boss":
        M = boss(X, score_func="local_score_BDeu", verbose=False).graph
    else:
        M = ges(X, score_func="local_score_BDeu")["G"].graph
    directed = (M.T == 1) & (M == -1)
    undirected = (M == -1) & (M.T == -1)
    return (directed | undirected).astype(np.int8)


def main():
    network, n, seeds, methods = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    methods = methods.split(",")
    net = bn.load_network(network)
    d = len(net.names)
    mods = {m: load(m) for m in methods if not m.startswith("cl_")}
    scorer = mods.get("ges_bdeu") or load("ges_bdeu")
    for seed in (int(s) for s in seeds.split(",")):
        X, cards = bn.make_dataset(net, network, n, seed, 0)
        perm = bn.column_order(network, n, seed, 0, d)
        dag = net.dag[np.ix_(perm, perm)]
        true = graphs.dag_to_cpdag(dag)
        score = scorer.LocalScore(X, cards, kind="bdeu", ess=1.0)
        row = {
            "network": network,
            "n": n,
            "seed": seed,
            "true_bdeu": round(score.dag_score(dag), 1),
        }
        for m in methods:
            t0 = time.process_time()
            G = (
                causal_learn(m, np.asarray(X))
                if m.startswith("cl_")
                else mods[m].learn_cpdag(X, cards)
            )
            cpu = time.process_time() - t0
            ext = graphs.pdag_to_dag(np.asarray(G))
            row[m] = {
                "shd": int(graphs.shd(true, G)),
                "f1": round(float(graphs.skeleton_f1(true, G)), 3),
                "bdeu": None if ext is None else round(score.dag_score(ext), 1),
                "cpu_s": round(cpu, 1),
            }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
