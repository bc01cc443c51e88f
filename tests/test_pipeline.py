"""End-to-end: the CLI on a copy of the sample (papermill runs of both notebooks, every year)."""

import hashlib
import json
import re
import shutil

import pandas as pd
import pytest
from conftest import copy_of_sample_run, failure_lines, make_project_copy, run_cli
from openpyxl import load_workbook

YEARS = [2021, 2022, 2023, 2024, 2025]


def _digest(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_run_succeeds_for_every_year(sample_run):
    project, proc = sample_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    base = project / "reports" / "sample"
    for y in YEARS:
        d = base / f"FY{y}"
        for name in ("report.html", "tables.xlsx", "manifest.json", "fiscal_year_report.ipynb"):
            assert (d / name).is_file(), (y, name)
        # status, progress, main items, support, challenges, support × full, association, municipalities;
        # figures: main items, support, forest plot, heat map
        assert len(list((d / "tables").glob("*.csv"))) == 8 and len(list((d / "figures").glob("*.png"))) == 4
    assert (base / "trends" / "report.html").is_file() and (base / "index.html").is_file()
    assert not (base / ".staging").exists()
    assert "成功" in proc.stdout
    # every report printed: no note of reports without their PDF (test_incremental has the other case)
    assert "PDF 版のないレポート" not in (base / "index.html").read_text(encoding="utf-8")


def test_fy2025_status_table_finds_13_and_7(sample_run):
    project, _ = sample_run
    d = project / "reports" / "sample" / "FY2025"
    csv = pd.read_csv(d / "tables" / "01_status.csv", encoding="utf-8-sig")
    counts = dict(zip(csv["区分"], csv["市町数"], strict=False))
    assert counts["重層的支援体制整備事業を実施済"] == 13
    assert counts["包括的な支援体制の整備に関する指針（厚労省）の主要項目を全て実施"] == 7
    ws = load_workbook(d / "tables.xlsx")["01 実施状況"]
    rows = {r[0]: r[1] for r in ws.iter_rows(min_row=5, values_only=True)}
    assert rows["重層的支援体制整備事業を実施済"] == 13
    assert "架空データ" in ws["A2"].value


def test_manifest_records_provenance(sample_run):
    project, _ = sample_run
    m = json.loads((project / "reports" / "sample" / "FY2025" / "manifest.json").read_text(encoding="utf-8"))
    assert m["status"] == "ok" and m["fiscal_year"] == 2025
    assert m["parameters"] == {"dataset": "sample", "fiscal_year": 2025, "exposure_lag": 0}
    assert m["summary"] == {
        "fiscal_year": 2025,
        "n_municipalities": 35,
        "n_jusou": 13,
        "n_full": 7,
        "exposure_lag": 0,
        "covariates": ["log_population", "kaso"],
    }
    survey = project / "data" / "raw" / "sample" / "survey_FY2025.xlsx"
    assert m["inputs"]["data/raw/sample/survey_FY2025.xlsx"] == hashlib.sha256(survey.read_bytes()).hexdigest()
    assert {"python", "pandas", "papermill"} <= set(m["versions"]) and len(m["code_hash"]) == 64


def test_html_report_is_japanese_and_hides_code(sample_run):
    project, _ = sample_run
    html = (project / "reports" / "sample" / "FY2025" / "report.html").read_text(encoding="utf-8")
    assert '<html lang="ja"' in html and "架空データ" in html
    assert "rep.show(" not in html and "import " not in html
    assert html.count("data:image/png;base64,") >= 3


@pytest.mark.full
def test_second_run_skips_and_forced_run_is_identical(sample_run_copy):
    project, _ = sample_run_copy
    base = project / "reports" / "sample"
    before = {y: _digest(base / f"FY{y}" / "tables") for y in (2024, 2025)}
    xlsx_before = (base / "FY2025" / "tables.xlsx").read_bytes()
    png_before = (base / "FY2025" / "figures" / "items_heatmap.png").read_bytes()
    again = run_cli(project, "run", "--dataset", "sample", "--years", "2024-2025", "--no-progress")
    assert again.returncode == 0 and again.stdout.count("最新") >= 3
    forced = run_cli(
        project,
        "run",
        "--dataset",
        "sample",
        "--years",
        "2024-2025",
        "--force",
        "--jobs",
        "2",
        "--no-progress",
        "--no-pdf",
    )
    assert forced.returncode == 0 and "最新" not in forced.stdout
    for y in (2024, 2025):
        assert _digest(base / f"FY{y}" / "tables") == before[y]
    assert (base / "FY2025" / "tables.xlsx").read_bytes() == xlsx_before
    assert (base / "FY2025" / "figures" / "items_heatmap.png").read_bytes() == png_before


@pytest.mark.parametrize(
    "args,needle",
    [
        (["run", "--dataset", "nonexistent"], "データセット『nonexistent』が見つかりません"),
        (["run", "--dataset", "sample", "--years", "2019-2020"], "データにない年度です"),
        (["run", "--dataset", "sample", "--years", "soon"], "解釈できません"),
    ],
)
def test_bad_parameters_give_one_bilingual_message(tmp_path, args, needle):
    project = make_project_copy(tmp_path / "p")
    proc = run_cli(project, *args)
    assert proc.returncode == 2
    assert needle in proc.stderr and " / " in proc.stderr and "Traceback" not in proc.stderr
    assert not (project / "reports").exists()


@pytest.fixture(scope="module")
def broken_surveys(sample_run, tmp_path_factory):
    """ONE failing rerun on a copy of the good sample run (file times kept), three surveys broken
    a different way each: FY2025 truncated (it has a good report to keep), FY2024 missing, FY2023
    with an answer the codebook cannot map (its report folder removed: a year never reported
    before). FY2022 is untouched, and reads no later survey: it stays up to date.
    Returns (project, {year: digest of its report before}, process).
    """
    ok = sample_run[1]
    assert ok.returncode == 0, ok.stderr[-2000:]  # a good report of every year to begin with
    copy = copy_of_sample_run(sample_run, tmp_path_factory.mktemp("broken_surveys") / "project")
    raw, base = copy / "data" / "raw" / "sample", copy / "reports" / "sample"
    old = {y: _digest(base / f"FY{y}") for y in (2022, 2025)}
    (raw / "survey_FY2025.xlsx").write_bytes(b"PK\x03\x04 truncated")
    (raw / "survey_FY2024.xlsx").unlink()
    wb = load_workbook(raw / "survey_FY2023.xlsx")
    wb.active.cell(row=8, column=4, value="たぶん")  # an answer the codebook cannot map
    wb.save(raw / "survey_FY2023.xlsx")
    shutil.rmtree(base / "FY2023")
    proc = run_cli(
        copy, "run", "--dataset", "sample", "--years", "2022-2025", "--jobs", "1", "--no-progress", "--no-pdf"
    )
    return copy, old, proc


def test_a_broken_survey_fails_its_year_and_keeps_the_old_report(broken_surveys):
    project, old, proc = broken_surveys
    base = project / "reports" / "sample"
    assert proc.returncode == 1
    line = failure_lines(proc.stdout)["FY2025"]
    assert "survey_FY2025.xlsx" in line and "失敗" in line
    assert _digest(base / "FY2025") == old[2025]  # the last good report stays in place
    assert "FY2022" not in failure_lines(proc.stdout) and _digest(base / "FY2022") == old[2022]  # the good year
    assert json.loads((base / "FY2022" / "manifest.json").read_text(encoding="utf-8"))["status"] == "ok"
    index = (base / "index.html").read_text(encoding="utf-8")
    assert "FY2025" in index


def test_missing_survey_file_is_named(broken_surveys):
    _, _, proc = broken_surveys
    assert proc.returncode == 1
    line = failure_lines(proc.stdout)["FY2024"]
    assert "survey_FY2024.xlsx" in line and "ファイルがありません" in line


def test_survey_errors_fail_the_year_but_the_quality_report_names_them(broken_surveys):
    project, _, proc = broken_surveys
    assert proc.returncode == 1
    line = failure_lines(proc.stdout)["FY2023"]
    assert "8行" in line and "たぶん" in line  # the summary names row and value
    base = project / "reports" / "sample"
    assert not (base / "FY2023").exists()
    html = (base / "quality" / "FY2023" / "report.html").read_text(encoding="utf-8")
    assert "たぶん" in html and "D8" in html and "解釈できません" in html
    issues = pd.read_csv(base / "quality" / "FY2023" / "tables" / "03_issues.csv", encoding="utf-8-sig")
    assert (issues["値"] == "たぶん").any() and (issues["重要度"] == "エラー").any()
    index = (base / "index.html").read_text(encoding="utf-8")
    assert "quality/FY2023/report.html" in index


def test_the_trends_report_names_the_broken_years_and_what_brings_it_back(broken_surveys):
    _, _, proc = broken_surveys
    line = failure_lines(proc.stdout)["trends"]
    # fiscal years as the index shows them (not a Python list), and what to do
    assert "FY2023、FY2024、FY2025" in line and "直すと、この推移レポートも作成されます" in line
    assert "FY2023, FY2024, FY2025" in line and "[" not in line


def test_the_finishing_step_says_when_it_starts_and_ends_and_nothing_when_idle(sample_run_copy):
    project, _ = sample_run_copy
    args = ("run", "--dataset", "sample", "--years", "2021-2025", "--jobs", "1")
    idle = run_cli(project, *args)  # progress on (stderr is not a terminal: plain lines)
    assert idle.returncode == 0, idle.stderr[-2000:]
    assert "仕上げ" not in idle.stderr  # nothing changed since the printed run: no finishing step
    next(iter(sorted((project / "reports" / "sample" / "profiles" / "FY2025").glob("*.html")))).unlink()
    proc = run_cli(project, *args, "--no-pdf")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("仕上げ")]
    assert lines[0] == "仕上げ（市町別カルテ・一覧）を作成しています: sample / finishing: profiles, PDFs, index"
    assert re.fullmatch(r"仕上げ: sample 完了（\d+\.\d 秒）", lines[1]) and len(lines) == 2


def test_site_command_rebuilds_the_index_alone_and_identically(sample_run_copy):
    project, _ = sample_run_copy
    index = project / "reports" / "sample" / "index.html"
    before = index.read_bytes()
    index.unlink()
    proc = run_cli(project, "site", "--dataset", "sample")
    assert proc.returncode == 0 and index.is_file()
    assert index.read_bytes() == before  # the date comes from the manifests, not the clock
    assert (project / "reports" / "sample" / "assumptions.html").is_file()
