"""mlsbench tasks in inspect_ai: a ``@task``, tools from our schemas, a scorer, a sandbox.

    inspect eval mlsbench_env/integrations/inspect_task.py@mlsbench \\
        -T task=opt-evolution-strategy -T seeds=3 --model openai/gpt-4.1

- ``mlsbench(task, seeds, ...)``: one ``Sample`` per seed; the solver puts the episode's prompt
  (the reset observation) in front of inspect's ``react`` agent and stops it when the episode
  ends (``submit``, or a budget ran out).
- The tools are built from the env's own JSON schemas and call ``env.step``, so budgets, the
  edit surface and the trajectory log stay ours; a bad argument is the episode's answer.
- The ``mlsbench`` sandbox environment (registered through inspect's entry point) owns the
  episode: ``sample_init`` resets it, ``sample_cleanup`` closes it (also on cancel or error).
  ``exec`` runs through the budgeted ``shell`` tool; ``read_file``/``write_file`` reach the
  episode's workspace only, and never its task files (change code with the ``edit`` tool).
- ``mlsbench_scorer`` returns the final score, with the per-setting scores, the tamper report
  and the sandbox's isolation in the score's metadata (0 with a reason when nothing was
  submitted).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import stat
import uuid
from pathlib import Path
from typing import Any, Literal, cast, overload

from mlsbench_env.integrations import isolation_of, mark_harness, require, slim_info

require("inspect_ai", "inspect")

from inspect_ai import Task, task  # noqa: E402
from inspect_ai.agent import AgentState, as_solver, react  # noqa: E402
from inspect_ai.dataset import Sample  # noqa: E402
from inspect_ai.model import ChatMessageUser  # noqa: E402
from inspect_ai.scorer import Score, Target, mean, scorer, stderr  # noqa: E402
from inspect_ai.solver import Generate, TaskState, chain, solver  # noqa: E402
from inspect_ai.tool import ToolDef, ToolParams  # noqa: E402
from inspect_ai.util import (  # noqa: E402
    ExecResult,
    OutputLimitExceededError,
    SandboxEnvironment,
    SandboxEnvironmentLimits,
    SandboxUserUnsupportedError,
    sandbox,
    sandboxenv,
)

DEFAULT_TASK = "opt-evolution-strategy"
SCRATCH = ".inspect"  # exec's stdin/stdout/stderr files, inside the workspace, removed after


@sandboxenv(name="mlsbench")
class MlsSandbox(SandboxEnvironment):
    """One mlsbench episode as an inspect sandbox (see the module docstring)."""

    def __init__(self, env, observation: str, info: dict, isolation: dict | None = None):
        super().__init__()
        self.env = env
        self.prompt, self.tools = observation, info["tools"]
        self.isolation = isolation
        self.final: dict | None = None  # the terminal step's slim info
        self.done = False
        self._lock = asyncio.Lock()  # one step at a time (inspect may call tools in parallel)

    # ------------------------------------------------------------------ the episode
    async def step(self, tool: str, args: Any) -> tuple[str, dict]:
        async with self._lock:
            obs, reward, term, trunc, info = await asyncio.to_thread(
                self.env.step, {"tool": tool, "args": args}
            )
        if term or trunc:
            self.done = True
            self.final = {
                **slim_info(info, self.isolation),
                "reward": reward,
                "terminated": term,
                "truncated": trunc,
            }
        return obs, info

    @classmethod
    def default_concurrency(cls) -> int | None:
        return os.cpu_count() or 1  # episodes at once: their experiments share the CPUs

    @classmethod
    async def sample_init(cls, task_name, config, metadata) -> dict[str, SandboxEnvironment]:
        from mlsbench_env.env import ResearchEnv

        options = {"agent_name": "inspect_ai", **(metadata.get("options") or {})}
        env = await asyncio.to_thread(ResearchEnv, metadata.get("task", DEFAULT_TASK), **options)
        try:
            obs, info = await asyncio.to_thread(env.reset, seed=metadata.get("seed"))
        except BaseException:
            await asyncio.to_thread(env.close)
            raise
        mark_harness(env, "inspect_ai", "inspect-ai")
        isolation = await asyncio.to_thread(isolation_of, env)  # waits for the sandbox to start
        return {"default": cls(env, obs, info, isolation)}

    @classmethod
    async def sample_cleanup(cls, task_name, config, environments, interrupted) -> None:
        for sb in environments.values():
            env = getattr(sb, "env", None)  # by shape: see _episode
            if env is not None:
                await asyncio.to_thread(env.close)  # the sandbox and workspace go

    # ------------------------------------------------------------------ SandboxEnvironment
    async def exec(
        self,
        cmd: list[str],
        input: str | bytes | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        timeout: int | None = None,
        timeout_retry: bool = True,
        concurrency: bool = True,
    ) -> ExecResult[str]:
        """Run ``cmd`` as the ``shell`` tool would (one step, billed compute, fixed files
        checked); stdin/stdout/stderr pass through scratch files so they stay separate."""
        if user is not None:
            raise SandboxUserUnsupportedError(
                f"the mlsbench sandbox runs commands as its one user (asked for {user!r})"
            )
        code, out, err = await self._run(cmd, input, cwd, env, timeout)
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        if code == 126 and "ermission denied" in stderr:  # as inspect's own sandboxes do
            raise PermissionError(stderr.strip())
        return ExecResult(success=code == 0, returncode=code, stdout=stdout, stderr=stderr)

    async def _run(self, cmd, input=None, cwd=None, env=None, timeout=None):
        ws = self._workspace()
        (ws / SCRATCH).mkdir(exist_ok=True)
        self._own(ws / SCRATCH)
        name = f"{SCRATCH}/{uuid.uuid4().hex}"
        files = {k: ws / f"{name}.{k}" for k in ("in", "out", "err", "sh")}
        files["in"].write_bytes(input.encode() if isinstance(input, str) else (input or b""))
        self._own(files["in"])
        body = shlex.join(cmd)
        if env:
            body = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + body
        if cwd:
            body = f"cd {shlex.quote(cwd)} && {body}"
        if len(body) > 32_000:  # bash -c takes one argument of at most 128 KiB: use a file
            files["sh"].write_text(body + "\n")
            self._own(files["sh"])
            body = f"bash {name}.sh"
        # the group's redirections open in the workspace, before any `cd`
        args: dict[str, Any] = {"command": f"{{ {body} ; }} <{name}.in >{name}.out 2>{name}.err"}
        if timeout:
            args["timeout"] = timeout
        try:
            obs, info = await self.step("shell", args)
            if info.get("tool") != "shell" or "exit_code" not in info:
                raise PermissionError(f"the episode did not run the command: {obs}")
            if info.get("killed") and "time" in str(info["killed"]):
                raise TimeoutError(f"{cmd[0]} timed out after {timeout} s")
            limit = SandboxEnvironmentLimits.MAX_EXEC_OUTPUT_SIZE
            return int(info["exit_code"]), _tail(files["out"], limit), _tail(files["err"], limit)
        finally:
            for f in files.values():
                f.unlink(missing_ok=True)

    async def write_file(self, file: str, contents: str | bytes) -> None:
        data = contents.encode() if isinstance(contents, str) else contents
        path = self._path(file, "write")
        if path is None:  # outside the workspace: the sandbox writes it, as its user
            script = 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"'
            code, _, err = await self._run(["sh", "-c", script, "sh", file], data)
            if code:
                raise _file_error(file, err.decode(errors="replace"))
            return
        if path.is_dir():
            raise IsADirectoryError(f"{file} is a directory")
        if path.exists() and not path.stat().st_mode & stat.S_IWUSR:
            raise PermissionError(f"{file} is not writable")
        made = [p for p in reversed(path.parents) if not p.exists()]
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(path.write_bytes, data)
        for p in [*made, path]:
            self._own(p)

    @overload
    async def read_file(self, file: str, text: Literal[True] = True) -> str: ...

    @overload
    async def read_file(self, file: str, text: Literal[False]) -> bytes: ...

    async def read_file(self, file: str, text: bool = True) -> str | bytes:
        limit = SandboxEnvironmentLimits.MAX_READ_FILE_SIZE
        path = self._path(file, "read")
        if path is None:  # outside the workspace: the sandbox reads it, as its user
            code, data, err = await self._run(["cat", "--", file])
            if code:
                raise _file_error(file, err.decode(errors="replace"))
        else:
            if path.is_dir():
                raise IsADirectoryError(f"{file} is a directory")
            if not path.exists():
                raise FileNotFoundError(f"{file} does not exist")
            if not path.stat().st_mode & stat.S_IRUSR:
                raise PermissionError(f"{file} is not readable")
            if path.stat().st_size > limit:
                raise OutputLimitExceededError(
                    SandboxEnvironmentLimits.MAX_READ_FILE_SIZE_STR, None
                )
            data = await asyncio.to_thread(path.read_bytes)
        if len(data) > limit:
            raise OutputLimitExceededError(SandboxEnvironmentLimits.MAX_READ_FILE_SIZE_STR, None)
        return data.decode() if text else data

    # ------------------------------------------------------------------ paths
    def _workspace(self) -> Path:
        return Path(self.env.unwrapped.workspace.root)

    def _path(self, file: str, what: str) -> Path | None:
        """The host path of a workspace file (None for a file outside the workspace, which
        only the sandbox sees). Task files change only through the ``edit`` tool (its
        editable ranges), never by a write."""
        root = self._workspace().resolve()
        path = (root / file).resolve()  # an absolute ``file`` replaces root
        if not path.is_relative_to(root):
            return None
        rel = path.relative_to(root).as_posix()
        if what == "write" and rel in _task_files(self.env):
            raise PermissionError(f"{file} is a task file: change it with the `edit` tool")
        return path

    def _own(self, path: Path) -> None:
        """Files the harness makes belong to the workspace's owner (the sandbox's user)."""
        st = self._workspace().stat()
        if path.exists() and (path.stat().st_uid, path.stat().st_gid) != (st.st_uid, st.st_gid):
            try:
                os.chown(path, st.st_uid, st.st_gid)
            except PermissionError:
                pass  # not root: the files are ours already


def _episode() -> MlsSandbox:
    """The sample's mlsbench sandbox. Checked by shape, not class: ``inspect eval FILE`` loads
    this module a second time under another name, next to the entry point's copy."""
    # the sandbox itself, not inspect's proxy; as_type takes the abstract base on purpose
    sb = sandbox().as_type(SandboxEnvironment)  # type: ignore[type-abstract]
    if not (hasattr(sb, "step") and hasattr(sb, "env")):
        raise TypeError(f"the sample's sandbox is {type(sb).__name__}, not mlsbench's")
    return cast("MlsSandbox", sb)


def _task_files(env) -> set[str]:
    root = Path(env.unwrapped.task.root) / "repo"
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _file_error(file: str, stderr: str) -> OSError:
    """The sandbox's error for a file operation, as the exception inspect expects."""
    if "directory" in stderr.lower():
        return IsADirectoryError(f"{file} is a directory: {stderr.strip()}")
    if "No such file" in stderr:
        return FileNotFoundError(f"{file} does not exist: {stderr.strip()}")
    return PermissionError(f"{file}: {stderr.strip() or 'refused'}")


def _tail(path: Path, limit: int) -> bytes:
    if not path.exists():
        return b""
    with Path(path).open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - limit))
        return f.read()


# ---------------------------------------------------------------------- tools, solver, scorer
def mlsbench_tools(schemas: list[dict]) -> list:
    """inspect tools from the env's JSON schemas; each call is one ``env.step``."""

    def make(schema: dict):
        name = schema["name"]

        async def call(**args) -> str:
            sb = _episode()
            return (await sb.step(name, args))[0]

        params = ToolParams.model_validate(schema["parameters"])
        return ToolDef(
            call, name=name, description=schema["description"], parameters=params, parallel=False
        ).as_tool()

    return [make(s) for s in schemas]


async def _continue(state: AgentState) -> bool | str:
    """Stop when the episode has ended; urge a model that answered without a tool call."""
    if _episode().done:
        return False
    if not state.output.message.tool_calls:
        return "Act with one of the tools; `submit` ends the episode with its final score."
    return True


@solver
def mlsbench_agent():
    """The episode's prompt as the user message, then inspect's ``react`` with our tools."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        sb = _episode()
        state.messages = [ChatMessageUser(content=sb.prompt)]
        agent = react(prompt=None, tools=mlsbench_tools(sb.tools), on_continue=_continue)
        return await as_solver(agent)(state, generate)

    return solve


@scorer(metrics=[mean(), stderr()])
def mlsbench_scorer():
    """The final score (0..100); per-setting scores, tamper report, isolation in metadata."""

    async def score(state: TaskState, target: Target) -> Score:
        sb = _episode()
        final = sb.final
        if final is None or final.get("score") is None:
            why = (final or {}).get("reason") or (
                "the episode was truncated" if final else "the agent never submitted"
            )
            return Score(value=0.0, explanation=f"no final score: {why}", metadata=final or {})
        return Score(
            value=float(final["score"]),
            explanation=f"final score {final['score']:.2f} over seeds {final.get('seeds')}",
            metadata=final,
        )

    return score


@task
def mlsbench(
    task: str = DEFAULT_TASK,
    seeds: int | str = 1,
    message_limit: int = 200,
    **options,
) -> Task:
    """One sample per seed (``seeds``: a count, or a comma list such as ``0,3,7``); episode
    options (``max_steps``, ``final_seeds``, ``runs_dir``, ...) as for ``gym.make``."""
    if isinstance(seeds, str):
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    else:
        seed_list = list(range(int(seeds)))
    dataset = [
        Sample(
            id=f"{Path(task).name}-seed{s}",
            input=f"mlsbench task {task}, seed {s} (the prompt comes from the episode's reset)",
            metadata={"task": task, "seed": s, "options": options},
        )
        for s in seed_list
    ]
    return Task(
        dataset=dataset,
        solver=chain(mlsbench_agent()),
        scorer=mlsbench_scorer(),
        sandbox="mlsbench",
        message_limit=message_limit,
    )
