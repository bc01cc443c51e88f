"""Experiment (on demand): the sample's 11 notebooks executed in this process by IPython, no kernel.

How much do the notebooks themselves cost beyond the floor (benchmarks/floor.py), with no kernel
process, no messaging, no HTML export and no worker? Each notebook is parameterized as papermill
does it and its code cells are run one after another by one `InteractiveShell` (the inline
matplotlib backend, displays formatted as in a kernel, output discarded), reset between
notebooks. Compare with the floor in the same sitting: the difference is the notebooks' own
overhead (cells, displays, resets), a lower bound for any pipeline that runs the notebooks.

    ANALYSIS_ROOT=/tmp/copy .venv/bin/python benchmarks/inprocess_notebooks.py
    ANALYSIS_ROOT=/tmp/copy .venv/bin/python benchmarks/floor.py --root /tmp/copy

Files are written to a temporary folder, removed at the end.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    w0, c0 = time.perf_counter(), time.process_time()
    import matplotlib
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib_inline.backend_inline import flush_figures
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from analysis.datasets import load_dataset

    root = Path(os.environ["ANALYSIS_ROOT"])
    os.chdir(root / "notebooks")
    shell = InteractiveShell.instance()
    matplotlib.use("module://matplotlib_inline.backend_inline")
    shell.events.register("post_execute", flush_figures)
    years = load_dataset("sample").years
    jobs = [("fiscal_year_report", {"fiscal_year": y}) for y in years] + [("trends", {})]
    jobs += [("data_quality", {"fiscal_year": y}) for y in years]
    out = Path(tempfile.mkdtemp(prefix="inprocess-"))
    per: dict[str, float] = {}
    try:
        for name, params in jobs:
            c = time.process_time()
            label = f"{name} {params.get('fiscal_year', '')}".strip()
            target = out / label.replace(" ", "-")
            target.mkdir(parents=True)
            nb = load_notebook_node(str(root / "notebooks" / f"{name}.ipynb"))
            nb = parameterize_notebook(nb, {"dataset": "sample", "output_dir": str(target), **params})
            with contextlib.redirect_stdout(io.StringIO()):
                for cell in nb.cells:
                    if cell.cell_type == "code":
                        result = shell.run_cell(cell.source, store_history=False)
                        if not result.success:
                            raise RuntimeError(f"{label}: {result.error_in_exec or result.error_before_exec}")
            shell.reset(new_session=True)
            per[label] = time.process_time() - c
    finally:
        shutil.rmtree(out, ignore_errors=True)
    for label, cpu in per.items():
        print(f"{label:<24}{cpu:>7.2f} CPU s")
    print(f"total: {time.perf_counter() - w0:.2f} s wall, {time.process_time() - c0:.2f} CPU s (imports included)")


if __name__ == "__main__":
    sys.exit(main())
