"""Incremental runs: exactly the reports whose inputs, parameters, codebook or code changed re-run."""

import shutil

import pytest
from conftest import SAMPLE_RUN_ARGS, make_project_copy, run_cli
from openpyxl import load_workbook

from analysis import runner


def _status(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("fiscal_year_report", "trends"):
            out[parts[1]] = parts[2]
        elif len(parts) >= 3 and parts[0] == "data_quality":
            out[f"quality/{parts[1]}"] = parts[2]
    return out


def _printed(base) -> list[str]:
    """The PDFs and slide images under reports/<dataset>/ (analysis.pdf prints them after the jobs)."""
    return sorted(
        p.relative_to(base).as_posix() for p in base.rglob("*") if p.suffix == ".pdf" or p.name == "summary.png"
    )


@pytest.mark.full
def test_each_kind_of_change_reruns_exactly_what_it_affects(tmp_path):
    project = make_project_copy(tmp_path / "p")
    base = project / "reports" / "sample"
    # --no-pdf (HTML only) until the last steps: what is re-run does not depend on printing
    args = ("run", "--dataset", "sample", "--years", "2023-2025", "--jobs", "2", "--no-progress", "--no-pdf")
    first = run_cli(project, *args)
    assert first.returncode == 0, first.stderr[-2000:]
    assert set(_status(first.stdout).values()) == {"成功"}
    assert _printed(base) == [] and (base / "FY2025" / "summary.html").is_file()

    # nothing changed: everything is up to date
    assert set(_status(run_cli(project, *args).stdout).values()) == {"最新"}

    # one survey file changed: that year, the later years (the sample has targets, so a year's
    # report measures progress from the first surveyed year on) and the trends report
    survey = project / "data" / "raw" / "sample" / "survey_FY2024.xlsx"
    wb = load_workbook(survey)
    wb.active.cell(row=6, column=22, value="備考を追記")
    wb.save(survey)
    st = _status(run_cli(project, *args).stdout)
    assert st == {
        "FY2023": "最新",
        "FY2024": "成功",
        "FY2025": "成功",
        "全年度": "成功",
        "quality/FY2023": "最新",
        "quality/FY2024": "成功",
        "quality/FY2025": "最新",
    }

    # a parameter changed: the fiscal-year reports (the trends report has no such parameter)
    st = _status(run_cli(project, *args, "--exposure-lag", "1").stdout)
    assert st == {
        "FY2023": "成功",
        "FY2024": "成功",
        "FY2025": "成功",
        "全年度": "最新",
        "quality/FY2023": "最新",
        "quality/FY2024": "最新",
        "quality/FY2025": "最新",
    }

    # a codebook entry changed: everything
    cb = project / "data" / "codebook" / "survey.yaml"
    cb.write_text(
        cb.read_text(encoding="utf-8").replace("label_en: Advisor dispatch", "label_en: Advisors"), encoding="utf-8"
    )
    st = _status(run_cli(project, *args, "--exposure-lag", "1").stdout)
    assert set(st.values()) == {"成功"}

    # the same run without --no-pdf: nothing to re-run, but the PDFs it did not print are printed
    printing = run_cli(project, *args[:-1], "--exposure-lag", "1")
    assert printing.returncode == 0 and set(_status(printing.stdout).values()) == {"最新"}
    printed = _printed(base)
    assert {"FY2025/report.pdf", "FY2025/summary.pdf", "FY2025/summary.png", "trends/report.pdf"} <= set(printed)
    assert "quality/FY2023/report.pdf" in printed and any(p.startswith("profiles/FY2025/") for p in printed)

    # --force re-runs even when nothing changed (here one year's reports and the trends report);
    # with --no-pdf no PDF older than its page is left, and the others stay
    forced = run_cli(project, *args[:4], "2025", *args[5:], "--exposure-lag", "1", "--force")
    assert _status(forced.stdout) == {"FY2025": "成功", "全年度": "成功", "quality/FY2025": "成功"}
    left = [p for p in _printed(base) if not p.startswith("profiles/")]
    assert "FY2024/report.pdf" in left and not [
        p for p in left if p.startswith(("FY2025/", "trends/", "quality/FY2025/"))
    ]
    for pdf in (base / "profiles" / "FY2025").glob("*.pdf"):  # profile pages kept their bytes: still current
        assert pdf.stat().st_mtime_ns >= pdf.with_suffix(".html").stat().st_mtime_ns


def test_package_code_changes_are_detected(tmp_path, root):
    pkg = tmp_path / "analysis"
    shutil.copytree(root / "src" / "analysis", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    before = runner.code_hash(pkg)
    assert before == runner.code_hash(root / "src" / "analysis")
    (pkg / "tables.py").write_text((pkg / "tables.py").read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert runner.code_hash(pkg) != before
    css = next(pkg.rglob("*.css"))
    shutil.copy2(root / "src" / "analysis" / "tables.py", pkg / "tables.py")
    assert runner.code_hash(pkg) == before
    css.write_text(css.read_text(encoding="utf-8") + "\n/* x */\n", encoding="utf-8")
    assert runner.code_hash(pkg) != before


def test_a_manifest_with_another_code_hash_is_stale(tmp_path):
    import json

    d = tmp_path / "FY2025"
    d.mkdir()
    fp = {"parameters": {"a": 1}, "inputs": {"x": "1"}, "code_hash": "abc"}
    (d / "manifest.json").write_text(json.dumps({"status": "ok", **fp}), encoding="utf-8")
    assert runner.is_up_to_date(d, fp)
    assert not runner.is_up_to_date(d, {**fp, "code_hash": "abd"})
    assert not runner.is_up_to_date(d, {**fp, "inputs": {"x": "2"}})
    (d / "manifest.json").write_text(json.dumps({"status": "failed", **fp}), encoding="utf-8")
    assert not runner.is_up_to_date(d, fp)


def test_an_interrupted_swap_is_undone(tmp_path):
    base = tmp_path / "reports" / "sample"
    (base / ".old-FY2025-4242").mkdir(parents=True)
    (base / ".old-FY2025-4242" / "report.html").write_text("good", encoding="utf-8")
    (base / "quality" / ".old-FY2024-7").mkdir(parents=True)
    (base / "FY2023").mkdir()
    (base / ".old-FY2023-9").mkdir()  # the swap completed: the leftover is removed
    restored = runner.restore_interrupted(base)
    assert (base / "FY2025" / "report.html").read_text(encoding="utf-8") == "good"
    assert (base / "quality" / "FY2024").is_dir()
    assert not list(base.rglob(".old-*")) and len(restored) == 2


def test_an_unchanged_run_skips_the_finishing_step_and_a_deleted_page_is_made_again(sample_run_copy):
    project, _ = sample_run_copy  # a complete run (PDFs printed), copied with its files' times
    base = project / "reports" / "sample"
    args = SAMPLE_RUN_ARGS
    # the record names the inputs by path: in this copy the first run finishes once more
    moved = run_cli(project, *args)
    assert moved.returncode == 0 and set(_status(moved.stdout).values()) == {"最新"}
    state = base / ".site-state.json"
    first = state.stat().st_mtime_ns
    profile = sorted((base / "profiles" / "FY2025").glob("*.html"))[0]
    # nothing changed: every report is up to date and the finishing step is not done again
    again = run_cli(project, *args)
    assert again.returncode == 0 and set(_status(again.stdout).values()) == {"最新"}
    assert state.stat().st_mtime_ns == first
    # a published page deleted by hand: the next run notices and makes it again
    profile.unlink()
    third = run_cli(project, *args)
    assert third.returncode == 0 and set(_status(third.stdout).values()) == {"最新"}
    assert profile.is_file() and state.stat().st_mtime_ns > first


def test_a_changed_survey_reruns_its_year_the_later_years_and_the_trends(sample_run_copy):
    """The quick suite's form of test_each_kind_of_change_reruns_exactly_what_it_affects: one survey edited."""
    project, _ = sample_run_copy
    survey = project / "data" / "raw" / "sample" / "survey_FY2024.xlsx"
    wb = load_workbook(survey)
    wb.active.cell(row=6, column=22, value="備考を追記")
    wb.save(survey)
    # one worker (one kernel warmed up, not two): what re-runs does not depend on --jobs
    jobs = SAMPLE_RUN_ARGS.index("--jobs")
    args = (*SAMPLE_RUN_ARGS[: jobs + 1], "1", *SAMPLE_RUN_ARGS[jobs + 2 :], "--no-pdf")
    proc = run_cli(project, *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = {f"FY{y}": "最新" for y in (2021, 2022, 2023)} | {
        f"quality/FY{y}": "最新" for y in (2021, 2022, 2023, 2025)
    }
    expected |= {"FY2024": "成功", "FY2025": "成功", "全年度": "成功", "quality/FY2024": "成功"}
    assert _status(proc.stdout) == expected
    # the re-made reports have no PDF yet (--no-pdf removed the outdated ones): the index says so
    index = (project / "reports" / "sample" / "index.html").read_text(encoding="utf-8")
    assert "PDF 版のないレポートが 4 件あります" in index and "--no-pdf</code> を付けずに" in index
