"""Reproducible evaluation of prefectural support for municipal comprehensive support systems.

The names a researcher uses; everything else lives in the submodules.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["describe_panel", "discrete_time_hazard", "firth_logit", "fiscal_year_report", "load_panel", "trends_report"]


def __getattr__(name: str):
    """Lazy imports: `import analysis` stays light for the runner and the command line."""
    if name in ("load_panel", "describe_panel"):
        from . import panel

        return getattr(panel, name)
    if name in ("firth_logit", "discrete_time_hazard"):
        from . import models

        return getattr(models, name)
    if name in ("fiscal_year_report", "trends_report"):
        from . import report

        return getattr(report, name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
