"""Static check of editable code before it runs (the task's ``policy``).

Agent code runs next to the fixed harness, so it must not import what the task does not allow,
introspect or patch the harness (``gc``, ``inspect``, frames, ``sys.modules``, dunder
attributes), or do file/network I/O unless the task allows it. Only nodes on editable lines are
checked; the fixed code around them is trusted.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from mlsbench_env.spec import Policy

FORBIDDEN_CALLS = {
    "exec",
    "eval",
    "compile",
    "__import__",
    "globals",
    "locals",
    "vars",
    "breakpoint",
    "input",
    "memoryview",
    "setattr",
    "delattr",
}
IO_CALLS = {"open"}
# attributes of allowed modules that read or write files
IO_ATTRIBUTES = {
    "load",
    "save",
    "savez",
    "savez_compressed",
    "loadtxt",
    "savetxt",
    "genfromtxt",
    "fromfile",
    "tofile",
    "memmap",
    "open",
    "DataSource",
    "read_csv",
    "to_csv",
}
ALLOWED_DUNDERS = {
    "__init__",
    "__call__",
    "__name__",
    "__len__",
    "__getitem__",
    "__iter__",
    "__next__",
    "__repr__",
    "__str__",
    "__enter__",
    "__exit__",
}


def check_source(
    source: str, lines: Iterable[tuple[int, int]], policy: Policy, filename: str = "<editable>"
) -> list[str]:
    """Violations in ``source`` on the given 1-based inclusive line ranges, as messages."""
    spans = list(lines)
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as e:
        return [f"{filename}:{e.lineno}: syntax error: {e.msg}"]
    allowed = set(policy.imports)
    out = []

    def editable(node: ast.AST) -> bool:
        n = getattr(node, "lineno", None)
        return n is not None and any(a <= n <= b for a, b in spans)

    def bad(node: ast.AST, rule: str) -> None:
        out.append(f"{filename}:{node.lineno}: {rule}")

    for node in ast.walk(tree):
        if not editable(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom) and node.level:
                names = [node.module or "."]
            else:
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
            for name in names:
                if name.split(".")[0] not in allowed:
                    bad(
                        node,
                        f"import of {name!r} is not allowed (allowed: "
                        f"{', '.join(sorted(allowed))})",
                    )
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in FORBIDDEN_CALLS:
                bad(
                    node,
                    f"call of {node.func.id}() is not allowed (no dynamic code or introspection)",
                )
            elif node.func.id in IO_CALLS and not policy.allow_io:
                bad(node, f"{node.func.id}() is not allowed: this task allows no file I/O")
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("__") and node.attr not in ALLOWED_DUNDERS:
                bad(
                    node,
                    f"access to {node.attr!r} is not allowed (no introspection of the harness)",
                )
            elif node.attr in IO_ATTRIBUTES and not policy.allow_io:
                bad(node, f".{node.attr} is not allowed: this task allows no file I/O")
            elif node.attr in {
                "f_back",
                "f_globals",
                "f_locals",
                "gi_frame",
                "tb_frame",
                "modules",
            }:
                bad(node, f"access to .{node.attr} is not allowed (no frame or module patching)")
        elif isinstance(node, ast.Name) and node.id in {"__builtins__", "__loader__", "__spec__"}:
            bad(node, f"use of {node.id} is not allowed")
    return out
