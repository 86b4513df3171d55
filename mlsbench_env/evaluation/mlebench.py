"""Grading a submission to an MLE-bench competition (``spec/mlebench.py``) with MLE-bench's own
``grade_fn``, called here in the trusted process on the private answers, which no sandbox sees.

The grade is rounded to 5 decimals as MLE-bench's ``Grader`` rounds it; a submission its grader
rejects gets the grader's own message back (``validate`` and ``submit`` alike).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from mlsbench_env.evaluation.run import GRADING, SettingRun
from mlsbench_env.spec.mlebench import SPLIT, MlebenchTask
from mlsbench_env.workspace import hostfs


def grade_file(task: MlebenchTask, submission: Path) -> tuple[float | None, str]:
    """(MLE-bench's grade of the file, a message), or (None, why the grader rejected it)."""
    from mlebench.utils import load_answers, read_csv  # MLE-bench users only

    data = hostfs.read_bytes(submission.parent, submission.name)  # never follows a link
    if data is None:
        return None, f"{submission.name} is gone or is not a regular file"
    competition = task.competition()
    with GRADING:
        try:
            frame = read_csv(io.BytesIO(data))
            value = competition.grader.grade_fn(frame, load_answers(competition.answers))
        except Exception as e:  # the grader's verdict, in its own words
            return None, (
                f"{submission.name} is not a valid submission; MLE-bench's grader "
                f"({competition.grader.name}) says: {e or type(e).__name__}"
            )
    try:
        value = round(float(value), 5)
    except (TypeError, ValueError):
        return None, f"MLE-bench's grader returned {value!r}, not a number"
    if not math.isfinite(value):
        return None, f"MLE-bench's grader returned {value}, not a finite number"
    return value, f"MLE-bench's grader ({competition.grader.name}) accepts it"


def grade_runs(
    task: MlebenchTask, submission: Path, seed: int, problem: str | None
) -> list[SettingRun]:
    """The one test split's run: the grade as the task's metric, or why there is none."""
    if problem:
        return [SettingRun(SPLIT, seed, None, problem)]
    value, message = grade_file(task, submission)
    if value is None:
        return [SettingRun(SPLIT, seed, None, message)]
    return [SettingRun(SPLIT, seed, {task.spec.metrics[0].name: value}, None)]
