"""Reused kernels (analysis.kernels): the same files as a fresh kernel per notebook, and verified clean.

A worker runs its notebooks on one kept kernel, reset and checked against a fresh kernel's
recorded state between notebooks (analysis.kernelstate). These tests hold that to the strictest
standard there is: a full run of the sample with reuse (the session's ``sample_run``) and one
with ``--fresh-kernels`` publish byte-identical files (executed notebooks, tables, CSV/XLSX, HTML,
PDFs; masked only what differs between any two runs, tests/published.py). Real kernels
throughout: a kernelspec that records each start counts them; a kernel left unclean on purpose
is refused and stopped.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import kernels_started, make_project_copy, python_kernelspec, run_cli
from published import is_printed, published

from analysis import kernels, processes


def _counting_kernelspec(tmp_path: Path) -> tuple[Path, Path]:
    """A `python3` kernelspec (first on JUPYTER_PATH) that appends its pid to a file, then is ipykernel."""
    starts = tmp_path / "kernel-starts.txt"
    prelude = f"with open({str(starts)!r}, 'a') as fh:\n    fh.write(f'{{os.getpid()}}\\n')\n"
    return python_kernelspec(tmp_path, prelude, "Python 3 (counted)"), starts


@pytest.mark.full
def test_reused_kernels_publish_the_fresh_kernels_files(sample_run, tmp_path, monkeypatch):
    reused_project, reused = sample_run
    assert reused.returncode == 0, reused.stderr[-3000:]
    jupyter_path, starts = _counting_kernelspec(tmp_path)
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    project = make_project_copy(tmp_path / "fresh-kernels")
    args = ("run", "--dataset", "sample", "--years", "2021-2025", "--jobs", "2", "--no-progress", "--no-pdf")
    proc = run_cli(project, *args, "--fresh-kernels")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert kernels_started(starts, project) == 11  # the counting kernelspec ran: one kernel per notebook
    # the printed PDFs and slide images are made from the HTML compared here, after the kernels
    # (the fresh run leaves them out, --no-pdf); test_print.py holds their bytes to the HTML's
    assert not [k for k in published(project) if is_printed(k)]  # --no-pdf: nothing printed
    fresh, reused_files = published(project, printed=False), published(reused_project, printed=False)
    assert len(fresh) > 200  # executed notebooks, tables, CSV/XLSX, figures, HTML, profiles, index
    assert fresh.keys() == reused_files.keys()
    assert [k for k in fresh if fresh[k] != reused_files[k]] == []
    # and the reused run did reuse: no worker had to give up its kernel
    logs = "".join(p.read_text(encoding="utf-8") for p in (reused_project / "reports" / "sample" / ".logs").glob("*"))
    assert "kernel not reused" not in logs


@pytest.mark.full
def test_one_kernel_per_worker_unless_fresh_kernels_are_asked_for(tmp_path, monkeypatch):
    jupyter_path, starts = _counting_kernelspec(tmp_path)
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    project = make_project_copy(tmp_path / "p")
    args = ("run", "--dataset", "sample", "--years", "2025", "--jobs", "1", "--no-progress", "--force", "--no-pdf")
    proc = run_cli(project, *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert kernels_started(starts, project) == 1  # three notebooks (FY2025, trends, quality), one kernel
    monkeypatch.setenv(kernels.FRESH_KERNELS_ENV, "1")
    before = len(starts.read_text().split())
    proc = run_cli(project, *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert kernels_started(starts, project, before) == 3
    pids = [int(p) for p in starts.read_text().split()]
    assert not [p for p in pids if processes.alive(p)], "a kernel outlived its run"


# ---------------------------------------------------------------------------
# the reset and its verification, on one real kernel
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel_cwd(tmp_path_factory):
    """The folder every kernel of this module runs in; the last kept kernel is stopped at the end."""
    cwd = str(tmp_path_factory.mktemp("kernels"))
    try:
        yield cwd
    finally:
        kernels.shutdown_current()


def _kept_kernel(request, cwd: str, fresh: bool):
    """This module's kept kernel (kernels.acquire), as a worker keeps one between notebooks.

    Starting a kernel costs ~2.5 CPU-s: a test gets the kernel the previous one left kept (the
    replacement it acquired, or one reset and verified clean), `fresh` a never-used one. A
    kernel a failed test leaves behind is stopped, so that no test inherits its state.
    """
    failed = request.session.testsfailed
    kernel = kernels.acquire(cwd)
    if fresh and kernel.notebooks:
        kernels.shutdown_current()
        kernel = kernels.acquire(cwd)
    assert not fresh or kernel.notebooks == 0
    yield kernel
    if request.session.testsfailed != failed:
        kernels.shutdown_current()


@pytest.fixture()
def kernel(request, kernel_cwd):
    """A clean kept kernel: a fresh one or one reset and verified after its notebooks."""
    yield from _kept_kernel(request, kernel_cwd, fresh=False)


@pytest.fixture()
def fresh_kernel(request, kernel_cwd):
    """A kernel that has run no notebook yet: its state is a fresh kernel's."""
    yield from _kept_kernel(request, kernel_cwd, fresh=True)


def _value(kernel: kernels.ReusableKernel, expression: str) -> str:
    """repr of `expression` evaluated in the kernel (user_expressions: no name is bound)."""
    import jupyter_core.utils

    reply = jupyter_core.utils.run_sync(kernel.kc.execute_interactive)(
        "", silent=True, store_history=False, user_expressions={"v": expression}, timeout=60
    )
    data = reply["content"]["user_expressions"]["v"]
    assert data["status"] == "ok", data
    return data["data"]["text/plain"]


def _run(kernel: kernels.ReusableKernel, code: str) -> list[dict]:
    """Run code as a notebook cell would (history, outputs); its stream/result/error outputs."""
    import jupyter_core.utils

    outputs: list[dict] = []

    def hook(msg: dict) -> None:
        if msg["msg_type"] in ("stream", "execute_result", "error"):
            outputs.append(msg["content"])

    jupyter_core.utils.run_sync(kernel.kc.execute_interactive)(code, timeout=120, output_hook=hook)
    return outputs


def test_a_reset_brings_back_a_fresh_kernels_state(fresh_kernel, kernel_cwd):
    kernel = fresh_kernel
    baseline = {
        expr: _value(kernel, expr)
        for expr in (
            "sorted(get_ipython().user_ns)",
            "__import__('matplotlib').rcParams['font.family']",
            "__import__('matplotlib').rcParams['axes.facecolor']",
            "get_ipython().execution_count",
        )
    }
    first = _run(
        kernel,
        "import warnings, numpy as np, seaborn as sns, matplotlib.pyplot as plt\n"
        "from analysis import plots\n"
        "plots.setup(); sns.set_theme(style='darkgrid')\n"  # changes the rcParams theme
        "x = 42; np.random.seed(0); fig = plt.figure()\n"
        "warnings.warn('shown once per location', UserWarning)\n"
        "np.random.random()",
    )
    assert any("shown once per location" in o.get("text", "") for o in first)
    assert _value(kernel, "x") == "42"
    assert kernels.release(kernel, ok=True) is None
    assert kernels.acquire(kernel_cwd) is kernel  # kept
    for expr, value in baseline.items():
        assert _value(kernel, expr) == value, expr
    assert _value(kernel, "__import__('matplotlib.pyplot').pyplot.get_fignums()") == "[]"
    # the global generator was reseeded (a fresh kernel's comes from the OS): not the seed-0 stream
    again = _run(kernel, "import numpy as np; np.random.random()")
    assert again and again[-1]["data"]["text/plain"] != first[-1]["data"]["text/plain"]
    # a warning already shown in the previous notebook is shown again, as in a fresh kernel
    assert kernels.release(kernel, ok=True) is None
    shown = _run(kernel, "import warnings\nwarnings.warn('shown once per location', UserWarning)")
    assert any("shown once per location" in o.get("text", "") for o in shown)
    assert kernel.notebooks == 2


@pytest.mark.parametrize(
    ("leak", "named"),
    [
        ("import os; os.environ['ANALYSIS_TEST_LEAK'] = '1'", "environ: ANALYSIS_TEST_LEAK"),
        pytest.param("import pandas as pd; pd.set_option('display.max_rows', 3)", "pandas", marks=pytest.mark.full),
        pytest.param("import numpy as np; np.seterr(all='raise')", "numpy", marks=pytest.mark.full),
        ("import analysis.report as r; r.REPORT_TEST_LEAK = [1]", "analysis: analysis.report.REPORT_TEST_LEAK"),
        # the file caches are kept across notebooks, but only file caches
        ("import analysis.filecache as f; f.CACHES['leak'] = {}", "analysis: analysis.filecache.CACHES"),
        pytest.param("import os; os.chdir('/')", "cwd", marks=pytest.mark.full),
    ],
)
def test_a_kernel_that_cannot_be_reset_clean_is_stopped(kernel, kernel_cwd, leak, named):
    pid = kernel.pid
    _run(kernel, leak)
    why = kernels.release(kernel, ok=True)
    assert why is not None and named in why and "could not be reset" in why, why
    assert not processes.alive(pid)
    replacement = kernels.acquire(kernel_cwd)  # kept: the next test's kernel
    assert replacement is not kernel and replacement.pid != pid and replacement.is_alive()


def test_file_caches_and_pure_caches_outlive_a_reset_other_caches_do_not(kernel, kernel_cwd):
    # what a notebook read (the codebook) is not read again by the next one on the kept kernel,
    # a pure function's memo stays; a cache of anything else is emptied as in a fresh kernel
    _run(
        kernel,
        "from analysis import codebook, crosstab, profiles\n"
        "codebook.load_codebook(); crosstab._log_choose(7); profiles._environment()",
    )
    assert kernels.release(kernel, ok=True) is None
    assert kernels.acquire(kernel_cwd) is kernel  # kept
    _run(kernel, "from analysis import codebook\ncodebook.load_codebook()")
    stats = "(lambda c: (c.misses, c.hits))(__import__('analysis.filecache').filecache.CACHES['codebook'])"
    assert _value(kernel, stats) == "(1, 1)"
    assert _value(kernel, "__import__('analysis.crosstab').crosstab._log_choose.cache_info().currsize") == "1"
    assert _value(kernel, "__import__('analysis.profiles').profiles._environment.cache_info().currsize") == "0"
    assert kernels.release(kernel, ok=True) is None


def test_a_failed_notebook_costs_its_kernel(kernel, kernel_cwd):
    pid = kernel.pid
    assert kernels.release(kernel, ok=False) == "the notebook failed"
    assert not processes.alive(pid)
    assert kernels.acquire(kernel_cwd).pid != pid
