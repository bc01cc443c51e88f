"""CPU time of the Chan-Zhang exact interval (crosstab._chan_zhang_interval) on the reference tables.

The tables and their recorded limits are tests/data/chan_zhang_reference.json (the sample dataset's
tables as the compute floor asks for them, the tables of tests/test_crosstab.py, random tables).
Each table is timed with time.process_time (median of --repeat runs) and its limits are checked
against the recorded ones. With --baseline, an older copy of crosstab.py is timed alongside, per
table in turn (so both see the same load), and the ratio is printed:

    .venv/bin/python benchmarks/chan_zhang.py                       # sample tables
    .venv/bin/python benchmarks/chan_zhang.py --kind sample,test --repeat 3
    git show c506eab:src/analysis/crosstab.py > /tmp/crosstab_old.py
    .venv/bin/python benchmarks/chan_zhang.py --baseline /tmp/crosstab_old.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "chan_zhang_reference.json"


def _load_baseline(path: Path):
    """An older crosstab.py as module analysis._crosstab_baseline (its relative imports resolve in analysis)."""
    import analysis  # noqa: F401  (the parent package must be imported first)

    spec = importlib.util.spec_from_file_location("analysis._crosstab_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _cpu(fn, repeat: int) -> tuple[float, tuple[float, float]]:
    times, result = [], None
    for _ in range(repeat):
        c = time.process_time()
        result = fn()
        times.append(time.process_time() - c)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="sample", help="comma-separated: sample,test,random,large (default sample)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per table; the median is reported")
    parser.add_argument("--baseline", type=Path, help="an older crosstab.py to time alongside")
    args = parser.parse_args(argv)

    from analysis import crosstab

    baseline = _load_baseline(args.baseline) if args.baseline else None
    rows = [r for r in json.loads(REFERENCE.read_text())["rows"] if r["kind"] in args.kind.split(",")]
    total_new = total_old = 0.0
    mismatches = 0
    for r in rows:
        table = (r["x1"], r["n1"], r["x0"], r["n0"], r["alpha"])
        # __wrapped__: past the in-process memo, so that every run computes
        cpu, limits = _cpu(lambda t=table: crosstab._chan_zhang_interval.__wrapped__(*t), args.repeat)
        same = limits == (r["lower"], r["upper"])
        mismatches += not same
        total_new += cpu
        line = f"{r['kind']:7s} {r['x1']:4d}/{r['n1']:<4d} vs {r['x0']:4d}/{r['n0']:<4d} cpu {cpu:8.3f} s"
        if baseline is not None:
            old, _ = _cpu(lambda t=table: baseline._chan_zhang_interval(*t), args.repeat)
            total_old += old
            line += f"  baseline {old:8.3f} s  ratio {old / cpu:5.2f}"
        print(line + ("" if same else f"  LIMITS DIFFER {limits} != {(r['lower'], r['upper'])}"), flush=True)
    summary = f"{len(rows)} tables: cpu {total_new:.2f} s"
    if baseline is not None:
        summary += f", baseline {total_old:.2f} s, ratio {total_old / total_new:.2f}"
    print(summary + f"; limits differing from the reference: {mismatches}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
