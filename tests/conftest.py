import pytest

from mlsbench_env.env import ResearchEnv
from mlsbench_env.spec import load_task

FIRST_TASK = "opt-evolution-strategy"


@pytest.fixture(scope="session")
def es_task():
    return load_task(FIRST_TASK)


@pytest.fixture
def make_env(tmp_path):
    envs = []

    def make(task=FIRST_TASK, **options):
        options.setdefault("runs_dir", str(tmp_path / "runs"))
        options.setdefault("work_dir", str(tmp_path / "episodes"))
        env = ResearchEnv(task, **options)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


@pytest.fixture
def make_gym(tmp_path):
    """``gym.make`` of a registered id (the first task's by default), its runs and episodes under
    ``tmp_path``; every env is closed at the end."""
    import gymnasium as gym

    import mlsbench_env  # noqa: F401  (registers the ids)

    envs = []

    def make(gym_id=f"mlsbench/{FIRST_TASK}-v0", **options):
        options.setdefault("runs_dir", str(tmp_path / "runs"))
        options.setdefault("work_dir", str(tmp_path / "eps"))
        env = gym.make(gym_id, **options)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()
