"""mlsbench-env: gym-style environments for AI research agents on ML-science research tasks.

Importing the package registers one gymnasium id per shipped task, ``mlsbench/<task-id>-v<N>``;
nothing heavier happens at import.
"""

from mlsbench_env.spec.registration import register_tasks

__all__ = ["register_tasks", "make", "__version__"]
__version__ = "0.1.0"


def make(task: str, **options):
    """Shortcut for ``gymnasium.make`` with a task id or path (see ``ResearchEnv``)."""
    from mlsbench_env.env import ResearchEnv

    return ResearchEnv(task=task, **options)


register_tasks()
