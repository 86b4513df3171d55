"""Protocol presets: named sets of episode rules (``gym.make(id, protocol=NAME)``), so that a
run can follow MLS-Bench's published harness instead of ours. One table, ``PROTOCOLS``; the
env, the CLI and the records read a preset from here and nowhere else.

``default`` is ours (docs/protocols.md says why): every action costs a step, `test` runs the
visible settings on the dev seed, `submit` re-runs a pristine final evaluation. The MLS-Bench
presets count only editing actions as steps (``mlsbench-lite``: every action), run a test's
settings hidden ones included (shown only at submit), all final seeds on the first test and one
seed after, and `submit(n)` selects test n's recorded result instead of re-running anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlsbench_env.errors import MLSBenchError, UnknownNameError

DEFAULT = "default"


@dataclass(frozen=True)
class Protocol:
    """The rules a preset fixes. ``None`` leaves the option to the caller (or the task)."""

    name: str
    summary: str
    tools: tuple[str, ...] | None = None
    max_steps: int | None = None
    """Steps per episode; which actions spend one is ``counted_tools``."""
    counted_tools: tuple[str, ...] | None = None
    """Tools whose calls spend a step (None: every action, a malformed one included)."""
    max_actions: int | None = None
    """All actions, counted or not (only where ``counted_tools`` is set): an episode ends."""
    test_budget: int | None = None
    compute_budget: bool = True
    """False: no compute budget (per-run timeouts only, as in MLS-Bench)."""
    require_iteration: bool = False
    """`submit` is refused until a test, then an edit, then another test."""
    select_tests: bool = False
    """Tests run every setting (hidden ones shown only at submit), all final seeds on the first
    test and one after; `submit(n)` selects test n's result (default: the last test); when the
    test budget runs out the last test is submitted."""

    @property
    def fixed(self) -> dict[str, Any]:
        """The env options this preset fixes, with their values."""
        out: dict[str, Any] = {}
        for key in ("tools", "max_steps", "test_budget"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.select_tests:
            out["max_jobs"] = 0  # no background tests in MLS-Bench's harness
            # its rigorous-codebase prompt shows the baselines' editable regions
            out["show_baseline_code"] = True
        return out

    def counts(self, tool: str | None) -> bool:
        """Whether a call of ``tool`` (None: a malformed action) spends a step."""
        return self.counted_tools is None or tool in self.counted_tools

    def test_seeds(self, tests_started: int, final_seeds: list[int]) -> list[int]:
        """The seeds of test number ``tests_started`` (1-based) under ``select_tests``."""
        return list(final_seeds) if tests_started <= 1 else [final_seeds[0]]

    def prompt_note(self) -> str:
        """What the agent must know about these rules (empty for ours: the prompt says it)."""
        if self.name == DEFAULT:
            return ""
        steps = (
            f"{self.max_steps} actions in all"
            if self.counted_tools is None
            else f"{self.max_steps} editing steps (only {', '.join(self.counted_tools)} "
            f"count; at most {self.max_actions} actions in all)"
        )
        lines = [
            f"## Protocol: {self.name}",
            f"- Budget: {steps}; {self.test_budget} test(s); no compute budget (each run has "
            "its timeout).",
            "- `test` runs every setting; it shows only the visible ones. The first test runs "
            "every final seed, later tests one seed.",
            "- `submit` with `test: n` makes test n's result final without re-running it "
            "(default: the last test); its output then shows every setting. When the tests "
            "run out, the last test is submitted automatically.",
        ]
        if self.require_iteration:
            lines.append(
                "- Iterate before submitting: `submit` is refused until you have run a test, "
                "edited the code, and run another test."
            )
        return "\n".join(lines)


_MLS_TOOLS = ("edit", "undo", "test", "submit")

PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(DEFAULT, "ours: every action a step, dev-seed tests, pristine final re-run"),
        Protocol(
            "mlsbench-paper",
            "MLS-Bench's main protocol: 20 edit/undo steps, 3 tests, required iteration",
            tools=_MLS_TOOLS,
            max_steps=20,
            counted_tools=("edit", "undo"),
            max_actions=60,
            test_budget=3,
            compute_budget=False,
            require_iteration=True,
            select_tests=True,
        ),
        Protocol(
            "mlsbench-lite",
            "MLS-Bench-Lite's protocol: 8 actions in all, 1 test",
            tools=_MLS_TOOLS,
            max_steps=8,
            test_budget=1,
            compute_budget=False,
            select_tests=True,
        ),
        Protocol(
            "mlsbench-v3",
            "mlsbench-paper plus a file viewer and a string-replace edit",
            tools=("view", "edit", "replace", "undo", "test", "submit"),
            max_steps=20,
            counted_tools=("edit", "replace", "undo"),
            max_actions=60,
            test_budget=3,
            compute_budget=False,
            require_iteration=True,
            select_tests=True,
        ),
    )
}


def get_protocol(name: str | None) -> Protocol:
    """The preset ``name`` (None: ``default``); an unknown name lists the presets."""
    if name is None:
        return PROTOCOLS[DEFAULT]
    if name not in PROTOCOLS:
        raise UnknownNameError("protocol", name, list(PROTOCOLS), "See docs/protocols.md.")
    return PROTOCOLS[name]


def apply_protocol(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` (the env's, as given) with the preset's fixed values filled in; an option
    the caller set to another value than the preset fixes is refused, naming both."""
    p = get_protocol(options.get("protocol"))
    out = dict(options)
    for key, value in p.fixed.items():
        given = out.get(key)
        if given is not None and _same(given) != _same(value):
            raise MLSBenchError(
                f"protocol {p.name!r} fixes {key}={_show(value)}, but {key}={_show(given)} was "
                f"also given; drop {key} or use protocol='default' to set it yourself"
            )
        out[key] = value
    if not p.compute_budget and out.get("compute_budget_s") is not None:
        raise MLSBenchError(
            f"protocol {p.name!r} has no compute budget (each run has its timeout), but "
            f"compute_budget_s={out['compute_budget_s']} was also given; drop compute_budget_s"
        )
    return out


def with_agent_defaults(options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The caller's ``options`` completed by an agent's ``defaults`` (its YAML's tool subset,
    observation cap, protocol): the caller's values win, and a default the chosen preset fixes
    is dropped (the preset's tool list replaces the agent's)."""
    out = dict(options)
    if out.get("protocol") is None and defaults.get("protocol") is not None:
        out["protocol"] = defaults["protocol"]
    fixed = get_protocol(out.get("protocol")).fixed
    for key, value in defaults.items():
        if key not in fixed:
            out.setdefault(key, value)
    return out


def iterated(marks: str) -> bool:
    """Whether the episode's marks (T: a test, E: an edit) hold a test, an edit, a test."""
    return re.search("T.*E.*T", marks) is not None


def _same(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


def _show(value: Any) -> str:
    return ",".join(value) if isinstance(value, list | tuple) else str(value)
