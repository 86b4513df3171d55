"""The env layer: the gymnasium facade (``env.py``), the episode's state and snapshots
(``state.py``), one handler per tool (``handlers.py``) and background tests
(``background.py``) over that state, every text an agent reads (``render.py``), the
trajectory log (``log.py``), the options split into episode rules and deployment
(``config.py``), token counting (``tokens.py``) and vector envs (``vector.py``)."""

from mlsbench_env.env.config import Deployment, EnvConfig, EpisodeRules
from mlsbench_env.env.env import FullText, ResearchEnv
from mlsbench_env.env.render import MAX_OBS_CHARS
from mlsbench_env.env.state import Budget, EpisodeSnapshot, EpisodeState

__all__ = [
    "MAX_OBS_CHARS",
    "Budget",
    "Deployment",
    "EnvConfig",
    "EpisodeRules",
    "EpisodeSnapshot",
    "EpisodeState",
    "FullText",
    "ResearchEnv",
]
