"""Pathological survey files: how fast and how lean the reader rejects them (issue 10 item 4).

Run on demand: `.venv/bin/python benchmarks/pathological.py`. Each case runs in a fresh process
(peak RSS is per process); reading the sample's real FY2025 workbook is the baseline, measured in
the same run, and every figure is also printed as a ratio to it. Target: each rejection in under
5 s and 300 MB.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import survey_fixtures as sf  # noqa: E402  (the tests' generators of the same files)

PROBE = """
import sys, time
from analysis.codebook import load_codebook
from analysis.datasets import load_dataset
from analysis.survey import SurveyError, read_survey
ds = load_dataset("sample"); book = load_codebook(); master = ds.master()
t = time.perf_counter()
try:
    read_survey(sys.argv[1], book, master)
    status = "read"
except SurveyError:
    status = "rejected"
# VmHWM (peak RSS of this process image): ru_maxrss would carry the forking parent's peak across exec
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(status, time.perf_counter() - t, hwm // 1024)
"""


def probe(path: Path) -> tuple[str, float, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ANALYSIS_ROOT": str(ROOT)},
        cwd=ROOT,
    ).stdout.split()
    return out[0], float(out[1]), int(out[2])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = {"baseline: sample FY2025 workbook": ROOT / "data" / "raw" / "sample" / "survey_FY2025.xlsx"}
        for cell, dim in (("A1048576", "declared"), ("XFD1048576", "declared"), ("A1048576", None), ("XFD1", "A1:B2")):
            cases[f"xlsx with a cell at {cell} (dimension {dim})"] = sf.far_cell_xlsx(
                tmp / f"{cell}{dim}.xlsx", cell, dim
            )
        million = tmp / "million.csv"
        million.write_bytes(b"\xef\xbb\xbf" + "市町村コード,市町村名\r\n".encode() + b"999999,x\r\n" * 1_000_000)
        cases["csv with a million rows"] = million
        base = None
        print(f"{'case':<48} {'status':>8} {'s':>7} {'MB':>5} {'s/base':>7} {'MB/base':>8}")
        for name, path in cases.items():
            status, seconds, mb = probe(path)
            base = base or (seconds, mb)
            print(f"{name:<48} {status:>8} {seconds:7.3f} {mb:5d} {seconds / base[0]:7.2f} {mb / base[1]:8.2f}")


if __name__ == "__main__":
    main()
