"""Experiment (on demand): the main process drives the kept kernels from threads, no worker processes.

What would a runner without worker processes cost? This runs the sample's 11 notebooks the way
`run --jobs N --force --no-pdf` does (the runner's own preparation and preflight, one kept kernel
per thread with the runner's reuse engine and reset, HTML export, the 市町別カルテ), but from N
threads of one process instead of N spawned workers. It is not the runner (no manifests, staging
swap, failure handling or index): a measurement of the design, for the README's Performance notes.

    ANALYSIS_ROOT=/tmp/copy .venv/bin/python benchmarks/driver_threads.py 2
    ANALYSIS_ROOT=/tmp/copy /usr/bin/time .venv/bin/python -m analysis run --jobs 2 --force --no-pdf

Prints wall seconds and CPU seconds (this process and its kernels). Outputs go to a temporary
folder, removed at the end. Compare with `run` in the same sitting, alternating.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def main(n_threads: int) -> None:
    t0 = time.perf_counter()
    import papermill as pm

    from analysis import kernels, runner
    from analysis.datasets import load_dataset
    from analysis.htmlexport import notebook_to_html

    root = Path(os.environ["ANALYSIS_ROOT"])
    ds = load_dataset("sample")
    base = runner.reports_base(root, "sample")
    common = {"git_commit": None, "versions": runner.versions(), "memory_limit_mb": None}
    prep = runner._prepare(ds, root, base, ds.years, True, 0, runner.code_hash(), common)
    kernels.register_engine()
    cwd = str(root / "notebooks")
    local, kept = threading.local(), []
    out = Path(tempfile.mkdtemp(prefix="driver-threads-"))

    def job(task) -> str:
        j, _fp, meta = task
        if not hasattr(local, "kernel"):
            local.kernel = kernels.ReusableKernel(cwd)
            local.kernel.start()
            kept.append(local.kernel)
        staging = out / j.out_name
        staging.mkdir(parents=True, exist_ok=True)
        nb_out = staging / f"{j.notebook}.ipynb"
        pm.execute_notebook(
            str(root / runner.NOTEBOOKS[j.notebook]),
            str(nb_out),
            parameters={**j.parameters, "output_dir": str(staging)},
            kernel_name=kernels.KERNEL_NAME,
            engine_name=kernels.ENGINE_NAME,
            reusable_kernel=local.kernel,
            progress_bar=False,
            log_output=False,
            cwd=cwd,
        )
        local.kernel.reset()
        notebook_to_html(
            nb_out,
            staging / "report.html",
            title=meta["titles"][j.out_name],
            banner_ja=meta["banner_ja"],
            index_href="../index.html",
        )
        return j.out_name

    try:
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(job, prep.todo))
        runner.write_all_profiles(ds, out)
    finally:
        for kernel in kept:
            kernel.shutdown()
        import shutil

        shutil.rmtree(out, ignore_errors=True)
    wall = time.perf_counter() - t0
    cpu = sum(
        getattr(resource.getrusage(w), f)
        for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for f in ("ru_utime", "ru_stime")
    )
    print(
        f"{len(prep.todo)} notebooks on {n_threads} thread(s): {wall:.1f} s wall, {cpu:.1f} CPU s (this process and its kernels)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
