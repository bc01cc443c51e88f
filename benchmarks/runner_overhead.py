"""Where the CPU of `python -m analysis run` on the sample goes (on demand; not part of the test suite).

Prints, each in CPU-seconds (user + system, children included) and wall seconds:
  * whole runs, `run --jobs 2 --force` with reused kernels (default) and with --fresh-kernels;
  * its parts measured alone: interpreter start, `import analysis.report` (what a kernel imports),
    a kernel's start and shutdown, the worker's papermill/nbconvert imports, the 11 notebooks'
    code executed in one plain process (the floor: no kernels, no HTML, no PDFs), HTML export of
    the 11 executed notebooks, municipality profiles, the PDFs/slide images, the index.

    .venv/bin/python benchmarks/runner_overhead.py [--skip-runs]

Runs in a fresh copy of the project (ANALYSIS_ROOT), so reports/ of the checkout is not touched.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def measure(label: str, fn: Callable[[], object], n: int = 1) -> tuple[float, float]:
    runs = []
    for _ in range(n):
        c0, w0 = cpu(), time.perf_counter()
        fn()
        runs.append((cpu() - c0, time.perf_counter() - w0))
    c = sorted(r[0] for r in runs)[n // 2]
    w = sorted(r[1] for r in runs)[n // 2]
    print(f"| {label} | {c:.2f} | {w:.2f} |", flush=True)
    return c, w


def fresh_project(dest: Path) -> Path:
    dest.mkdir(parents=True)
    shutil.copytree(ROOT / "data", dest / "data", ignore=shutil.ignore_patterns("processed", "national-synthetic"))
    shutil.copytree(ROOT / "notebooks", dest / "notebooks")
    shutil.copytree(ROOT / "docs", dest / "docs")
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-runs", action="store_true", help="only the parts (needs a run's reports first)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="overhead-"))
    project = fresh_project(tmp / "project")
    os.environ["ANALYSIS_ROOT"] = str(project)
    run = [PY, "-m", "analysis", "run", "--dataset", "sample", "--jobs", "2", "--force", "--no-progress"]

    def cli(*extra: str) -> Callable[[], object]:
        return lambda: subprocess.run([*run, *extra], cwd=project, check=True, capture_output=True)

    def sub(code: str) -> Callable[[], object]:
        return lambda: subprocess.run([PY, "-c", code], check=True, cwd=project / "notebooks")

    print("| part | CPU s | wall s |\n|---|---|---|")
    if not args.skip_runs:
        measure("run --jobs 2 --force --fresh-kernels", cli("--fresh-kernels"))
        measure("run --jobs 2 --force (reused kernels)", cli())
    measure("python -c pass", sub("pass"), 3)
    measure("import analysis.report (a kernel's imports)", sub("from analysis import association, report"), 3)
    measure("worker imports: papermill, nbclient", sub("import papermill, nbclient, jupyter_client"), 3)
    measure("worker imports: nbconvert (HTML export)", sub("import analysis.htmlexport, nbconvert"), 3)

    def kernel() -> None:
        from jupyter_client.manager import start_new_kernel

        km, kc = start_new_kernel(kernel_name="python3")
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    measure("kernel start + shutdown (no imports)", kernel, 3)

    jobs = [("fiscal_year_report", {"fiscal_year": y}) for y in range(2021, 2026)] + [("trends", {})]
    jobs += [("data_quality", {"fiscal_year": y}) for y in range(2021, 2026)]
    out = tmp / "floor"

    def floor() -> None:
        code = (
            "import contextlib, io, json, sys, nbformat\n"
            "jobs = json.loads(sys.argv[1])\n"
            "for i, (name, params) in enumerate(jobs):\n"
            "    nb = nbformat.read(f'{name}.ipynb', as_version=4)\n"
            "    cells = [c.source for c in nb.cells if c.cell_type == 'code']\n"
            "    ns = {}\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        exec(cells[0], ns)\n"
            "        ns.update(params, dataset='sample', output_dir=f'{sys.argv[2]}/{i}')\n"
            "        for c in cells[1:]:\n"
            "            exec(c, ns)\n"
        )
        import json

        subprocess.run([PY, "-c", code, json.dumps(jobs), str(out)], check=True, cwd=project / "notebooks")

    measure("floor: the 11 notebooks' code in one process", floor)

    from analysis import runner
    from analysis.datasets import load_dataset
    from analysis.htmlexport import notebook_to_html

    base = project / "reports" / "sample"
    notebooks = [p for p in sorted(base.rglob("*.ipynb")) if ".failed" not in p.parts]
    measure(
        f"HTML export of {len(notebooks)} notebooks (one process, imports included)",
        lambda: [notebook_to_html(p, tmp / f"{i}.html", title="t", banner_ja="b") for i, p in enumerate(notebooks)],
    )
    ds = load_dataset("sample")
    measure("municipality profiles (write_all_profiles)", lambda: runner.write_all_profiles(ds, base))
    for p in [*base.rglob("*.pdf"), *base.rglob("summary.png")]:
        p.unlink()
    measure("summaries + PDFs + slide images (publish_print, chromium)", lambda: runner.publish_print(ds, base))
    measure("index (build_index)", lambda: runner.build_index(ds))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
