"""Episodes -> fine-tuning data: ``mlsbench export --format FORMAT RUN_DIR... -o OUT``.

Reads each run's ``trajectory.jsonl`` and writes ``OUT/episodes.jsonl`` (one episode a line) and
``OUT/README.md`` (a dataset card). Both load with ``datasets.load_dataset("json", ...)``.

Formats:

- ``chat-jsonl``: ``messages`` (system / user / assistant with ``tool_calls`` / tool), ``tools``
  (OpenAI function schemas), the episode's ``reward``, ``score``, ``status`` and metadata, and
  ``steps`` (per-step tool, ok, reward, flags and ``info`` as JSON text, so that rows of
  different tasks share one schema). Where the model server returned token ids and logprobs,
  assistant messages carry ``token_ids`` / ``logprobs`` and the episode a ``tokens`` record
  (``input_ids``, ``loss_mask`` = 1 on assistant tokens, ``logprobs``) for RL trainers.
- ``openai-tools``: exactly OpenAI's chat fine-tuning format with tools (``messages``,
  ``tools``, ``parallel_tool_calls``); nothing else on the line.
- ``sharegpt``: ``conversations`` of ``human`` / ``gpt`` / ``function_call`` / ``observation``
  turns with ``system`` and ``tools`` (JSON text), as LLaMA-Factory reads them, plus ``reward``
  and ``score``.

Conversations are rebuilt as the model saw them (``trajectories``); the formats are written by
``formats``. A branch restored from a snapshot (``restore`` record) follows the snapshot's own
history, so each branch exports as a whole episode.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlsbench_env.analysis.formats import WRITERS, token_record
from mlsbench_env.analysis.trajectories import Episode, find_runs, load_episode, redact_final
from mlsbench_env.errors import MLSBenchError

FORMATS = tuple(WRITERS)


@dataclass
class Filters:
    min_score: float | None = None
    tasks: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ("submitted", "truncated")

    def keep(self, ep: Episode) -> str | None:
        """None to keep ``ep``, else why it is left out."""
        if self.statuses and ep.status not in self.statuses:
            return f"status {ep.status}"
        if self.tasks and ep.task not in self.tasks:
            return "task"
        if self.agents and ep.agent not in self.agents:
            return "agent"
        if self.min_score is not None and (ep.score is None or ep.score < self.min_score):
            return "score"
        return None


@dataclass
class ExportResult:
    out_dir: Path
    episodes: list[Episode]
    skipped: Counter
    data_file: Path
    card: Path


def export(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    fmt: str = "chat-jsonl",
    filters: Filters | None = None,
    redact: bool = False,
    command: str | None = None,
) -> ExportResult:
    if fmt not in WRITERS:
        from mlsbench_env.errors import UnknownNameError

        raise UnknownNameError("export format", fmt, list(WRITERS))
    filters = filters or Filters()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kept: list[Episode] = []
    skipped: Counter[str] = Counter()
    for run in find_runs(paths):
        try:
            ep = load_episode(run)
        except (MLSBenchError, OSError, KeyError, ValueError) as e:
            skipped[f"unreadable ({type(e).__name__})"] += 1
            continue
        why = filters.keep(ep)
        if why:
            skipped[why] += 1
            continue
        if redact:
            redact_final(ep)
        kept.append(ep)
    data = out / "episodes.jsonl"
    with Path(data).open("w", encoding="utf-8") as f:
        for ep in kept:
            f.write(json.dumps(WRITERS[fmt](ep), default=str) + "\n")
    card = out / "README.md"
    card.write_text(dataset_card(kept, skipped, fmt, filters, redact, command))
    return ExportResult(out, kept, skipped, data, card)


def dataset_card(
    eps: list[Episode],
    skipped: Counter,
    fmt: str,
    filters: Filters,
    redact: bool,
    command: str | None,
) -> str:
    from mlsbench_env import __version__

    scores = [e.score for e in eps if e.score is not None]
    by_task: dict[str, list[Episode]] = {}
    for e in eps:
        by_task.setdefault(e.task, []).append(e)
    stat = (
        f"mean {statistics.fmean(scores):.1f}, median {statistics.median(scores):.1f}, "
        f"min {min(scores):.1f}, max {max(scores):.1f}"
        if scores
        else "none scored"
    )
    rows = [
        f"| {t} | {len(es)} | "
        + ", ".join(sorted({e.agent for e in es}))
        + " | "
        + _mean([e.score for e in es])
        + " |"
        for t, es in sorted(by_task.items())
    ]
    traced = sum(1 for e in eps if token_record(e) is not None)
    command = command or f"mlsbench_env.analysis.export.export(..., fmt={fmt!r})"
    final_note = (
        "was replaced by its score (--redact-final)"
        if redact
        else "reports the final evaluation, which names the task's hidden settings; export "
        "with --redact-final before training an agent that will be evaluated on these tasks"
    )
    fields = {
        "chat-jsonl": "`messages` (OpenAI chat format with `tool_calls`; assistant messages carry "
        "`token_ids`/`logprobs` where recorded), `tools`, `reward` (the terminal reward), "
        "`return` (sum of step rewards), `score`, `vanilla_score`, `status`, `task`, "
        "`task_version`, `agent`, `model`, `seed`, `num_steps`, `tests_used`, `tamper_events`, "
        "`run_dir`, `branch_of`, `steps` (per step: `tool`, `ok`, `reward`, `terminated`, "
        "`truncated`, `info` as JSON text), `tokens` (`input_ids`, `loss_mask`, `logprobs`, "
        "or null).",
        "openai-tools": "`messages`, `tools`, `parallel_tool_calls`: OpenAI's chat fine-tuning "
        "format with function calling, nothing else (rewards are in the chat-jsonl export).",
        "sharegpt": "`conversations` (`human`, `gpt`, `function_call`, `observation`), `system`, "
        "`tools` (JSON text), `reward`, `score`, `task` (LLaMA-Factory's sharegpt layout; the "
        "text an assistant wrote next to a tool call is not kept).",
    }[fmt]
    return f"""---
configs:
- config_name: default
  data_files: episodes.jsonl
tags:
- mlsbench
- agent-trajectories
- tool-use
- reinforcement-learning
---

# mlsbench-env episodes ({fmt})

Episodes of AI research agents on mlsbench-env research tasks: each line is one episode, from
the task prompt through every tool call and observation to the final evaluation.

- Exported {time.strftime("%Y-%m-%d %H:%M")} by mlsbench-env {__version__}:
  `{command}`
- Episodes: {len(eps)} (skipped: {dict(skipped) or "none"})
- Filters: status in {list(filters.statuses) or "any"}, min score {filters.min_score},
  tasks {list(filters.tasks) or "any"}, agents {list(filters.agents) or "any"}
- Final scores (0..100; 50 = the strongest known baseline): {stat}
- Episodes with full token traces (token ids, logprobs, loss masks): {traced}

| task | episodes | agents | mean score |
|---|---|---|---|
{chr(10).join(rows) or "| (none) | 0 | | |"}

## Fields

{fields}

## Load

```python
from datasets import load_dataset

ds = load_dataset("json", data_files="episodes.jsonl", split="train")
```

## Notes

- The reward is the task's final score (x the env's reward_scale); a truncated episode without
  a final evaluation has reward 0. Dense shaping rewards, where an episode opted in, are in
  `return` and the per-step rewards.
- The final observation {final_note}.
- Observations are complete; an LLM agent may have seen older ones elided to fit its context.
"""


def _mean(xs: list[float | None]) -> str:
    vals = [x for x in xs if x is not None]
    return f"{statistics.fmean(vals):.1f}" if vals else "n/a"


__all__ = ["FORMATS", "ExportResult", "Filters", "dataset_card", "export"]
