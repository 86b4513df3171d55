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
