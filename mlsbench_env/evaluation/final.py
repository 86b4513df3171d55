"""The final evaluation of a research task: every setting x every seed, each run isolated on a
pristine copy of the scaffold that carries only the editable regions, then scored.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from mlsbench_env.evaluation.run import SettingRun, new_out_dir, run_setting
from mlsbench_env.sandbox import make_sandbox
from mlsbench_env.sandbox.visibility import sandbox_config
from mlsbench_env.scoring import FinalResult, score_runs
from mlsbench_env.spec import Setting, Task
from mlsbench_env.workspace import hostfs, transplant


def fixed_digests(workspace: Path, ranges: dict[str, list[tuple[int, int]]]) -> dict[str, str]:
    """sha256 of every fixed file of a run's copy (every file but the editable and created)."""
    return {
        rel: hashlib.sha256(hostfs.read_bytes(workspace, rel) or b"").hexdigest()
        for rel, kind in hostfs.walk(workspace)
        if kind != "dir" and rel not in ranges
    }


def run_isolated(
    task: Task,
    run_dir: Path,
    setting: Setting,
    seed: int,
    ranges: dict[str, list[tuple[int, int]]],
    digests: dict[str, str],
    *,
    backend: str,
    hidden_extra: tuple[Path, ...] = (),
    gpus: int = 0,
    secrets: dict[str, str] | None = None,
) -> SettingRun:
    """One (setting, seed) run of a final evaluation, on its own: a sandbox that sees only this
    run's folder (``run_dir/workspace``, the copy, and ``run_dir/out``), whose fixed files are
    read-only to its commands and match ``digests`` (taken when the copy was made) right before
    it starts. No other run can see or write any of it."""
    workspace = run_dir / "workspace"
    changed = [rel for rel, d in fixed_digests(workspace, ranges).items() if digests.get(rel) != d]
    changed += [rel for rel in digests if hostfs.kind(workspace, rel) is None]
    if changed:
        return SettingRun(
            setting.label, seed, None, "fixed files changed before the run: " + ", ".join(changed)
        )
    read_only = [workspace / rel for rel in digests]
    config = sandbox_config(task, run_dir, hidden_extra, gpus, read_only=read_only)
    sandbox = make_sandbox(backend, config)
    try:
        out = new_out_dir(run_dir, "run")
        return run_setting(task, sandbox, "workspace", setting, seed, out, ranges, secrets=secrets)
    finally:
        sandbox.close()


RunsOfSeed = Callable[[Path, int], Iterator[tuple[Path, SettingRun]]]
"""The runs of one seed, given the evaluation's scratch folder and the seed: each run with the
folder it ran in (removed as soon as the run is back)."""


def run_seeds(
    task: Task,
    seeds: list[int],
    runs_of_seed: RunsOfSeed,
    *,
    prefix: str,
    work_root: Path | None = None,
    anchors: dict | None = None,
    progress: Callable[[str, int, SettingRun], None] | None = None,
) -> FinalResult:
    """Every seed's runs (``runs_of_seed``) in a fresh scratch folder, reported to ``progress``
    as each comes back, then scored; the folders are removed even when a run raises."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=work_root))
    runs: list[SettingRun] = []
    try:
        for seed in seeds:
            for run_dir, run in runs_of_seed(base, seed):
                shutil.rmtree(run_dir, ignore_errors=True)
                runs.append(run)
                if progress:
                    progress(run.label, seed, run)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return score_runs(task, runs, task.anchors() if anchors is None else anchors)


def final_evaluation(
    task: Task,
    regions: dict[tuple[str, int], str],
    created: dict[str, str],
    *,
    backend: str = "local",
    seeds: list[int] | None = None,
    settings: list[Setting] | None = None,
    work_root: Path | None = None,
    anchors: dict | None = None,
    hidden_extra: tuple[Path, ...] = (),
    progress: Callable[[str, int, SettingRun], None] | None = None,
    gpus: int = 0,
) -> FinalResult:
    """Run every setting x every seed, each on its own pristine copy carrying only the editable
    regions (``run_isolated``)."""
    seeds = list(task.spec.seeds.final) if seeds is None else seeds
    settings = list(task.spec.settings) if settings is None else settings
    with_hidden = any(s.hidden for s in settings)
    secrets = task.secrets() if with_hidden else None

    def runs_of_seed(base: Path, seed: int) -> Iterator[tuple[Path, SettingRun]]:
        for setting in settings:
            run_dir = base / f"eval-{seed}-{setting.label}"
            ws = run_dir / "workspace"
            ranges = transplant(task, regions, created, ws, with_hidden=with_hidden)
            run = run_isolated(
                task,
                run_dir,
                setting,
                seed,
                ranges,
                fixed_digests(ws, ranges),
                backend=backend,
                hidden_extra=hidden_extra,
                gpus=gpus,
                secrets=secrets,
            )
            yield run_dir, run

    return run_seeds(
        task,
        seeds,
        runs_of_seed,
        prefix="final-",
        work_root=work_root,
        anchors=anchors,
        progress=progress,
    )
