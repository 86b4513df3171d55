"""Task specs: ``tasks/<id>/task.yaml`` loaded into frozen, validated objects.

``model`` holds the schema (``TaskSpec`` and its parts), ``load`` the loaded ``Task`` and how
tasks are found and read, ``registration`` the gymnasium ids of the shipped tasks.
"""

from mlsbench_env.spec.load import (
    Task,
    builtin_task_ids,
    builtin_tasks_dir,
    kit_files,
    load_task,
    load_task_dir,
)
from mlsbench_env.spec.model import Competition, ForbiddenNames, Metric, Policy, Setting, TaskSpec

__all__ = [
    "Competition",
    "ForbiddenNames",
    "Metric",
    "Policy",
    "Setting",
    "Task",
    "TaskSpec",
    "builtin_task_ids",
    "builtin_tasks_dir",
    "kit_files",
    "load_task",
    "load_task_dir",
]
