"""National scale: all 1,741 real municipality codes, synthetic answers; reports stay readable."""

import json
import re

import pandas as pd
import pytest
from conftest import make_project_copy, run_cli


@pytest.mark.full
def test_national_synthetic_dataset_runs_and_stays_readable(tmp_path):
    project = make_project_copy(tmp_path / "p")
    gen = run_cli(project, "sample", "--national")
    assert gen.returncode == 0, gen.stderr[-2000:]
    meta = (project / "data" / "raw" / "national-synthetic" / "dataset.yaml").read_text(encoding="utf-8")
    assert "synthetic: true" in meta
    proc = run_cli(
        project, "run", "--dataset", "national-synthetic", "--years", "2024-2025", "--jobs", "2", "--no-progress"
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    base = project / "reports" / "national-synthetic"
    m = json.loads((base / "FY2025" / "manifest.json").read_text(encoding="utf-8"))
    assert m["summary"]["n_municipalities"] == 1741
    html = (base / "FY2025" / "report.html").read_text(encoding="utf-8")
    assert "架空" in html or "合成データ" in html
    # no 1,741-row table in the page: the largest table is the by-prefecture one (47 rows)
    tables = re.findall(r"<table.*?</table>", html, flags=re.S)
    assert tables and max(t.count("<tr") for t in tables) <= 60
    pref = pd.read_csv(next((base / "FY2025" / "tables").glob("*_by_prefecture.csv")), encoding="utf-8-sig")
    assert len(pref) == 47 and pref["回答市町村数"].sum() == 1741
    assert len(html) < 2_000_000
