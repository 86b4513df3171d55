"""The agent's tools: typed argument models (the single source of their JSON schemas) and the
action parser. Schemas render to OpenAI and Anthropic function definitions in one place."""

from __future__ import annotations

import json
import shlex
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlsbench_env.errors import ActionError, MLSBenchError, UnknownNameError


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ViewArgs(_Args):
    """Show a file with line numbers ('*' marks editable lines), or list a directory."""

    path: str = Field(".", description="File or directory, relative to the workspace.")
    start: int | None = Field(None, ge=1, description="First line to show (default 1).")
    end: int | None = Field(None, ge=1, description="Last line to show (default: end of file).")


class EditArgs(_Args):
    """Change code inside the editable ranges: `replace` lines start..end with text, `insert`
    text after line `after`, or `create` a new file where the task allows. Refused (file
    untouched) when it touches lines outside the editable ranges."""

    path: str = Field(description="File to change, relative to the workspace.")
    action: Literal["replace", "insert", "create"] = Field(description="What to do.")
    text: str = Field(description="The new lines (replace/insert) or the file content (create).")
    start: int | None = Field(None, ge=1, description="replace: first line to replace.")
    end: int | None = Field(None, ge=0, description="replace: last line to replace (inclusive).")
    after: int | None = Field(None, ge=0, description="insert: the line to insert after.")


class UndoArgs(_Args):
    """Revert the last n edits."""

    n: int = Field(1, ge=1, description="How many edits to revert.")


class ReplaceArgs(_Args):
    """Replace the one occurrence of `old` in a file by `new` (exact text, whitespace
    included). Refused (file untouched) when `old` occurs zero or several times, or when the
    change touches lines outside the editable ranges."""

    path: str = Field(description="File to change, relative to the workspace.")
    old: str = Field(min_length=1, description="The exact text to replace (must occur once).")
    new: str = Field(description="The text to put in its place.")


class ShellArgs(_Args):
    """Run a bash command in the workspace (sandboxed: no network; fixed files are restored if
    changed). Output is truncated to the observation's token budget. Costs compute time."""

    command: str = Field(min_length=1, description="The bash command.")
    timeout: float | None = Field(None, gt=0, description="Seconds (at most the task's limit).")


class TestArgs(_Args):
    """Run every visible setting on the dev seed with the current code. Costs one test and its
    compute time; returns each setting's metrics and normalized score."""


class BackgroundTestArgs(TestArgs):
    """Run every visible setting on the dev seed with the current code. Costs one test and its
    compute time; returns each setting's metrics and normalized score. With wait=false it runs
    in the background on a copy of the code and returns a job id at once (see `jobs`)."""

    wait: bool = Field(
        True, description="false: start it in the background and return a job id at once."
    )


class JobsArgs(_Args):
    """Background tests (`test` with wait=false): `list` shows every job and the results of
    finished ones; `poll` one job; `wait` blocks until a job (default: every running one)
    finishes or `timeout` seconds pass; `cancel` stops a job (default: every running one).
    Running jobs keep charging compute; the episode cannot end while they run (submit and
    budget exhaustion cancel them, and say so)."""

    action: Literal["list", "poll", "wait", "cancel"] = Field("list", description="What to do.")
    id: int | None = Field(None, ge=1, description="The job (default: all of them).")
    timeout: float | None = Field(None, gt=0, description="wait: give up after this many seconds.")


class SubmitArgs(_Args):
    """End the episode: the final evaluation runs every setting on every seed from a pristine
    scaffold carrying only your editable regions; its score is the reward."""

    test: int | None = Field(
        None, ge=1, description="Submit the code of test number `test` (default: the current code)."
    )


class SelectTestArgs(_Args):
    """Run the current code on every setting (only the visible ones are shown): every final
    seed on the first test, one seed after. Costs one test; when the tests run out, the last
    test is submitted."""


class SelectSubmitArgs(_Args):
    """End the episode: test number `test` (default: the last test) becomes the final result,
    as it ran (nothing is re-run); the output then shows every setting."""

    test: int | None = Field(
        None, ge=1, description="The test whose result is final (default: the last test)."
    )


class ValidateArgs(_Args):
    """Check the submission file's format (ids, columns, values) without grading it: says what
    is wrong and what is expected, or that it is valid. Reveals no score; costs one step."""

    path: str | None = Field(
        None, description="The file to check (default: the submission file the grader reads)."
    )


class CompetitionSubmitArgs(_Args):
    """End the episode: the submission file is graded against the private test labels, on
    every test split; its normalized score is the reward."""


TOOLS: dict[str, type[_Args]] = {
    "view": ViewArgs,
    "edit": EditArgs,
    "undo": UndoArgs,
    "shell": ShellArgs,
    "test": TestArgs,
    "submit": SubmitArgs,
}
# Opt-in tools: not in the default tool set (the env adds `jobs` when max_jobs > 0). With
# `jobs` in an env's tool names, `test` takes the `wait` argument (BackgroundTestArgs), so the
# default prompt and schemas stay as they were.
OPT_IN_TOOLS: dict[str, type[_Args]] = {"jobs": JobsArgs, "replace": ReplaceArgs}
# Under the MLS-Bench protocol presets (env/protocol.py, ``select_tests``) `test` and `submit`
# mean what MLS-Bench's harness means by them.
SELECT_TOOLS: dict[str, type[_Args]] = {"test": SelectTestArgs, "submit": SelectSubmitArgs}
# A competition's tools: no edit surface to test, a format check instead (MLE-bench's
# validation server); `validate` is the competition's name for `test`.
COMPETITION_TOOLS: dict[str, type[_Args]] = {
    "view": ViewArgs,
    "edit": EditArgs,
    "undo": UndoArgs,
    "shell": ShellArgs,
    "validate": ValidateArgs,
    "submit": CompetitionSubmitArgs,
}


def arg_model(name: str, names: list[str] | tuple[str, ...], select: bool = False) -> type[_Args]:
    """The argument model of tool ``name`` in an env whose tools are ``names`` (``select``:
    under a protocol whose `submit` selects a test)."""
    if select and name in SELECT_TOOLS:
        return SELECT_TOOLS[name]
    if name == "test" and "jobs" in names:
        return BackgroundTestArgs
    if "validate" in names and name in COMPETITION_TOOLS:
        return COMPETITION_TOOLS[name]
    return TOOLS[name] if name in TOOLS else OPT_IN_TOOLS[name]


def _schema(model: type[_Args]) -> dict:
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        if "anyOf" in prop:  # Optional[X] -> X: providers want plain types
            kinds = [a for a in prop.pop("anyOf") if a.get("type") != "null"]
            prop.update(kinds[0])
    schema["additionalProperties"] = False
    return schema


def tool_schemas(names: list[str], select: bool = False) -> list[dict]:
    """Neutral schemas: name, description, JSON-schema parameters (a fresh copy per call)."""
    return json.loads(_schemas_json(tuple(names), select))


@cache  # pydantic's schema generation costs ~20 ms per tool: do it once per tool set
def _schemas_json(names: tuple[str, ...], select: bool = False) -> str:
    return json.dumps(
        [
            {
                "name": n,
                "description": " ".join((arg_model(n, names, select).__doc__ or "").split()),
                "parameters": _schema(arg_model(n, names, select)),
            }
            for n in names
        ]
    )


def openai_tools(schemas: list[dict]) -> list[dict]:
    return [{"type": "function", "function": s} for s in schemas]


def anthropic_tools(schemas: list[dict]) -> list[dict]:
    return [
        {"name": s["name"], "description": s["description"], "input_schema": s["parameters"]}
        for s in schemas
    ]


def usage(names: list[str], only: str | None = None, select: bool = False) -> str:
    """The tool list of the prompt (``only``: just that tool, as it is in an env of ``names``)."""
    lines = ['Actions are JSON: {"tool": NAME, "args": {...}}. Tools:']
    for s in tool_schemas(names, select):
        if only is not None and s["name"] != only:
            continue
        props = s["parameters"].get("properties", {})
        req = set(s["parameters"].get("required", []))
        args = ", ".join(
            f"{k}{'' if k in req else '?'}: {v.get('type', 'string')}" for k, v in props.items()
        )
        lines.append(f"- {s['name']}({args}): {s['description']}")
    return "\n".join(lines)


def decoded(value: Any) -> Any:
    """A JSON text decoded (a recorded action, its args); anything else, or a text that is not
    JSON, as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass
    return value


def parse_action(action: Any, names: list[str], select: bool = False) -> tuple[str, _Args]:
    """A JSON string or dict -> (tool name, validated args). Raises ActionError."""
    if isinstance(action, bytes):
        action = action.decode(errors="replace")
    if isinstance(action, str):
        text = action.strip()
        if not text:
            raise ActionError("empty action; " + _expected())
        try:
            action = json.loads(text)
        except json.JSONDecodeError as e:
            raise ActionError(
                f"the action is not valid JSON ({e.msg} at char {e.pos}); " + _expected()
            ) from None
    if not isinstance(action, dict):
        raise ActionError(
            f"the action must be a JSON object, got {type(action).__name__}; " + _expected()
        )
    name = action.get("tool", action.get("name"))
    args = action.get("args", action.get("arguments", {}))
    if isinstance(args, str):  # OpenAI-style arguments string
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as e:
            raise ActionError(f"args is a string that is not valid JSON ({e.msg})") from None
    if not isinstance(name, str):
        raise ActionError('missing "tool": ' + _expected())
    if name not in names:
        raise ActionError(f"unknown tool {name!r}; available tools: {', '.join(names)}")
    if not isinstance(args, dict):
        raise ActionError(f'"args" must be an object, got {type(args).__name__}')
    try:
        return name, arg_model(name, names, select).model_validate(args)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'args'}: "
            + ("unknown argument" if err["type"] == "extra_forbidden" else err["msg"])
            for err in e.errors()
        )
        raise ActionError(
            f"bad arguments for {name}: {problems}\n{usage(names, only=name, select=select)}"
        ) from None


def _expected() -> str:
    return 'expected {"tool": NAME, "args": {...}}, e.g. {"tool": "view", "args": {"path": "."}}'


def parse_short_form(line: str) -> dict:
    """`tool key=value ...` (what a person types in `mlsbench play`) -> an action dict.
    Values that parse as JSON (numbers, true, quoted strings) are taken as such."""
    parts = shlex.split(line)
    if not parts:
        raise ActionError("empty input; type e.g. `view path=optimizer.py` or a JSON action")
    args = {}
    for p in parts[1:]:
        if "=" not in p:
            raise ActionError(f"expected key=value, got {p!r}")
        k, v = p.split("=", 1)
        try:
            args[k] = json.loads(v)
        except json.JSONDecodeError:
            args[k] = v
    return {"tool": parts[0], "args": args}


def select_tools(competition: bool, subset: tuple[str, ...] | None, max_jobs: int) -> list[str]:
    """The tools of an episode: the configured subset, ``submit`` always, ``jobs`` with
    background tests; a competition's `test` is `validate`."""
    if competition:
        known = list(COMPETITION_TOOLS)
        names = ["validate" if n == "test" else n for n in (subset or COMPETITION_TOOLS)]
        if max_jobs:
            raise MLSBenchError("competitions have no background tests (max_jobs must be 0)")
    else:
        known = [*TOOLS, *OPT_IN_TOOLS]
        names = list(subset or TOOLS)
    for n in names:
        if n not in known:
            raise UnknownNameError("tool", n, known)
    if "submit" not in names:
        names.append("submit")
    if "jobs" in names and not max_jobs:
        raise MLSBenchError("the `jobs` tool needs max_jobs >= 1 (background tests at once)")
    if max_jobs and "test" in names and "jobs" not in names:
        names.append("jobs")
    return names
