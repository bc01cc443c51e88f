"""Test-suite cost (on demand; not part of the suite): where the seconds of `make test`/`make full` go.

Runs pytest the way the Makefile does (pytest-xdist, ``--dist loadfile --no-loadscope-reorder``)
with this module as a plugin, which records for every test the CPU seconds of the test process
and of the child processes it waited for (pipeline runs, kernels, chromium: ``getrusage``), and
the wall time. Prints the tier's wall time and, per test file, CPU and wall seconds, costliest
first, then the costliest tests. CPU seconds are what a 2-core machine spends; they vary less
than wall time when the machine is shared, so compare files by CPU.

    .venv/bin/python benchmarks/suite.py                  # make test (every check's fast form), 2 workers
    .venv/bin/python benchmarks/suite.py --tier all       # the whole suite (make test full, as CI)
    .venv/bin/python benchmarks/suite.py --markdown tests/test_print.py   # some files; a table
    .venv/bin/python benchmarks/suite.py --save-costs     # also write tests/file_costs.json

tests/file_costs.json (seconds per file, for each tier) orders the files for pytest-xdist
(tests/conftest.py): longest first (wall seconds: how long a worker is busy with the file), so
the last files the two workers take are short and neither waits long for the other at the end.
Refresh it when a file's cost changes much.

A test's CPU includes the children it waited for, and a session fixture's cost lands on the
first test that asks for it (``sample_run``: the first of the files that read it).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COSTS = ROOT / "tests" / "file_costs.json"
RECORDS_ENV = "ANALYSIS_SUITE_COST_DIR"
TIERS = {"test": "not slow and not full", "all": "not slow"}


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Plugin side: one JSON line per test (setup, call and teardown together) in this process's file."""
    directory = os.environ.get(RECORDS_ENV)
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    yield
    if directory:
        record = {"id": item.nodeid, "cpu": _cpu_seconds() - cpu0, "wall": time.perf_counter() - wall0}
        with open(Path(directory) / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def summarise(records: list[dict], top: int) -> tuple[list[tuple[str, float, float, int]], list[dict]]:
    """Per file (file, CPU s, wall s, tests), costliest first; and the `top` costliest tests."""
    per_file: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for r in records:
        entry = per_file[r["id"].split("::")[0]]
        entry[0] += r["cpu"]
        entry[1] += r["wall"]
        entry[2] += 1
    files = sorted(((f, c, w, int(n)) for f, (c, w, n) in per_file.items()), key=lambda x: (-x[1], x[0]))
    tests = sorted(records, key=lambda r: (-r["cpu"], r["id"]))[:top]
    return files, tests


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--tier",
        choices=sorted(TIERS),
        default="test",
        help="test (make test) or all (make test full: the whole suite)",
    )
    ap.add_argument("-n", "--workers", default="2", help="pytest-xdist workers (make's TEST_WORKERS)")
    ap.add_argument("--top", type=int, default=20, help="how many of the costliest tests to list")
    ap.add_argument("--markdown", action="store_true", help="print the per-file table as Markdown")
    ap.add_argument(
        "--save-costs", action="store_true", help=f"write CPU seconds per file to {COSTS.relative_to(ROOT)}"
    )
    ap.add_argument("paths", nargs="*", help="test files or folders (default: the suite's testpaths)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="suite-cost-") as records_dir:
        env = dict(os.environ, **{RECORDS_ENV: records_dir})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "benchmarks"), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "suite", "-q"]
        cmd += ["-n", args.workers, "--dist", "loadfile", "--no-loadscope-reorder", "-m", TIERS[args.tier], *args.paths]
        wall0 = time.perf_counter()
        status = subprocess.run(cmd, cwd=ROOT, env=env).returncode
        wall = time.perf_counter() - wall0
        records = [json.loads(line) for f in sorted(Path(records_dir).glob("*.jsonl")) for line in f.open()]

    files, tests = summarise(records, args.top)
    total_cpu = sum(f[1] for f in files)
    print(
        f"\n{args.tier}: {len(records)} tests, pytest wall {wall:.0f} s, tests' CPU {total_cpu:.0f} s (exit {status})"
    )
    if args.markdown:
        print("\n| file | CPU s | wall s | tests |\n|---|---:|---:|---:|")
        for f, c, w, n in files:
            print(f"| {f} | {c:.1f} | {w:.1f} | {n} |")
    else:
        for f, c, w, n in files:
            print(f"{c:8.1f} {w:8.1f} {n:5d}  {f}")
    if args.save_costs and status == 0 and not args.paths:
        saved = json.loads(COSTS.read_text(encoding="utf-8")) if COSTS.is_file() else {}
        for key, column in (("wall_seconds", 2), ("cpu_seconds", 1)):
            saved.setdefault(key, {})[args.tier] = {f[0]: round(f[column], 1) for f in sorted(files)}
        saved["note"] = (
            "seconds per test file and tier (benchmarks/suite.py --save-costs): tests/conftest.py runs the longest first"
        )
        COSTS.write_text(json.dumps(dict(sorted(saved.items())), indent=1) + "\n", encoding="utf-8")
        print(f"written: {COSTS.relative_to(ROOT)} ({args.tier})")
    print(f"\nthe {len(tests)} costliest tests (CPU s, wall s):")
    for r in tests:
        print(f"{r['cpu']:8.1f} {r['wall']:8.1f}  {r['id']}")
    return status


if __name__ == "__main__":
    sys.exit(main())
