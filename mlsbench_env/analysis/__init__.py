"""The analysis layer: what happens to episodes after they ran.

- ``report``: the leaderboard of a results store (grouping, points, comparability fingerprint);
  ``stats``: its statistics; ``render``: terminal tables, ``index.html`` and CSV/JSON files;
  ``plots``: its matplotlib figures.
- ``export``: episodes as fine-tuning datasets (``mlsbench export``).
- ``rescore``: a finished run scored again against today's task and anchors.
- ``calibration``: baselines run to validate a task and measure its anchors; ``health``:
  whether those anchors rank the baselines (standard errors of paired differences); ``drift``:
  whether this machine reproduces them (the reference and the default replayed on one seed).

The report's names are importable from here; they load on first use, because scipy.stats
alone takes a second to import and most commands never build a report.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Report": "report",
    "build_report": "report",
    "comparable": "report",
    "current_hashes": "report",
    "fingerprint": "report",
    "points": "report",
    "report_from_store": "report",
    "mean_ci": "stats",
    "sign_test": "stats",
    "render_html": "render",
    "render_terminal": "render",
    "write_report": "render",
    "write_plots": "plots",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY)
