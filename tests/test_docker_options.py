"""The docker backend's settings from ``MLSBENCH_DOCKER_*``, and the docker SDK staying an
optional extra (no engine needed)."""

import subprocess
import sys

import pytest
from pydantic import ValidationError

from mlsbench_env.sandbox.docker import DockerOptions

VARIABLES = ("MLSBENCH_DOCKER_IMAGE", "MLSBENCH_DOCKER_POOL", "MLSBENCH_DOCKER_CPUS")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_without_variables():
    o = DockerOptions.from_env()
    assert (o.image, o.pool_size, o.cpus, o.tmp_mb, o.shm_mb) == (None, 2, 2.0, 256, 64)


def test_variables_set_the_options(monkeypatch):
    monkeypatch.setenv("MLSBENCH_DOCKER_IMAGE", "mlsbench-sandbox:test")
    monkeypatch.setenv("MLSBENCH_DOCKER_POOL", "0")
    monkeypatch.setenv("MLSBENCH_DOCKER_CPUS", "1.5")
    o = DockerOptions.from_env()
    assert (o.image, o.pool_size, o.cpus) == ("mlsbench-sandbox:test", 0, 1.5)
    assert DockerOptions(pool_size=5).pool_size == 5  # an explicit value wins


def test_zero_cpus_means_no_quota_and_an_empty_image_the_default(monkeypatch):
    monkeypatch.setenv("MLSBENCH_DOCKER_CPUS", "0")
    monkeypatch.setenv("MLSBENCH_DOCKER_IMAGE", "")
    o = DockerOptions.from_env()
    assert o.cpus is None and o.image is None


def test_a_bad_value_names_its_variable(monkeypatch):
    monkeypatch.setenv("MLSBENCH_DOCKER_POOL", "many")
    with pytest.raises(ValidationError, match="MLSBENCH_DOCKER_POOL"):
        DockerOptions.from_env()


def test_importing_the_sandbox_packages_leaves_the_docker_sdk_unimported():
    code = (
        "import sys\n"
        "import mlsbench_env.sandbox, mlsbench_env.sandbox.local\n"
        "from mlsbench_env.sandbox.docker import DockerOptions, images\n"
        "DockerOptions.from_env()\n"
        "assert 'docker' not in sys.modules, 'the docker SDK was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
