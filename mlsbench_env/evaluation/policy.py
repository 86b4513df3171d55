"""Static check of editable code before it runs (the task's ``policy``).

Agent code runs next to the fixed harness, so it must not import what the task does not allow,
introspect or patch the harness (``gc``, ``inspect``, frames, ``sys.modules``, dunder
attributes), or do file/network I/O unless the task allows it. Only nodes on editable lines are
checked; the fixed code around them is trusted.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable

from mlsbench_env.spec import Policy

FORBIDDEN_CALLS = {
    "exec", "eval", "compile", "__import__", "globals", "locals", "vars", "breakpoint", "input",
    "memoryview", "setattr", "delattr",
}  # fmt: skip
NAME_LOOKUPS = {"getattr", "hasattr"}  # allowed only with a constant, allowed attribute name
IO_CALLS = {"open"}
# submodules reachable as attributes of allowed packages that lead to the OS or the harness
# (e.g. numpy.f2py.os.environ)
ESCAPE_ATTRIBUTES = {
    "os", "sys", "f2py", "subprocess", "ctypes", "ctypeslib", "builtins", "importlib",
    "environ", "system", "popen", "shutil", "pathlib", "socket", "gc", "inspect", "f_back",
    "f_globals", "f_locals", "gi_frame", "tb_frame",
}  # fmt: skip
# attributes of allowed modules that read or write files
IO_ATTRIBUTES = {
    "load", "save", "savez", "savez_compressed", "loadtxt", "savetxt", "genfromtxt", "fromfile",
    "tofile", "memmap", "open", "DataSource", "read_csv", "fromregex", "io", "open_memmap",
    "to_csv", "npyio", "NpzFile", "from_file",
}  # fmt: skip
ALLOWED_DUNDERS = {
    "__init__", "__call__", "__name__", "__len__", "__getitem__", "__iter__", "__next__",
    "__repr__", "__str__", "__enter__", "__exit__",
}  # fmt: skip
ALLOWED_DUNDER_STRINGS = ALLOWED_DUNDERS | {"__main__"}
DUNDER = re.compile(r"__[A-Za-z0-9_]+__")


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
    forbidden = {name: g.reason for g in policy.forbidden_names for name in g.names}
    out = []

    def bad(line: int, rule: str) -> None:
        out.append(f"{filename}:{line}: {rule}")

    def attribute_rule(attr: str) -> str | None:
        if attr.startswith("__") and attr not in ALLOWED_DUNDERS:
            return f"access to {attr!r} is not allowed (no introspection of the harness)"
        if attr in IO_ATTRIBUTES and not policy.allow_io:
            return f".{attr} is not allowed: this task allows no file I/O"
        if attr in ESCAPE_ATTRIBUTES:
            return f"access to .{attr} is not allowed (no OS, frame or module access)"
        return None

    # names bound by imports anywhere in the file: assigning to their attributes patches a
    # library or the harness for everyone (torch.optim.Adam.step = ..., harness.BUDGET = ...)
    modules = {
        (a.asname or a.name).split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }

    def patched(target: ast.AST) -> str | None:
        if not isinstance(target, ast.Attribute):
            return None
        root: ast.expr = target
        while isinstance(root, ast.Attribute):
            root = root.value
        return root.id if isinstance(root, ast.Name) and root.id in modules else None

    # a forbidden builtin may appear as the function of a call (checked there), nowhere else
    called_by_name = {
        id(n.func)
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    for node in ast.walk(tree):
        line = getattr(node, "lineno", None)
        if line is None or not any(a <= line <= b for a, b in spans):
            continue
        used = (
            [node.attr]
            if isinstance(node, ast.Attribute)
            else [node.id]
            if isinstance(node, ast.Name)
            else node.name.split(".")
            if isinstance(node, ast.alias)
            else []
        )
        for name in used:
            if name in forbidden:
                bad(line, f"{name!r} is not allowed in this task ({forbidden[name]})")
        targets = (
            node.targets
            if isinstance(node, ast.Assign | ast.Delete)
            else [node.target]
            if isinstance(node, ast.AugAssign | ast.AnnAssign)
            else []
        )
        for t in targets:
            if lib := patched(t):
                bad(
                    line,
                    f"assigning to an attribute of imported {lib!r} is not allowed "
                    "(no patching of libraries or the harness)",
                )
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom):
                base = "." if node.level else (node.module or "")
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                names = [a.name for a in node.names]
            for name in names:
                parts = [p for p in name.split(".") if p]
                if name == "." or (parts and parts[0] not in allowed):
                    bad(
                        line,
                        f"import of {name!r} is not allowed (allowed: "
                        f"{', '.join(sorted(allowed))})",
                    )
                    break
                rule = next(filter(None, map(attribute_rule, parts[1:])), None)
                if rule:
                    bad(line, f"import of {name!r} is not allowed: {rule}")
                    break
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            fn = node.func.id
            if fn in FORBIDDEN_CALLS:
                bad(line, f"call of {fn}() is not allowed (no dynamic code or introspection)")
            elif fn in IO_CALLS and not policy.allow_io:
                bad(line, f"{fn}() is not allowed: this task allows no file I/O")
            elif fn in NAME_LOOKUPS:
                arg = node.args[1] if len(node.args) > 1 else None
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                    bad(line, f"{fn}() with a computed attribute name is not allowed")
                elif rule := attribute_rule(arg.value):
                    bad(line, rule)
        elif isinstance(node, ast.Attribute) and (rule := attribute_rule(node.attr)):
            bad(line, rule)
        elif isinstance(node, ast.Name) and node.id in {"__builtins__", "__loader__", "__spec__"}:
            bad(line, f"use of {node.id} is not allowed")
        elif isinstance(node, ast.Name) and id(node) not in called_by_name:
            # any other reference to a forbidden builtin binds it to another name (an alias,
            # a list element, a default argument, staticmethod(exec)) that no call check sees
            if node.id in FORBIDDEN_CALLS or node.id in NAME_LOOKUPS:
                bad(
                    line,
                    f"a reference to {node.id} is not allowed (it could be called by another name)",
                )
            elif node.id in IO_CALLS and not policy.allow_io:
                bad(line, f"a reference to {node.id} is not allowed: this task allows no file I/O")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and any(d not in ALLOWED_DUNDER_STRINGS for d in DUNDER.findall(node.value))
        ):
            bad(line, "a dunder name in a string is not allowed (no introspection by name)")
    return out
