"""Pipeline benchmark (on demand; not part of the test suite).

Measures in one run, median of --repeat runs (default 3), each in a fresh copy of the project:
  (a) a plain sequential loop of `papermill` CLI calls over the same notebooks and parameters,
  (b) `python -m analysis run --jobs 2` cold,
  (c) the same `run` warm, nothing changed,
  (d) `run --jobs 2` cold on the national synthetic dataset (1,741 municipalities),
and prints b/a, c/b, d/b and the peak resident memory of any notebook kernel.

    .venv/bin/python benchmarks/pipeline.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
YEARS = [2021, 2022, 2023, 2024, 2025]


def fresh_copy(base: Path, name: str) -> Path:
    dest = base / name
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    shutil.copytree(ROOT / "data", dest / "data", ignore=shutil.ignore_patterns("national-synthetic"))
    shutil.copytree(ROOT / "notebooks", dest / "notebooks")
    shutil.copytree(ROOT / "docs", dest / "docs")
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def timed(cmd: list[str], project: Path) -> float:
    env = {**os.environ, "ANALYSIS_ROOT": str(project)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return dt


def plain_loop(project: Path) -> float:
    """(a): papermill CLI, one call per notebook, sequential (what a script would do)."""
    papermill = str(Path(sys.executable).with_name("papermill"))
    jobs = (
        [("fiscal_year_report", f"FY{y}", y) for y in YEARS]
        + [("trends", "trends", None)]
        + [("data_quality", f"quality-FY{y}", y) for y in YEARS]
    )
    t0 = time.perf_counter()
    for notebook, name, year in jobs:
        d = project / "plain" / name
        d.mkdir(parents=True, exist_ok=True)
        params = ["-p", "dataset", "sample", "-p", "output_dir", str(d)]
        if year is not None:
            params += ["-p", "fiscal_year", str(year)]
        timed(
            [
                papermill,
                f"notebooks/{notebook}.ipynb",
                str(d / "nb.ipynb"),
                "--cwd",
                "notebooks",
                *params,
                "--no-progress-bar",
            ],
            project,
        )
    return time.perf_counter() - t0


def run_cmd(dataset: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "analysis", "run", "--dataset", dataset, "--no-progress", *extra]


def peak_kernel_mb(project: Path) -> float:
    peaks = [
        json.loads(p.read_text(encoding="utf-8")).get("peak_kernel_rss_mb", 0)
        for p in (project / "reports").rglob("manifest.json")
    ]
    return max(peaks) if peaks else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-"))
    nat = fresh_copy(base, "national-src")
    timed([sys.executable, "-m", "analysis", "sample", "--national"], nat)
    a, b, c, d, peaks = [], [], [], [], []
    for i in range(args.repeat):
        p = fresh_copy(base, f"a{i}")
        a.append(plain_loop(p))
        p = fresh_copy(base, f"b{i}")
        b.append(timed(run_cmd("sample", "--jobs", "2"), p))
        peaks.append(peak_kernel_mb(p))
        c.append(timed(run_cmd("sample", "--jobs", "2"), p))
        p = fresh_copy(base, f"d{i}")
        shutil.copytree(nat / "data" / "raw" / "national-synthetic", p / "data" / "raw" / "national-synthetic")
        d.append(timed(run_cmd("national-synthetic", "--jobs", "2"), p))
        peaks.append(peak_kernel_mb(p))
        print(f"run {i + 1}/{args.repeat}: a={a[-1]:.1f}s b={b[-1]:.1f}s c={c[-1]:.2f}s d={d[-1]:.1f}s", flush=True)
    ma, mb, mc, md = (statistics.median(x) for x in (a, b, c, d))
    print(
        f"\nmedian seconds: (a) plain papermill CLI loop {ma:.1f} | (b) run --jobs 2 cold {mb:.1f} | "
        f"(c) run warm {mc:.2f} | (d) national cold {md:.1f}"
    )
    print(
        f"b/a = {mb / ma:.2f} (target <= 0.5)   c = {mc:.2f} s (target <= 2 s)   c/b = {mc / mb:.3f}   "
        f"d/b = {md / mb:.2f} (target <= 2)"
    )
    print(f"peak kernel memory: {max(peaks):.0f} MB (target <= 500 MB)")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
