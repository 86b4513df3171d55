import pytest

from mlsbench_env.evaluation.policy import check_source
from mlsbench_env.spec import Policy

SRC = """import numpy as np

def fixed():
    import os
    return os.getcwd()

def editable(x):
{body}
"""


def violations(body: str, policy: Policy | None = None) -> list[str]:
    src = SRC.format(body="\n".join("    " + line for line in body.splitlines()))
    n = len(src.splitlines())
    return check_source(src, [(8, n)], policy or Policy(imports=("numpy", "math")))


def test_clean_code_and_fixed_lines_pass():
    assert violations("import math\nreturn np.sort(x) * math.pi + getattr(x, 'size', 0)") == []


@pytest.mark.parametrize(
    "body,rule",
    [
        ("import os", "import of 'os'"),
        ("import gc", "import of 'gc'"),
        ("from inspect import stack", "import of 'inspect'"),
        ("return open('/etc/passwd').read()", "file I/O"),
        ("return np.load('x.npy')", "file I/O"),
        ("return eval('1+1')", "eval()"),
        ("return x.__class__.__subclasses__()", "'__class__'"),
        ("return fixed.__globals__", "'__globals__'"),
        ("return __builtins__", "__builtins__"),
        ("import sys\nsys.modules['numpy'] = None", "import of 'sys'"),
        ("return np.f2py.os.environ", ".f2py"),
        ("from numpy import f2py", "import of 'numpy.f2py'"),
        ("import numpy.f2py", "import of 'numpy.f2py'"),
        ("return np.fromregex('x', 'y', float)", "file I/O"),
        ("return getattr(np, 'f' + '2py')", "computed attribute name"),
        ("return getattr(x, '__class__')", "'__class__'"),
        ("return np.ctypeslib.load_library('libc', '/')", ".ctypeslib"),
        ("return np.lib.format.open_memmap('x')", "file I/O"),
        ("return np.lib.npyio.NpzFile('w.npz')", "file I/O"),
        ("import torch\nreturn torch.from_file('v.txt', size=9)", "file I/O"),
        ("np.random.seed = len", "attribute of imported 'np'"),
        ("import torch\ntorch.optim.Adam.step = len", "attribute of imported 'torch'"),
        ("np.pi += 1", "attribute of imported 'np'"),
    ],
)
def test_each_rule_names_itself(body, rule):
    found = violations(body)
    assert any(rule in f for f in found), found


def test_io_allowed_when_the_task_says_so():
    assert violations("return open('x').read()", Policy(imports=("numpy",), allow_io=True)) == []


def test_syntax_error_is_reported_with_line():
    assert "syntax error" in violations("return (")[0]


@pytest.mark.parametrize(
    "body",
    [
        "run = exec\nrun('x = 1')",  # an alias
        "[exec][0]('x = 1')",  # a list element
        "def f(run=exec):\n    return run('x = 1')",  # a default argument
        "class A:\n    run = exec",  # a class attribute
        "run = staticmethod(exec)",
        "g = getattr\nreturn g(x, 'shape')",  # an aliased getattr
        "return (getattr,)[0](x, 'shape')",
        "load = open",  # no file I/O in this task
        "return {'k': compile}",
    ],
)
def test_forbidden_builtins_bound_to_another_name_are_violations(body):
    """A reference to a forbidden builtin (not only a call by its own name) is a violation:
    aliased, it would be called where no call check sees it."""
    assert any("a reference to" in v for v in violations(body)), violations(body)


@pytest.mark.parametrize("name", ["__class__", "__globals__", "__subclasses__", "__dict__"])
def test_dunder_names_in_strings_are_violations(name):
    assert any("dunder name in a string" in v for v in violations(f"key = 'a{name}'"))
    assert violations("if __name__ == '__main__':\n    pass") == []


def test_a_tasks_forbidden_names_are_violations_with_their_reason():
    from mlsbench_env.spec import ForbiddenNames

    policy = Policy(
        imports=("numpy", "math", "torch"),
        forbidden_names=(
            ForbiddenNames(names=("optim", "register_hook"), reason="no training outside"),
        ),
    )
    for body in (
        "opt = torch.optim.SGD([], lr=0.1)",
        "from torch import optim",
        "import torch.optim",
        "h = x.register_hook",
        "optim = 3",
    ):
        found = violations(body, policy)
        assert any("'optim'" in v or "'register_hook'" in v for v in found), (body, found)
        assert any("no training outside" in v for v in found), found
    assert violations("y = torch.no_grad", policy) == []  # only the names themselves
    assert violations("y = torch.zeros(3)", policy) == []
