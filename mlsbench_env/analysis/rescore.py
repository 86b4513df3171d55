"""``mlsbench rescore``: re-run the final evaluation of recorded submissions on today's task.

The submitted code is read from the episode's trajectory: the end record holds the editable
regions of the current code and of every test's code, and the submit action says which was
submitted. Trajectories written before the regions were recorded fall back to the end record's
``diff``, applied to today's scaffold. The regions are transplanted into today's pristine
scaffold (``final_evaluation``), so a score survives a task or anchor update, and a suspicious
score can be re-checked.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from mlsbench_env.env.log import read_log
from mlsbench_env.errors import MLSBenchError

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def trajectory_path(run: str | Path) -> Path:
    p = Path(run)
    path = p / "trajectory.jsonl" if p.is_dir() else p
    if not path.is_file():
        raise MLSBenchError(f"{run}: not a run folder or trajectory.jsonl")
    return path


def submitted_code(records: list[dict], task=None) -> tuple[dict, dict, str]:
    """(regions {(file, index): text}, created files, what) of the episode's submission."""
    header = records[0] if records and records[0].get("type") == "header" else {}
    end = next((r for r in records if r.get("type") == "end"), None)
    if end is None:
        raise MLSBenchError("the episode has no end record (it was killed or is still running)")
    steps = [r for r in records if r.get("type") == "step"]
    last = steps[-1] if steps else {}
    test = None
    if end.get("selected_test"):  # a protocol preset's submit selected this test's result
        test = end["selected_test"]
    elif end.get("status") == "submitted":
        action = last.get("action")
        if isinstance(action, str):
            try:
                action = json.loads(action)
            except json.JSONDecodeError:
                action = {}
        args = (action or {}).get("args") or {}
        if isinstance(args, str):
            args = json.loads(args or "{}")
        test = args.get("test")
    elif end.get("status") == "truncated" and (header.get("config") or {}).get(
        "submit_on_truncation"
    ):
        test = len(end.get("test_code") or []) or None  # the last test, else the current code
    else:
        raise MLSBenchError(f"nothing was submitted (episode status {end.get('status')!r})")
    if test is not None:
        chosen = next((t for t in end.get("test_code") or [] if t["n"] == test), None)
        if chosen is None:
            raise MLSBenchError(f"the trajectory does not record the code of test {test}")
        return _regions(chosen["regions"]), chosen["created"], f"test {test}"
    if "code" in end:
        return _regions(end["code"]["regions"]), end["code"]["created"], "the current code"
    if task is None:
        raise MLSBenchError("an old trajectory: the task is needed to apply its diff")
    regions, created = regions_from_diff(task, end.get("diff") or "")
    return regions, created, "the current code (from the recorded diff)"


def _regions(items) -> dict[tuple[str, int], str]:
    return {(f, int(i)): text for f, i, text in items}


def regions_from_diff(task, diff: str) -> tuple[dict, dict]:
    """Apply a recorded unified diff to today's scaffold; the resulting region texts (every
    region; unchanged ones keep today's text) and created files. A hunk is found by its
    content near its recorded line (like ``patch``), so a shifted scaffold still works."""
    files = _parse_diff(diff)
    created: dict[str, str] = {}
    by_file: dict[str, list] = {}
    for r in task.regions:
        by_file.setdefault(r.file, []).append(r)
    regions = {}
    for rel, hunks in files.items():
        if rel not in by_file:
            if not all(ln.startswith("+") for _, body in hunks for ln in body):
                raise MLSBenchError(f"the diff changes {rel}, which has no editable region today")
            created[rel] = "".join(ln[1:] for _, body in hunks for ln in body)
            continue
        old = (task.repo / rel).read_text().splitlines(keepends=True)
        new, where = _apply(old, hunks, rel)
        for r in by_file[rel]:
            try:
                start = where[r.start - 2] + 1 if r.start > 1 else 0
                end = where[r.end] if r.end < len(old) else len(new)
            except KeyError:
                raise MLSBenchError(f"the recorded diff of {rel} changes fixed lines") from None
            regions[(rel, r.index)] = "".join(new[start:end])
    for rel, rs in by_file.items():
        if rel not in files:
            lines = (task.repo / rel).read_text().splitlines(keepends=True)
            for r in rs:
                regions[(rel, r.index)] = "".join(lines[r.start - 1 : r.end])
    return regions, created


def _parse_diff(diff: str) -> dict[str, list]:
    """{file: [[old start line, [hunk lines]], ...]}; hunk bodies are read by their counts, so
    a changed line that itself starts with ``--`` or ``++`` is not taken for a file header."""
    files: dict[str, list] = {}
    lines = diff.splitlines(keepends=True)
    i, current = 0, None
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("+++ "):
            current = line[4:].strip().removeprefix("b/")
            files.setdefault(current, [])
        elif (m := _HUNK.match(line)) and current is not None:
            n_old = int(m.group(2)) if m.group(2) is not None else 1
            n_new = int(m.group(4)) if m.group(4) is not None else 1
            body = []
            while (n_old > 0 or n_new > 0) and i < len(lines):
                ln = lines[i]
                i += 1
                if ln.startswith("\\"):  # "\ No newline at end of file"
                    continue
                body.append(ln)
                n_old -= ln[:1] in (" ", "-")
                n_new -= ln[:1] in (" ", "+")
            files[current].append([int(m.group(1)), body])
    return files


def _apply(old: list[str], hunks: list, rel: str) -> tuple[list[str], dict[int, int]]:
    """The patched lines and, for each kept old line (0-based), its index in them."""
    new: list[str] = []
    where: dict[int, int] = {}
    pos = 0
    for start, body in hunks:
        want = [ln[1:] for ln in body if ln[:1] in (" ", "-")]
        at = _find(old, want, start - 1, pos)
        if at is None:
            raise MLSBenchError(f"the recorded diff of {rel} does not apply to today's scaffold")
        for i in range(pos, at):
            where[i] = len(new)
            new.append(old[i])
        pos = at
        for ln in body:
            if ln[:1] == " ":
                where[pos] = len(new)
                new.append(old[pos])
                pos += 1
            elif ln[:1] == "-":
                pos += 1
            else:
                new.append(ln[1:])
    for i in range(pos, len(old)):
        where[i] = len(new)
        new.append(old[i])
    return new, where


def _find(old: list[str], want: list[str], guess: int, lo: int) -> int | None:
    def fits(i):
        return old[i : i + len(want)] == want

    for delta in range(len(old) + 1):
        for i in (guess - delta, guess + delta):
            if lo <= i <= len(old) - len(want) and fits(i):
                return i
    return None


def rescore_run(
    run: str | Path,
    *,
    seeds: list[int] | None = None,
    backend: str | None = None,
    tasks_dir: str | Path | None = None,
):
    """Re-evaluate one recorded episode on today's task; a dict with old and new scores.
    The task is the recorded id among the shipped tasks, or ``tasks_dir/<id>`` if given."""
    from mlsbench_env.evaluation import final_evaluation
    from mlsbench_env.spec import load_task

    path = trajectory_path(run)
    records = read_log(path)
    header = records[0] if records and records[0].get("type") == "header" else {}
    end = next((r for r in records if r.get("type") == "end"), {})
    out = {
        "trajectory": str(path.parent),
        "time": time.time(),
        "task": header.get("task"),
        "agent": header.get("agent"),
        "seed": header.get("seed"),
        "old_score": end.get("score"),
        "task_hash_then": header.get("task_hash"),
        "anchors_hash_then": header.get("anchors_hash"),
    }
    try:
        tid = header.get("task") or ""
        task = load_task(Path(tasks_dir) / tid if tasks_dir else tid)
        # uncached: Task.content_hash is cached per process, and the files may have changed
        fresh = type(task).content_hash.__wrapped__
        out["task_hash_now"] = fresh(task)
        if (task.root / "anchors.json").exists():
            out["anchors_hash_now"] = fresh(task, "anchors.json")
        regions, created, _what = submitted_code(records, task)
        today = {(r.file, r.index) for r in task.regions}
        if set(regions) != today:
            raise MLSBenchError(
                f"the task's editable regions changed (recorded {sorted(regions)}, today "
                f"{sorted(today)}); this submission cannot be carried over"
            )
        config = header.get("config") or {}
        seeds = seeds or end.get("seeds") or config.get("final_seeds")
        result = final_evaluation(
            task,
            regions,
            created,
            backend=backend or config.get("sandbox") or "local",
            seeds=list(seeds) if seeds else None,
        )
    except MLSBenchError as e:
        return {**out, "new_score": None, "error": str(e)}
    return {
        **out,
        "new_score": result.score,
        "new_spread": result.spread,
        "setting_scores": result.setting_scores,
        "seeds": sorted(result.seed_scores),
        "error": result.reason,
    }
