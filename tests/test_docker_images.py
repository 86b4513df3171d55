"""Image recipes: content-hashed tags, the pinned package lock (no engine needed), and what
the built image holds (marked docker)."""

import importlib.metadata as md
import shutil

import pytest

from mlsbench_env.sandbox.docker import images


@pytest.fixture
def recipes(tmp_path, monkeypatch):
    """A copy of sandbox/ that the test may change."""
    copy = tmp_path / "sandbox"
    shutil.copytree(images.recipe_dir(), copy)
    monkeypatch.setattr(images, "recipe_dir", lambda: copy)
    images.sandbox_tag.cache_clear()
    yield copy
    images.sandbox_tag.cache_clear()


def test_tags_hash_the_recipe(recipes):
    base, tag = images.base_tag(), images.sandbox_tag()
    assert base.startswith("mlsbench-base:") and tag.startswith("mlsbench-sandbox:")
    images.sandbox_tag.cache_clear()
    assert (images.base_tag(), images.sandbox_tag()) == (base, tag)  # unchanged: reused

    (recipes / "Dockerfile").write_text((recipes / "Dockerfile").read_text() + "\n# changed\n")
    images.sandbox_tag.cache_clear()
    assert images.base_tag() == base and images.sandbox_tag() != tag

    (recipes / "base.sh").write_text((recipes / "base.sh").read_text() + "\n# changed\n")
    images.sandbox_tag.cache_clear()
    assert images.base_tag() != base  # a new base rebuilds the sandbox image on top too


def test_lock_pins_the_installed_versions_with_dependencies():
    lock = images.requirements_lock()
    pins = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1] for line in lock}
    assert pins["numpy"] == md.version("numpy")
    for name in images.task_packages():
        assert name.lower() in pins, name
    assert {"joblib", "threadpoolctl"} <= set(pins)  # scikit-learn's requirements


def test_lock_names_a_missing_package():
    with pytest.raises(Exception, match="no-such-package-xyz is not installed"):
        images.requirements_lock(["no-such-package-xyz"])


@pytest.mark.docker
def test_image_has_the_hosts_package_versions(tmp_path):
    from test_sandbox_conformance import require  # tests/ is on sys.path under pytest

    require("docker")
    from mlsbench_env.sandbox import SandboxConfig, make_sandbox

    root = tmp_path / "ep"
    root.mkdir()
    sb = make_sandbox("docker", SandboxConfig(root=root))
    try:
        r = sb.exec(
            "python -c 'import numpy, scipy, sklearn, networkx; "
            "print(numpy.__version__, scipy.__version__, sklearn.__version__, "
            "networkx.__version__)'",
            timeout=60,
        )
    finally:
        sb.close()
    want = [md.version(n) for n in ("numpy", "scipy", "scikit-learn", "networkx")]
    assert r.output.split() == want, r.output
