"""Size of the trends report's two tests, for the report's own model (on demand, offline).

    .venv/bin/python validation/size_study.py [--reps 2000] [--jobs 2] [--grid]

The trends report tests each support measure with the Firth penalised likelihood-ratio test and
the wild cluster restricted score bootstrap, in the model
``event ~ C(fiscal_year) + <measure>_lag1 + log_population + kaso`` (association.hazard_table).
Which one is primary should follow from how often each rejects a measure that has no
association, in *that* model, at the dataset's number of municipalities and events. This script
measures it with `analysis.recovery.size_study` (the sample's DGP, the measure made a null by
reassigning its yearly profiles among municipalities) for the bundled sample (35 municipalities,
6 events in 125 person-years, FY2021-FY2025) and, with --grid, for other numbers of events and
for national size, and writes validation/size_sample.json, read by the report instead of
recomputing.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from analysis import recovery  # noqa: E402
from analysis.association import COVARIATE_TERMS  # noqa: E402

SAMPLE = {"n_municipalities": 35, "target_events": 6}  # the sample's hazard data: 34 at risk, 125 rows, 6 events
GRID = [
    {"n_municipalities": 35, "target_events": 3},
    {"n_municipalities": 35, "target_events": 12},
    {"n_municipalities": 1741, "target_events": None},  # national size, the DGP as it is
]


def run(spec: dict, reps: int, jobs: int, n_boot: int) -> dict:
    t0 = time.perf_counter()
    out = recovery.size_study(spec["n_municipalities"], reps, n_boot=n_boot, n_jobs=jobs,
                              target_events=spec["target_events"])
    summary = recovery.size_summary(out)
    summary["target_events"] = spec["target_events"]
    summary["seconds"] = round(time.perf_counter() - t0)
    print(json.dumps(summary, ensure_ascii=False))
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=2000)
    ap.add_argument("--grid-reps", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--boot", type=int, default=1999)
    ap.add_argument("--grid", action="store_true", help="also other event counts and national size")
    ap.add_argument("--out", type=Path, default=ROOT / "validation" / "size_sample.json")
    args = ap.parse_args()
    result = {
        "what": "rejection rates at alpha = 0.05 of the trends report's tests for a measure with no association",
        "model": f"event ~ C(fiscal_year) + <measure>_lag1 + {' + '.join(COVARIATE_TERMS)} (Firth; clusters = municipalities)",
        "tests": {"lr": "Firth penalised likelihood-ratio test",
                  "wild": f"wild cluster restricted score bootstrap, {args.boot} Rademacher draws"},
        "command": f"python validation/size_study.py --reps {args.reps} --jobs {args.jobs} --boot {args.boot}"
                   + (f" --grid --grid-reps {args.grid_reps}" if args.grid else ""),
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "sample": run(SAMPLE, args.reps, args.jobs, args.boot),
    }
    if args.grid:
        result["grid"] = [run(spec, args.grid_reps, args.jobs, args.boot) for spec in GRID]
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
