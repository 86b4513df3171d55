"""inspect_ai's own sandbox conformance suite (``self_check``) against the ``mlsbench`` sandbox,
with the checks it fails on purpose listed, each with its reason."""

import asyncio

import pytest

pytest.importorskip("inspect_ai", reason="needs the [inspect] extra")

from inspect_ai.util._sandbox.self_check import *  # noqa: E402, F403

from mlsbench_env.integrations.inspect_task import MlsSandbox  # noqa: E402

pytestmark = pytest.mark.anyio

# checks the mlsbench sandbox fails on purpose (strict xfails: a pass is reported too)
KEPT_FAILURES = {
    "test_exec_as_user": "commands run as the sandbox's one unprivileged user: no root and no "
    "other users inside an episode (agent code runs least-privileged; DESIGN.md, Trust)",
}


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inspect-selfcheck")
    meta = {
        "task": "opt-evolution-strategy",
        "seed": 0,
        "options": {"max_steps": 10_000, "runs_dir": None, "work_dir": str(tmp / "eps")},
    }
    envs = asyncio.run(MlsSandbox.sample_init("selfcheck", None, meta))
    yield envs["default"]
    asyncio.run(MlsSandbox.sample_cleanup("selfcheck", None, envs, False))
    assert not any((tmp / "eps").glob("ep-*"))  # the episode's sandbox and workspace are gone


@pytest.fixture
def sandbox_env(episode, request):
    reason = KEPT_FAILURES.get(request.node.originalname)
    if reason:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    return episode


async def test_task_files_change_only_through_the_edit_tool(episode):
    """Not one of inspect's checks: a write to a task file is refused, the file untouched."""
    before = await episode.read_file("optimizer.py")
    with pytest.raises(PermissionError, match="edit"):
        await episode.write_file("optimizer.py", "cheat = True\n")
    assert await episode.read_file("optimizer.py") == before
