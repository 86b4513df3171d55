"""The `mlsbench` command line (console script `mlsbench_env.cli:app`): the app and its helpers
in app.py, one module per command group (run, eval, report, tasks, serve, sandbox)."""

from mlsbench_env.cli.app import app
from mlsbench_env.cli.tasks import markdown_table

__all__ = ["app", "markdown_table"]
