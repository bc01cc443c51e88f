"""Reproducible evaluation of prefectural support for municipal comprehensive support systems.

The names a researcher uses are listed in ``__all__``; everything else lives in the submodules,
which are internal unless their own docstring says otherwise (see CONTRIBUTING.md for the map).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the lazy names below, for type checkers and editors
    from .models import discrete_time_hazard, firth_logit
    from .panel import describe_panel, load_panel
    from .report import fiscal_year_report, trends_report
    from .runner import RunResults
    from .survey import read_survey

__version__ = "0.1.0"

__all__ = [
    "describe_panel",
    "discrete_time_hazard",
    "firth_logit",
    "fiscal_year_report",
    "load_panel",
    "read_survey",
    "run",
    "trends_report",
]

_LAZY = {
    "load_panel": "panel",
    "describe_panel": "panel",
    "firth_logit": "models",
    "discrete_time_hazard": "models",
    "fiscal_year_report": "report",
    "trends_report": "report",
    "read_survey": "survey",
}


def __getattr__(name: str) -> Any:
    """Lazy imports: `import analysis` stays light for the runner and the command line."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


def run(
    dataset: str = "sample",
    years: str | list[int] | None = None,
    *,
    jobs: int | None = None,
    force: bool = False,
    exposure_lag: int = 0,
    progress: bool = False,
    root: str | Path | None = None,
    **options: Any,
) -> RunResults:
    """Run the reports of a dataset, as ``python -m analysis run`` does, from Python.

    Runs the fiscal-year, data-quality and trends notebooks (papermill, in parallel worker
    processes), exports their HTML, writes the manifests and rebuilds the index under
    ``reports/<dataset>/``. A report whose inputs, code and parameters have not changed since
    its manifest is skipped. A failing report does not stop the others: look at each result's
    ``status``. This is `analysis.runner.run` with a Python-friendly default (no progress bar)
    and an optional project folder.

    Parameters
    ----------
    dataset : str, default "sample"
        Name of a dataset under ``data/raw/``.
    years : str or list of int, optional
        Fiscal years, e.g. ``"2021-2025"``, ``"2024,2025"`` or ``[2025]``; by default all.
    jobs : int, optional
        Parallel notebook processes; by default the number of CPUs.
    force : bool, default False
        Re-run reports that are up to date.
    exposure_lag : {0, 1}, default 0
        Support measured in the same fiscal year (0) or the previous one (1).
    progress : bool, default False
        Show a progress bar on the terminal.
    root : str or Path, optional
        Project folder (with ``data/`` and ``notebooks/``) to read from and write ``reports/``
        into; by default ``$ANALYSIS_ROOT`` or the project this package belongs to.
    **options
        Passed on to `analysis.runner.run` (``memory_limit_mb``, ``wait``, ``build_site``).

    Returns
    -------
    RunResults
        One result per report (``.job.out_name``, ``.status`` of "ok", "skipped" or "failed",
        ``.reason_ja`` / ``.reason_en``); ``.warnings`` lists repairs made before the run.

    Raises
    ------
    AnalysisError
        An unknown dataset or invalid years or exposure lag, before anything runs.

    Examples
    --------
    A full run executes eleven notebooks for the sample (about two minutes on two cores):

    >>> results = run("sample", "2025", root=project)  # doctest: +SKIP
    >>> sorted((r.job.out_name, r.status) for r in results)  # doctest: +SKIP
    [('FY2025', 'ok'), ('quality/FY2025', 'ok'), ('trends', 'ok')]

    Parameters are checked before any notebook starts, in Japanese and English:

    >>> run("sample", "2031")
    Traceback (most recent call last):
    ...
    analysis.runner.RunError: データにない年度です: 2031（利用できる年度: 2021, 2022, 2023, 2024, 2025） / fiscal years outside the data: [2031] (available: [2021, 2022, 2023, 2024, 2025])
    """
    import os

    from . import runner

    if root is None:
        return runner.run(
            dataset, years, jobs=jobs, force=force, exposure_lag=exposure_lag, progress=progress, **options
        )
    before = os.environ.get("ANALYSIS_ROOT")
    os.environ["ANALYSIS_ROOT"] = str(Path(root).resolve())  # the workers and kernels inherit it
    try:
        return runner.run(
            dataset, years, jobs=jobs, force=force, exposure_lag=exposure_lag, progress=progress, **options
        )
    finally:
        if before is None:
            os.environ.pop("ANALYSIS_ROOT", None)
        else:
            os.environ["ANALYSIS_ROOT"] = before
