"""Scale of `mlsbench eval`: the speedup of N local workers over 1 on a CPU-bound matrix, and
the Ray executor's per-episode overhead against the local executor, measured in the same run.

    python benchmarks/bench_matrix.py [--cells 8] [--max-workers 2] [--work 4000000] [--no-ray]

The matrix: one small CPU-bound task written to a temp folder (every setting spins a fixed
amount of pure-Python work, single-threaded) x ``--cells`` episode seeds of `baseline:good`,
final evaluation on one seed: an episode is a `test` (2 settings) and a final evaluation (3).
Each configuration runs the whole matrix into a fresh store.

- speedup(N) = wall(1 worker) / wall(N workers); target >= 0.8 N up to the core count.
- Ray: `ray.init` (local, 127.0.0.1, usage stats off) and the start of its worker processes
  are timed on their own; then the matrix runs on Ray with the largest N. Per-episode
  overhead = (wall(Ray, N) - wall(local, N)) x N / cells, the difference of the mean cell
  latency (submit to result) of the two executors, and the round trip of an empty Ray task
  (Ray's own cost per episode, free of the episode's noise).

The machine's load average is printed with each figure: other processes on a shared machine
take cores away from the matrix and lower the speedup.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from textwrap import dedent

import yaml

from mlsbench_env.scale.matrix import EvalConfig, run_eval
from mlsbench_env.scale.store import ResultsStore


def make_task(root: Path, work: int) -> Path:
    """A CPU-bound task: each setting runs ``work`` iterations of a Python loop."""
    d = root / "spin"
    (d / "repo").mkdir(parents=True)
    (d / "hidden").mkdir()
    (d / "baselines" / "good").mkdir(parents=True)
    spec = {
        "id": "spin",
        "version": 0,
        "title": "Spin",
        "domain": "bench",
        "question": "Return x.",
        "editable": [{"file": "guess.py", "lines": [5, 5]}],
        "settings": [
            {"label": "one", "command": "python run.py 1"},
            {"label": "two", "command": "python run.py 2"},
            {"label": "three", "command": "python run.py 3", "hidden": True},
        ],
        "seeds": {"dev": 0, "final": [0]},
        "metrics": [{"name": "error", "direction": "lower", "bound": 0.0}],
        "baselines": [{"name": "good", "title": "Eighty percent"}],
        "reference_baseline": "good",
    }
    (d / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (d / "repo" / "guess.py").write_text('"""x."""\n\n\ndef guess(x):\n    return 0.0\n')
    (d / "repo" / "run.py").write_text(
        dedent(
            f"""\
            import json, os, sys
            from guess import guess
            s = 0
            for i in range({work}):
                s += i * i
            x = float(sys.argv[1])
            with open(os.path.join(os.environ["MLSBENCH_OUT"], "answer.json"), "w") as f:
                json.dump({{"guess": float(guess(x))}}, f)
            """
        )
    )
    (d / "baselines" / "good" / "guess.py").write_text("    return 0.8 * x\n")
    (d / "grader.py").write_text(
        "import json\n"
        "def grade(setting, seed, out_dir, task_dir):\n"
        "    g = json.loads((out_dir / 'answer.json').read_text())['guess']\n"
        "    return {'error': abs(g - {'one': 1.0, 'two': 2.0, 'three': 3.0}[setting])}\n"
    )
    anchors = {
        k: {"error": {"floor": x, "reference": 0.2 * x}}
        for k, x in (("one", 1.0), ("two", 2.0), ("three", 3.0))
    }
    (d / "anchors.json").write_text(json.dumps({"task": "spin", "anchors": anchors}))
    return d


def run(tmp: Path, name: str, task: Path, cells: int, workers: int, executor: str) -> dict:
    cfg = EvalConfig(
        agents=["baseline:good"],
        tasks=[str(task)],
        seeds=tuple(range(cells)),
        workers=workers,
        executor=executor,
        store=str(tmp / f"{name}.sqlite"),
        runs_dir=str(tmp / f"runs-{name}"),
        env={"final_seeds": [0]},
    )
    load = os.getloadavg()[0]
    t = time.perf_counter()
    s = run_eval(cfg)
    wall = time.perf_counter() - t
    assert s.done == cells and s.failed == 0, s
    store = ResultsStore(cfg.store)
    lat = [a["finished"] - a["started"] for a in store.attempts()]
    inner = [r["wall_s"] for r in store.episodes()]
    return {
        "wall": wall,
        "latency": statistics.mean(lat),
        "episode": statistics.mean(inner),
        "load": load,
    }


def _pid() -> int:
    return os.getpid()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cells", type=int, default=8)
    p.add_argument("--max-workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--work", type=int, default=4_000_000, help="loop iterations per setting")
    p.add_argument("--repeats", type=int, default=2, help="rounds; the best wall is kept")
    p.add_argument("--no-ray", action="store_true")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-matrix-"))
    task = make_task(tmp, a.work)
    n_max = a.max_workers
    configs = [("local", n) for n in range(1, n_max + 1)] + ([] if a.no_ray else [("ray", n_max)])
    best: dict = {}
    start = warm = 0.0
    if not a.no_ray:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        import ray

        t = time.perf_counter()
        ray.init(
            address="local",
            num_cpus=n_max,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            configure_logging=False,
        )
        start = time.perf_counter() - t
        # start one Ray worker process per slot first, as a long-running cluster has them
        t = time.perf_counter()
        ray.get([ray.remote(_pid).options(num_cpus=1).remote() for _ in range(n_max)])
        warm = time.perf_counter() - t
        noop = ray.remote(_pid).options(num_cpus=1)
        trips = []
        for _ in range(20):  # Ray's own cost per task: submit, schedule, run nothing, return
            t = time.perf_counter()
            ray.get(noop.remote())
            trips.append(time.perf_counter() - t)
    for i in range(a.repeats):  # configurations interleaved: drifting load hits them alike
        for executor, n in configs:
            r = run(tmp, f"{executor}{n}-{i}", task, a.cells, n, executor)
            if (executor, n) not in best or r["wall"] < best[(executor, n)]["wall"]:
                best[(executor, n)] = r
    print(
        f"CPU-bound matrix: {a.cells} episodes x 5 setting runs; {os.cpu_count()} cores; "
        f"best of {a.repeats}"
    )
    print(f"{'configuration':28} {'wall s':>8} {'speedup':>8} {'target':>8} {'load':>6}")
    one = best[("local", 1)]["wall"]
    for (executor, n), r in best.items():
        speed = f"{one / r['wall']:8.2f} {0.8 * n:8.2f}" if executor == "local" else " " * 17
        print(f"{f'{executor}, {n} worker(s)':28} {r['wall']:8.1f} {speed} {r['load']:6.1f}")
    print(f"mean episode wall inside its worker (1 worker): {best[('local', 1)]['episode']:.2f} s")
    if not a.no_ray:
        ray.shutdown()
        print(f"Ray round trip of an empty task: {statistics.median(trips) * 1000:.1f} ms (median)")
        r, local = best[("ray", n_max)], best[("local", n_max)]
        per_ep = (r["wall"] - local["wall"]) * n_max / a.cells
        print(
            f"ray.init (local instance): {start:.1f} s, then {warm:.1f} s to start {n_max} Ray "
            "worker processes; once per eval"
        )
        print(
            f"Ray per-episode overhead vs local ({n_max} workers): {per_ep:+.2f} s from the "
            f"matrix wall; {r['latency'] - local['latency']:+.2f} s from the mean cell latency "
            f"(ray {r['latency']:.2f} s, local {local['latency']:.2f} s)"
        )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
