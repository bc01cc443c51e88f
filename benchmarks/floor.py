"""The one-process compute floor: the sample's reports computed in one plain Python process.

The same tables, figures and files as the pipeline's notebooks (5 fiscal-year reports, the trends
report and 5 data-quality reports), computed by calling `analysis.report` directly: no kernels,
no HTML export. What the pipeline costs beyond this is overhead (issue 14).

    .venv/bin/python benchmarks/floor.py                  # this checkout, sample dataset
    .venv/bin/python benchmarks/floor.py --root /tmp/proj --out /tmp/floor-out --json floor.json

Wall time (time.perf_counter) and CPU time of this process (time.process_time) are reported per
report and in total; on a machine shared with others, CPU time is the steadier of the two.
The first report also pays for importing the scientific stack inside the measured time, as the
pipeline's first notebook of each kernel does; the import itself is reported separately.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure_floor(root: Path, dataset: str = "sample", out: Path | None = None) -> dict:
    """Compute every report of `dataset` in this process; wall and CPU seconds, per report and total.

    `root` is the project tree (ANALYSIS_ROOT: its data/ is read). Files are written under `out`
    (a temporary folder by default, removed afterwards). Returns {"wall": s, "cpu": s,
    "import": {"wall": s, "cpu": s}, "per_report": {name: {"wall": s, "cpu": s}}}; "wall" and "cpu"
    include the import.
    """
    os.environ["ANALYSIS_ROOT"] = str(Path(root).resolve())
    w0, c0 = time.perf_counter(), time.process_time()
    from analysis import report
    from analysis.datasets import load_dataset

    timings: dict[str, dict[str, float]] = {}
    imported = {"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0}
    years = load_dataset(dataset).years

    def timed(name: str, make) -> None:
        w, c = time.perf_counter(), time.process_time()
        make()
        timings[name] = {"wall": time.perf_counter() - w, "cpu": time.process_time() - c}

    with tempfile.TemporaryDirectory(prefix="floor-") as tmp:
        dest = Path(out) if out is not None else Path(tmp)
        for y in years:
            timed(f"FY{y}", lambda y=y: report.fiscal_year_report(dataset, y).save(dest / f"FY{y}"))
        timed("trends", lambda: report.trends_report(dataset).save(dest / "trends"))
        for y in years:
            timed(f"quality/FY{y}", lambda y=y: report.quality_report(dataset, y).save(dest / "quality" / f"FY{y}"))
    return {
        "wall": time.perf_counter() - w0,
        "cpu": time.process_time() - c0,
        "import": imported,
        "per_report": timings,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="project tree whose data/ is read (default: this checkout)")
    ap.add_argument("--dataset", default="sample")
    ap.add_argument("--out", type=Path, help="keep the files in this folder (default: a temporary one)")
    ap.add_argument("--json", type=Path, help="also write the result as JSON here")
    args = ap.parse_args(argv)
    result = measure_floor(args.root, args.dataset, args.out)
    print(f"{'report':<16}{'wall s':>9}{'CPU s':>9}")
    print(f"{'(import)':<16}{result['import']['wall']:>9.2f}{result['import']['cpu']:>9.2f}")
    for name, t in result["per_report"].items():
        print(f"{name:<16}{t['wall']:>9.2f}{t['cpu']:>9.2f}")
    print(f"{'total':<16}{result['wall']:>9.2f}{result['cpu']:>9.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
