"""What a setting's command asks for: the setting, and the run's seed."""

from __future__ import annotations

import argparse
import json
import os

from .secrets import read_secret


def run_seed() -> int:
    """The run's seed (``MLSBENCH_SEED``; 0 in a run by hand)."""
    return int(os.environ.get("MLSBENCH_SEED", "0"))


def setting_spec(
    named: dict, option: str = "--setting", argv: list[str] | None = None, **extra
) -> tuple[str, dict, argparse.Namespace]:
    """The setting a command names: ``option NAME`` (a key of ``named``) or ``--spec FILE``, a
    setting kept back whose JSON comes over the secrets channel at the final evaluation (the
    file itself in a run by hand). Returns (NAME or FILE's name, a copy of its spec, the parsed
    arguments); ``extra`` adds options: ``{"--dim": dict(type=int)}``."""
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument(option, choices=sorted(named))
    g.add_argument("--spec")
    for flag, kwargs in extra.items():
        ap.add_argument(flag, **kwargs)
    args = ap.parse_args(argv)
    chosen = getattr(args, option.lstrip("-").replace("-", "_"))
    if chosen is not None:
        return chosen, dict(named[chosen]), args
    name = os.path.basename(args.spec)
    text = read_secret(name)
    if text is None:
        with open(args.spec) as f:
            text = f.read()
    return name, json.loads(text), args
