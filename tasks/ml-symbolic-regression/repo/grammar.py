"""The expression grammar (fixed): what a search may return and ask the harness to evaluate.

An expression is a string of tokens in prefix (Polish) notation, separated by spaces:

    add mul x0 x0 sin x1          means  x0 * x0 + sin(x1)

Functions (the Nguyen / Koza function set): add, sub, mul, div (two arguments), sin, cos, exp,
log (one argument). Terminals: the variables x0 .. x{d-1} and numeric constants (a finite float
literal such as 2, -0.5 or 1e-3, |c| <= 1e6). At most MAX_TOKENS tokens. The protected
operators (Koza 1992) that the harness evaluates: div(a, b) = 1 where |b| < 1e-9, log(a) =
log|a| (0 where |a| < 1e-9), exp(a) = exp(min(a, 50)). The harness parses the text with
`parse` and evaluates it itself; nothing a search returns is run as Python.
"""

from __future__ import annotations

import math

ARITY = {"add": 2, "sub": 2, "mul": 2, "div": 2, "sin": 1, "cos": 1, "exp": 1, "log": 1}
FUNCTIONS = tuple(ARITY)
MAX_TOKENS = 200
MAX_CONST = 1e6


def is_variable(token: str, n_vars: int) -> bool:
    return token[:1] == "x" and token[1:].isdigit() and int(token[1:]) < n_vars


def constant(token: str) -> float | None:
    """The token's value if it is a constant, else None."""
    try:
        value = float(token)
    except ValueError:
        return None
    if not math.isfinite(value) or abs(value) > MAX_CONST:
        return None
    return value


def parse(text, n_vars: int) -> list[str]:
    """The tokens of ``text`` after checking they form one expression over x0..x{n_vars-1};
    ValueError saying what is wrong otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"an expression must be a string, got {type(text).__name__}")
    tokens = text.split()
    if not tokens:
        raise ValueError("an empty expression")
    if len(tokens) > MAX_TOKENS:
        raise ValueError(f"an expression of {len(tokens)} tokens; at most {MAX_TOKENS}")
    need = 1
    for i, tok in enumerate(tokens):
        if need == 0:
            raise ValueError(f"tokens left over after a complete expression at {i}: {tok!r}")
        if tok in ARITY:
            need += ARITY[tok] - 1
        elif is_variable(tok, n_vars) or constant(tok) is not None:
            need -= 1
        else:
            raise ValueError(
                f"unknown token {tok!r} at {i}: expected one of {', '.join(FUNCTIONS)}, "
                f"x0..x{n_vars - 1} or a finite constant with |c| <= {MAX_CONST:g}"
            )
    if need:
        raise ValueError(f"an incomplete expression: {need} argument(s) missing at the end")
    return tokens


def to_infix(tokens: list[str]) -> str:
    """A readable infix form of a parsed expression (for logs)."""

    def walk(i: int) -> tuple[str, int]:
        tok = tokens[i]
        if tok not in ARITY:
            return tok, i + 1
        if ARITY[tok] == 1:
            a, j = walk(i + 1)
            return f"{tok}({a})", j
        a, j = walk(i + 1)
        b, k = walk(j)
        op = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[tok]
        return f"({a} {op} {b})", k

    return walk(0)[0]
