"""MLE-bench's prepared competitions as tasks of the competition kind (``mlebench-<id>``).

Given an importable ``mlebench`` package (MLE-bench's checkout on the import path) and its
prepared-data folder (``mlebench prepare --data-dir DATA`` writes ``DATA/<id>/prepared/public``
and ``.../private``), every competition is a task: MLE-bench's own ``Registry`` says where its
files are, this module writes a small task folder for it (task.yaml, description.md, the sample
submission, anchors.json) under a cache folder and returns an ``MlebenchTask``, which mounts the
public folder read-only in the sandbox and hides the private answers and raw downloads.

Anchors (docs/mlebench.md): the sample submission's grade scores 0, the median entry of the
competition's ``leaderboard.csv`` 50, the metric's bound (where known) 100; medals follow the
same leaderboard with MLE-bench's rules (``scoring.medal_thresholds``, applied where a medal is
awarded). Nothing downloads here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path

import yaml

from mlsbench_env.errors import TaskSpecError, UnknownNameError
from mlsbench_env.spec.load import Task, load_task_dir

PREFIX = "mlebench-"
DATA_ENV = "MLSBENCH_MLEBENCH_DATA"
CACHE_ENV = "MLSBENCH_MLEBENCH_CACHE"
SPLIT = "test"
MEDIAN = "leaderboard-median"
# the best value of MLE-bench's graders that have one, by grader name (config.yaml)
BOUNDS = {
    "accuracy": 1.0,
    "multi-class-classification-accuracy": 1.0,
    "auc-roc": 1.0,
    "weighted-auroc": 1.0,
    "auroc-multi-label": 1.0,
    "mean-column-wise-roc-auc": 1.0,
    "column-wise roc auc": 1.0,
    "micro-f1-score": 1.0,
    "macro-f1-score": 1.0,
    "f1-score": 1.0,
    "quadratic-weighted-kappa": 1.0,
    "multi-class-log-loss": 0.0,
    "log-loss": 0.0,
    "root-mean-squared-error": 0.0,
    "root_mean_squared_error": 0.0,
    "mean-absolute-error": 0.0,
    "mean-column-wise-rmsle": 0.0,
    "top-1-classification-error": 0.0,
}


def _mlebench():
    """MLE-bench's registry module, or a TaskSpecError saying how to make it importable."""
    try:
        import mlebench.registry as registry  # only MLE-bench users need it
    except ImportError as e:
        raise TaskSpecError(
            "mlebench",
            "(import)",
            f"MLE-bench's package does not import ({e}); put its checkout on the import path "
            "(PYTHONPATH=/path/to/mle-bench, or pip install -e it) and install what its "
            "graders import: pip install 'mlsbench-env[mlebench]'",
        ) from None
    return registry


def data_dir(source: str | Path | None = None) -> Path:
    """The prepared-data folder: ``source`` (``mlebench:PATH`` or PATH), else the env var."""
    raw = str(source) if source else os.environ.get(DATA_ENV, "")
    raw = raw.removeprefix("mlebench:")
    if not raw:
        raise TaskSpecError(
            DATA_ENV,
            "(unset)",
            "MLE-bench tasks need the folder `mlebench prepare --data-dir` wrote: set "
            f"{DATA_ENV}=PATH or pass --source mlebench:PATH",
        )
    path = Path(raw).expanduser().resolve()
    if not path.is_dir():
        raise TaskSpecError(str(path), "(folder)", "no such folder; expected MLE-bench's data dir")
    return path


def _competitions_dir() -> Path | None:
    """MLE-bench's ``competitions`` folder, found without importing the package."""
    try:
        found = importlib.util.find_spec("mlebench")
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0]) / "competitions"


def competition_ids() -> list[str]:
    """Every competition MLE-bench defines (as ``Registry.list_competition_ids`` finds them);
    empty when it is not installed."""
    root = _competitions_dir()
    return [p.parent.name for p in sorted(root.rglob("config.yaml"))] if root else []


def prepare_hint(comp_id: str, data: Path) -> str:
    return f"mlebench prepare -c {comp_id} --data-dir {data}"


def unavailable(comp_id: str, data: Path) -> str | None:
    """Why a competition cannot be played from ``data`` (None: it can), with the fix. Reads
    the paths of its config.yaml as MLE-bench's Registry does, without importing its grader
    (many graders import packages only their competition needs)."""
    folder = (_competitions_dir() or Path()) / comp_id
    config = yaml.safe_load((folder / "config.yaml").read_text())
    public = data / comp_id / "prepared" / "public"
    missing = [
        name
        for name, ok in (
            ("public files", public.is_dir() and any(public.iterdir())),
            ("private answers", (data / config["dataset"]["answers"]).is_file()),
            ("sample submission", (data / config["dataset"]["sample_submission"]).is_file()),
        )
        if not ok
    ]
    if missing:
        return (
            f"not prepared ({', '.join(missing)} missing under {data / comp_id}); run "
            f"`{prepare_hint(comp_id, data)}`"
        )
    board = folder / "leaderboard.csv"
    # a checkout without `git lfs pull` holds a pointer of ~130 bytes in its place
    if not board.is_file() or board.read_bytes()[:40].startswith(b"version https://git-lfs"):
        return f"no leaderboard at {board} (a Git LFS file of MLE-bench's checkout): git lfs pull"
    return None


def _cache_root(data: Path) -> Path:
    base = os.environ.get(CACHE_ENV) or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "mlsbench", "mlebench"
    )
    return Path(base) / hashlib.sha256(str(data).encode()).hexdigest()[:12]


LAYOUT = 1  # of the task folder written here: a new layout rewrites every cached folder


def _fingerprint(*paths: Path) -> str:
    files = ";".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths)
    return f"layout {LAYOUT};{files}"


@dataclass(frozen=True)
class MlebenchTask(Task):
    """A task built from one of MLE-bench's prepared competitions."""

    data: Path = Path()
    competition_id: str = ""

    def competition(self):
        """MLE-bench's ``Competition`` object (its grader, answers and leaderboard paths)."""
        return _mlebench().Registry(self.data).get_competition(self.competition_id)

    @property
    def public_dir(self) -> Path:
        return self.data / self.competition_id / "prepared" / "public"

    def readable_sources(self) -> tuple[Path, ...]:
        return (self.public_dir.resolve(),)

    def hidden_sources(self) -> tuple[Path, ...]:
        # every competition's answers and raw downloads of the data folder (the raw files hold
        # the labels prepare split off), should the folder lie inside what a sandbox sees
        found = [*self.data.glob("*/prepared/private"), *self.data.glob("*/raw")]
        return tuple(sorted(p.resolve() for p in found))


def load_mlebench_task(comp_id: str, source: str | Path | None = None) -> MlebenchTask:
    """The task of MLE-bench competition ``comp_id`` (without the ``mlebench-`` prefix)."""
    data = data_dir(source)
    known = competition_ids()
    if comp_id not in known:
        if not known:
            _mlebench()  # says how to make the package importable
        raise UnknownNameError("MLE-bench competition", comp_id, known)
    why = unavailable(comp_id, data)
    if why:
        raise TaskSpecError(f"{PREFIX}{comp_id}", "(data)", why)
    try:
        competition = _mlebench().Registry(data).get_competition(comp_id)
    except ImportError as e:
        raise TaskSpecError(
            f"{PREFIX}{comp_id}", "(grader)", f"MLE-bench's grader does not import here: {e}"
        ) from None
    root = _cache_root(data) / f"{PREFIX}{comp_id}"
    stamp = _fingerprint(
        competition.answers, competition.sample_submission, competition.leaderboard
    )
    anchors_path = root / "anchors.json"
    fresh = anchors_path.is_file() and json.loads(anchors_path.read_text()).get("source") == stamp
    if not fresh:
        _write_task_folder(root, competition, data, stamp)
    spec = load_task_dir(root).spec
    return MlebenchTask(spec=spec, root=root, data=data, competition_id=comp_id)


def _write_task_folder(root: Path, competition, data: Path, stamp: str) -> None:
    import pandas as pd  # MLE-bench's graders need it anyway

    board = pd.read_csv(competition.leaderboard)
    if "score" not in board.columns or board["score"].dropna().empty:
        raise TaskSpecError(str(competition.leaderboard), "score", "no scores on the leaderboard")
    lower = competition.grader.is_lower_better(board)  # MLE-bench's reading of the board
    direction = "lower" if lower else "higher"
    metric = re.sub(r"[^a-z0-9]+", "-", competition.grader.name.lower()).strip("-") or "score"
    bound = BOUNDS.get(competition.grader.name.lower())
    if bound is not None and (bound == 0.0) != lower:
        bound = None
    scores = [float(v) for v in board["score"].dropna()]
    median = statistics.median(scores)
    floor, floor_from = _sample_grade(competition), "the sample submission's grade"
    if floor is None:  # a sample submission the grader rejects: the board's last entry
        floor = max(scores) if lower else min(scores)
        floor_from = "the leaderboard's last entry (the sample submission does not grade)"
    sample_name = competition.sample_submission.name
    max_mb = max(100.0, 4 * competition.sample_submission.stat().st_size / 2**20)
    public = (data / competition.id / "prepared" / "public").resolve()
    question = (
        f"MLE-bench competition `{competition.id}` ({competition.competition_type}). The "
        f"competition's public files are in `{public}` (read-only; list them with `ls`). "
        f"Write your predictions to `submission.csv` in the workspace, in the format of "
        f"`{sample_name}`; it is graded by MLE-bench's own grader ({competition.grader.name})."
    )
    spec = {
        "id": f"{PREFIX}{competition.id}",
        "kind": "competition",
        "version": 0,
        "title": f"{competition.name} (MLE-bench)",
        "domain": f"mlebench/{competition.competition_type}",
        "question": question,
        "settings": [{"label": SPLIT}],
        "seeds": {"dev": 0, "final": [0]},
        "metrics": [{"name": metric, "direction": direction, "bound": bound}],
        "baselines": [
            {
                "name": MEDIAN,
                "title": f"The median entry of the Kaggle leaderboard ({median:.6g}; scores 50)",
                "reference": "MLE-bench leaderboard.csv",
            }
        ],
        "reference_baseline": MEDIAN,
        "competition": {
            "submission": "submission.csv",
            "sample_submission": sample_name,
            "run": "false",
            "max_submission_mb": max_mb,
        },
        # MLE-bench gives an agent 24 hours per competition
        "budgets": {"max_steps": 300, "compute_s": 86400, "command_timeout_s": 7200},
        "limits": {"memory_mb": 16384, "processes": 512, "file_size_mb": 4096},
    }
    anchors = {
        "task": spec["id"],
        "source": stamp,
        "leaderboard_entries": len(scores),
        "floor_from": floor_from,
        "anchors": {SPLIT: {metric: {"floor": floor, "reference": median}}},
        # medals come from these entries with MLE-bench's rules (evaluation.competition)
        "leaderboard": [{"name": "kaggle", "value": v} for v in scores],
    }
    tmp = root.with_name(root.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "repo").mkdir(parents=True)
    (tmp / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (tmp / "repo" / "description.md").write_text(competition.description)
    shutil.copyfile(competition.sample_submission, tmp / "repo" / sample_name)
    (tmp / "anchors.json").write_text(json.dumps(anchors, indent=1))
    shutil.rmtree(root, ignore_errors=True)
    try:
        tmp.rename(root)
    except OSError:  # another process wrote the same folder first: theirs is as good
        shutil.rmtree(tmp, ignore_errors=True)
        if not (root / "task.yaml").is_file():
            raise


def _sample_grade(competition) -> float | None:
    """MLE-bench's grade of the competition's own sample submission (None: it does not grade)."""
    from mlebench.utils import load_answers, read_csv

    return competition.grader(
        read_csv(competition.sample_submission), load_answers(competition.answers)
    )


def list_rows(source: str | Path | None = None) -> list[tuple[str, str | None]]:
    """(task id, why unavailable or None) for every competition MLE-bench defines."""
    data = data_dir(source)
    if not competition_ids():
        _mlebench()  # says how to make the package importable
    return [(f"{PREFIX}{cid}", unavailable(cid, data)) for cid in competition_ids()]
