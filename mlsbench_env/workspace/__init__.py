"""The episode's workspace: ``workspace`` (the scaffold copy the agent views and edits),
``integrity`` (the fixed-file guard and ``transplant``), ``hostfs`` (file work that follows no
link a sandbox left)."""

from mlsbench_env.workspace.integrity import transplant
from mlsbench_env.workspace.workspace import Workspace, WorkspaceState

__all__ = ["Workspace", "WorkspaceState", "transplant"]
