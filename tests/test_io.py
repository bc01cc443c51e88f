"""The survey reader on the sample format (the messy-format suite lives in test_io_formats.py)."""

import hashlib

import pandas as pd
import pytest
from openpyxl import load_workbook

from analysis.io import SurveyError, read_survey


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(path, sample, book, **kw):
    return read_survey(path, book, sample.master(), prefecture_code="99", **kw)


def test_sample_file_reads_clean(sample, book):
    path = sample.survey_path(2025)
    before = _sha(path)
    res = _read(path, sample, book, fiscal_year=2025)
    assert res.ok and res.issues.empty
    assert res.fiscal_year == 2025 and len(res.tidy) == 35
    assert res.tidy["code"].is_monotonic_increasing and res.tidy["code"].str.len().eq(6).all()
    assert list(res.tidy.columns[:3]) == ["fiscal_year", "code", "name"]
    assert _sha(path) == before  # never written


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_csv_exports_give_the_same_tidy_table(tmp_path, sample, book, encoding):
    ref = _read(sample.survey_path(2025), sample, book, fiscal_year=2025).tidy
    ws = load_workbook(sample.survey_path(2025)).active
    rows = [["" if v is None else v for v in r] for r in ws.iter_rows(min_row=5, values_only=True)]
    frame = pd.DataFrame(rows[1:], columns=rows[0])
    path = tmp_path / "survey.csv"
    path.write_bytes(frame.to_csv(index=False, lineterminator="\r\n").encode(encoding))
    got = _read(path, sample, book, fiscal_year=2025).tidy
    pd.testing.assert_frame_equal(got, ref)


def _edit(sample, tmp_path, edits):
    wb = load_workbook(sample.survey_path(2025))
    ws = wb.active
    for (r, c), v in edits.items():
        ws.cell(row=r, column=c, value=v)
    out = tmp_path / "edited.xlsx"
    wb.save(out)
    return out


def test_problems_are_reported_with_row_column_value(tmp_path, sample, book):
    # row 6 = first data row; column 4 = first main item; column 1 = code
    path = _edit(sample, tmp_path, {(6, 4): "たぶん", (7, 1): "992013", (41, 1): None, (41, 2): "県計"})
    res = _read(path, sample, book, fiscal_year=2025)
    errors = res.errors
    bad_answer = errors[errors["value"] == "たぶん"].iloc[0]
    assert bad_answer["row"] == 6 and bad_answer["column"] == "地域住民が交流できる拠点の整備"
    assert "解釈できません" in bad_answer["reason_ja"] and bad_answer["reason_en"]
    assert (errors["value"] == "992013").any()  # wrong check digit
    assert (res.issues["reason_en"] == "total row skipped").any()
    assert (res.issues["severity"] == "warning").any()  # the municipality of row 7 is now missing
    assert not res.ok


def test_fiscal_year_contradicting_the_title_is_an_error(sample, book):
    res = _read(sample.survey_path(2025), sample, book, fiscal_year=2024)
    assert not res.ok and res.errors["reason_en"].str.contains("FY2025").any()


def test_missing_and_wrong_files(tmp_path, sample, book):
    with pytest.raises(SurveyError, match=r"ファイルがありません.*file not found"):
        _read(tmp_path / "nope.xlsx", sample, book)
    bad = tmp_path / "survey.pdf"
    bad.write_bytes(b"%PDF-1.4")
    with pytest.raises(SurveyError, match="対応していないファイル形式"):
        _read(bad, sample, book)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SurveyError, match="開けません"):
        _read(broken, sample, book)


@pytest.mark.parametrize("year", [2021, 2022, 2023, 2024, 2025])
def test_every_sample_year_reads_clean(sample, book, year):
    res = _read(sample.survey_path(year), sample, book, fiscal_year=year)
    assert res.ok and res.issues.empty and len(res.tidy) == 35
    assert res.info["source_rows"][res.tidy["code"].iloc[0]] == 6  # data starts below the 2-row header
    assert res.info["header_rows"] == (4, 5)


def test_unusable_file_error_carries_an_issue_table(tmp_path, sample, book):
    bad = tmp_path / "survey.pdf"
    bad.write_bytes(b"%PDF-1.4")
    with pytest.raises(SurveyError) as exc:
        _read(bad, sample, book)
    issue = exc.value.issues.iloc[0]
    assert issue["file"] == "survey.pdf" and issue["severity"] == "error"
    assert issue["reason_ja"] and issue["reason_en"]
