"""Multi-dataset run: local worker processes vs a 2-worker Dask LocalCluster, on the same machine.

    python benchmarks/dask_overhead.py                    # all 47 prefectures, FY2021-2025 (long)
    python benchmarks/dask_overhead.py --prefectures 3    # a quick check

Writes the national synthetic data split by prefecture (`sample --national --by-prefecture`) into a
throw-away copy of the project, takes the first N prefecture datasets (by code), and runs
`run --datasets ... --jobs 2` twice from cold, each in its own copy: with `--executor local` and with
`--executor dask` (a LocalCluster of 2 workers). Prints both wall times and the overhead ratio
dask / local, and checks that both runs made the same set of reports.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def project_copy(dest: Path) -> Path:
    dest.mkdir(parents=True)
    # the national datasets are written afresh below; data/external/national_jusou_counts.csv stays
    shutil.copytree(
        ROOT / "data", dest / "data", ignore=shutil.ignore_patterns("processed", "national-synthetic", "national_pref*")
    )
    shutil.copytree(ROOT / "notebooks", dest / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(ROOT / "docs", dest / "docs")
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def cli(project: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    secs, _, proc = cli_timed(project, *args)
    return secs, proc


def cli_timed(project: Path, *args: str) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds, CPU seconds (user + system of the CLI and every process it waited for:
    workers, kernels, chromium) and the finished process. CPU time is what to compare on a
    shared machine: wall time there depends on what else runs."""
    env = {**os.environ, "ANALYSIS_ROOT": str(project)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "analysis", *args], cwd=project, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefectures", type=int, default=47, help="number of prefecture datasets (1-47, default 47)")
    ap.add_argument("--years", default="2021-2025", help="fiscal years (default 2021-2025)")
    ap.add_argument("--jobs", type=int, default=2, help="local workers = Dask workers (default 2)")
    ap.add_argument(
        "--codes",
        default="",
        help="prefecture codes to run instead of the first N, e.g. 18,31,32 (small prefectures, a quick check)",
    )
    args = ap.parse_args()
    if not 1 <= args.prefectures <= 47:
        ap.error("--prefectures must be 1..47")

    with tempfile.TemporaryDirectory(prefix="dask-bench-") as tmp:
        seed = project_copy(Path(tmp) / "seed")
        secs, gen = cli(seed, "sample", "--national", "--by-prefecture")
        if gen.returncode:
            print(gen.stderr, file=sys.stderr)
            return 1
        shutil.rmtree(seed / "data" / "raw" / "national-synthetic")  # 1,741 municipalities: not a prefecture
        names = sorted(p.name for p in (seed / "data" / "raw").glob("national_pref*"))[: args.prefectures]
        if args.codes:
            names = [f"national_pref{int(c):02d}" for c in args.codes.split(",")]
        print(f"generated 47 prefecture datasets in {secs:.1f} s; running {len(names)}: {names[0]} .. {names[-1]}")
        times, cpus, made = {}, {}, {}
        for executor in ("local", "dask"):
            project = Path(tmp) / executor
            shutil.copytree(seed, project)
            run_args = ["run", "--datasets", ",".join(names), "--years", args.years, "--jobs", str(args.jobs)]
            secs, cpu, proc = cli_timed(project, *run_args, "--no-progress", "--executor", executor)
            if proc.returncode:
                print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
                return 1
            times[executor], cpus[executor] = secs, cpu
            made[executor] = sorted(
                p.relative_to(project).as_posix() for p in (project / "reports").rglob("manifest.json")
            )
            print(f"{executor:>5}: {secs:8.1f} s wall, {cpu:8.1f} s CPU, {len(made[executor])} reports", flush=True)
        if made["local"] != made["dask"]:
            print("the two runs made different sets of reports", file=sys.stderr)
            return 1

    n_reports = len(made["local"])
    print()
    print(f"date: {date.today().isoformat()}; machine: nproc={os.cpu_count()}, {cpu_model()}")
    print(
        "| datasets | years | reports | local wall (s) | dask wall (s) | wall dask / local "
        "| local CPU (s) | dask CPU (s) | CPU dask / local |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {len(names)} | {args.years} | {n_reports} | {times['local']:.1f} | {times['dask']:.1f} | "
        f"{times['dask'] / times['local']:.2f} | {cpus['local']:.1f} | {cpus['dask']:.1f} | "
        f"{cpus['dask'] / cpus['local']:.2f} |"
    )
    print(f"(dask: a LocalCluster of {args.jobs} single-threaded workers; local: --jobs {args.jobs})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
