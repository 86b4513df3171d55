"""The trusted command executor that lives inside a sandbox, and how it gets there.

The executor is a standard-library-only program split into the modules of this folder
(``syscalls``, ``mounts``, ``commands``, ``main``). It runs under the sandbox's own interpreter
(``python -I -S``) where none of mlsbench is importable, so the host ships it as one program
text, ``program()``: a few lines that install these modules from their sources and call
``main.main()``. Nothing in the program names a folder of the host. The `local` backend hands
it over by descriptor, the `docker` backend as the ``-c`` argument of the container's PID 1.
This ``__init__`` is the host's side and is not shipped.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

HERE = Path(__file__).parent
PACKAGE = "mlsbench_executor"
MODULES = ("syscalls", "mounts", "commands", "main")
"""The shipped modules, each after those it imports."""

_LOADER = """
import sys
package = type(sys)(PACKAGE)
package.__path__ = []
sys.modules[PACKAGE] = package
for name, source in SOURCES:
    module = type(sys)(PACKAGE + "." + name)
    module.__package__ = PACKAGE
    sys.modules[module.__name__] = module
    exec(compile(source, "<executor/" + name + ".py>", "exec"), module.__dict__)
sys.modules[PACKAGE + ".main"].main()
"""


@cache
def program() -> str:
    """The executor as one Python program (for ``python -I -S -c`` or a script descriptor)."""
    sources = tuple((name, (HERE / f"{name}.py").read_text()) for name in MODULES)
    return f"PACKAGE = {PACKAGE!r}\nSOURCES = {sources!r}\n{_LOADER}"
