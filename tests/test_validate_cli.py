"""`python -m analysis validate FILE --dataset NAME [--fiscal-year YYYY] [--tidy-out PATH]`.

Exit 0 when valid, 1 when the file has errors, 2 when it cannot be used at all. The report names
each problem's file, sheet, row, column, value and reason in Japanese and English. Input files
(the survey and the dataset's files) are never written.
"""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import survey_fixtures as sf

from analysis.cli import main
from analysis.io import read_survey

FY = 2025


@pytest.fixture(scope="module")
def ref(sample, book):
    return read_survey(sample.survey_path(FY), book, sample.master(), fiscal_year=FY, prefecture_code="99").tidy


@pytest.fixture()
def dataset_hashes(sample):
    files = sample.input_files()
    before = {p: sf.sha256(p) for p in files}
    yield
    assert {p: sf.sha256(p) for p in files} == before, "validate wrote to a dataset file"


def run(capsys, *args):
    code = main(["validate", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_valid_file_exits_0_and_writes_the_tidy_table(tmp_path, capsys, sample, book, ref, dataset_hashes):
    out = tmp_path / "tidy.csv"
    code, stdout, _ = run(capsys, sample.survey_path(FY), "--dataset", "sample", "--fiscal-year", FY, "--tidy-out", out)
    assert code == 0
    assert "有効 / valid" in stdout and "年度 / fiscal year: 2025" in stdout and "35 / 35" in stdout
    tidy = pd.read_csv(out, dtype={"code": str}, encoding="utf-8-sig")
    assert list(tidy.columns) == ["fiscal_year", "code", "name", *book.variables]
    assert tidy["code"].str.fullmatch(r"\d{6}").all() and tidy["code"].is_monotonic_increasing
    assert tidy["code"].is_unique and len(tidy) == 35
    assert list(tidy["code"]) == list(ref["code"])
    assert (tidy["fiscal_year"] == FY).all()
    pd.testing.assert_series_equal(tidy["item_hub"].astype("boolean"), ref["item_hub"], check_names=False)


def test_messy_file_gives_the_same_tidy_table(tmp_path, capsys, book, ref, dataset_hashes):
    layout = sf.Layout(
        header_rows=3,
        cover_sheet=True,
        code_style=["str5", "int6", "name"],
        yes=["○", "有", 1, True],
        no=["×", "無", 0, False],
        missing=["―", None],
        total_rows=["県計"],
        extra_columns=["担当課"],
        blank_every=5,
    )
    src = sf.write_survey(ref, book, tmp_path / "messy.xlsx", layout)
    before = sf.sha256(src)
    out = tmp_path / "tidy.csv"
    code, stdout, _ = run(capsys, src, "--dataset", "sample", "--tidy-out", out)
    assert code == 0, stdout
    assert "合計行のため読み飛ばしました / total row skipped" in stdout
    assert "調査票にない列のため無視しました / unknown column ignored" in stdout
    assert sf.sha256(src) == before
    expected = ref.copy()
    expected["notes"] = expected["notes"].astype(object)
    got = pd.read_csv(out, dtype={"code": str}, encoding="utf-8-sig", keep_default_na=True)
    assert list(got["code"]) == list(expected["code"])
    for var in book.variables:
        if book.question(var).answers == "yes_no":
            assert got[var].astype("boolean").equals(expected[var]), var


def test_invalid_file_exits_1_and_reports_every_problem(tmp_path, capsys, sample, book, ref, dataset_hashes):
    codes_ = list(ref["code"])
    grid = sf.build_grid(ref, book)
    grid.set(codes_[0], "item_hub", "たぶん").set(codes_[1], "code", sf.wrong_check_digit(codes_[1]))
    grid.set(codes_[2], "code", "011002").duplicate(codes_[3])
    src = sf.save(grid, tmp_path / "bad.xlsx")
    out = tmp_path / "tidy.csv"
    code, stdout, _ = run(capsys, src, "--dataset", "sample", "--fiscal-year", FY, "--tidy-out", out)
    assert code == 1
    # 4 cell errors, plus the two municipalities whose rows could not be read are missing (response rate)
    assert "無効 / invalid" in stdout and "エラー 5 件" in stdout and "回答率 33/35" in stdout
    line = next(ln for ln in stdout.splitlines() if "たぶん" in ln)
    for part in (
        "[エラー/error]",
        "ファイル『bad.xlsx』",
        "シート『回答一覧』",
        f"{grid.excel_row(codes_[0])}行",
        "列『地域住民が交流できる拠点の整備』",
        "値『たぶん』",
        "解釈できません",
        "unmappable answer",
    ):
        assert part in line, (part, line)
    assert "wrong check digit" in stdout and "another prefecture" in stdout and "duplicate municipality" in stdout
    assert "書き出していません" in stdout and not out.exists()


def test_fiscal_year_contradiction_exits_1(capsys, sample, dataset_hashes):
    code, stdout, _ = run(capsys, sample.survey_path(FY), "--dataset", "sample", "--fiscal-year", 2024)
    assert code == 1 and "FY2025 but FY2024" in stdout and "令和7年度" in stdout


@pytest.mark.parametrize(
    "maker, message",
    [
        (lambda d: sf.empty(d / "empty.xlsx"), "空です"),
        (lambda d: sf.encrypted_ooxml(d / "locked.xlsx"), "パスワード"),
        (lambda d: sf.pdf(d / "survey.pdf"), "対応していないファイル形式"),
    ],
)
def test_unusable_file_exits_2_with_a_report(tmp_path, capsys, maker, message, dataset_hashes):
    path = maker(tmp_path)
    out = tmp_path / "tidy.csv"
    code, stdout, stderr = run(capsys, path, "--dataset", "sample", "--tidy-out", out)
    assert code == 2
    assert "読み込めません / unusable file" in stdout and message in stdout and message in stderr
    assert f"ファイル『{path.name}』" in stdout and not out.exists()


def test_header_only_csv_exits_2(tmp_path, capsys, book, ref):
    grid = sf.build_grid(ref.iloc[:0], book, sf.Layout(title=[], header_rows=1), fiscal_year=FY)
    path = sf.save(grid, tmp_path / "header_only.csv", encoding="cp932")
    code, stdout, _ = run(capsys, path, "--dataset", "sample", "--fiscal-year", FY)
    assert code == 2 and "header only" in stdout


def test_issues_out_and_refusing_to_overwrite_an_input(tmp_path, capsys, sample, dataset_hashes):
    issues = tmp_path / "issues.csv"
    code, _, _ = run(
        capsys, sample.survey_path(FY), "--dataset", "sample", "--fiscal-year", 2024, "--issues-out", issues
    )
    assert code == 1
    frame = pd.read_csv(issues, encoding="utf-8-sig")
    assert {"file", "sheet", "row", "column", "value", "severity", "reason_ja", "reason_en"} <= set(frame.columns)
    code, _, stderr = run(capsys, sample.survey_path(FY), "--dataset", "sample", "--tidy-out", sample.survey_path(FY))
    assert code == 2 and "入力ファイル" in stderr


def test_unknown_dataset_exits_2(capsys, sample):
    code, _, stderr = run(capsys, sample.survey_path(FY), "--dataset", "no_such_dataset")
    assert code == 2 and "no_such_dataset" in stderr


def test_module_entry_point(tmp_path, root, sample, dataset_hashes):
    out = tmp_path / "tidy.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "validate",
            str(sample.survey_path(2023)),
            "--dataset",
            "sample",
            "--tidy-out",
            str(out),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "有効 / valid" in proc.stdout and out.exists()


def test_report_says_what_to_do(tmp_path):
    import contextlib
    import io as _io

    from openpyxl import load_workbook

    from analysis.cli import main
    from analysis.datasets import load_dataset

    wb = load_workbook(load_dataset("sample").survey_path(2025))
    wb.active.cell(row=8, column=4, value="たぶん")
    bad = tmp_path / "bad.xlsx"
    wb.save(bad)
    buf = _io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["validate", str(bad), "--dataset", "sample", "--fiscal-year", "2025"])
    out = buf.getvalue()
    assert code == 1
    assert "対処 / what to do:" in out and "answer_maps" in out and "書き換えることはありません" in out
