"""Running settings and grading them: `test` runs, the final evaluation, competitions.

``run`` runs and grades one setting (policy check, sandboxed command, trusted grader),
``final`` the isolated final evaluation of a research task, ``competition`` the grading of a
submission file and of baseline pipelines, ``policy`` the static check of editable code,
``submission_csv`` the CSV helpers competition graders use, ``kit_result`` the record check
kit tasks' graders run first. The scores themselves are ``mlsbench_env.scoring``'s.
"""

from mlsbench_env.evaluation.competition import (
    grade_submission,
    leaderboard_value,
    medal_of,
    pipeline_evaluation,
    validate_submission,
)
from mlsbench_env.evaluation.final import final_evaluation
from mlsbench_env.evaluation.run import (
    RUN_ENV,
    SettingRun,
    check_policy,
    grade,
    new_out_dir,
    run_setting,
)

__all__ = [
    "RUN_ENV",
    "SettingRun",
    "check_policy",
    "final_evaluation",
    "grade",
    "grade_submission",
    "leaderboard_value",
    "medal_of",
    "new_out_dir",
    "pipeline_evaluation",
    "run_setting",
    "validate_submission",
]
