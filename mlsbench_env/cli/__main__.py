"""`python -m mlsbench_env.cli`: the `mlsbench` command."""

from mlsbench_env.cli import app

app()
