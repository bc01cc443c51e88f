"""analysis.official: the 総務省「全市町村の主要財政指標」 workbooks read as published.

Values checked by hand against the workbooks (opened in openpyxl, cell by cell) are written here
literally; layout variants are made by editing copies of the real R3.xlsx with openpyxl.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from analysis import official
from analysis.errors import AnalysisError
from analysis.official import OfficialDataError, fiscal_strength, read_financial_indicators
from analysis.paths import data_dir

FOLDER = data_dir() / "external" / "soumu_shuyo_zaisei_shihyo"
R3 = FOLDER / "R3.xlsx"
YEARS = {"H30.xlsx": 2018, "R1.xlsx": 2019, "R2.xlsx": 2020, "R3.xlsx": 2021}


@functools.cache
def _published(name: str) -> official.FinancialIndicators:
    """read_financial_indicators of a bundled workbook, read once per module (the tests only read it)."""
    return read_financial_indicators(FOLDER / name)


# --- the bundled files ---------------------------------------------------------------------------


def test_bundled_workbooks_are_the_published_files_unmodified():
    """data/external/.../README.md lists each file's sha256; the files must still have it."""
    readme = (FOLDER / "README.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"\| `(\w+\.xlsx)` \|.*\| `([0-9a-f]{64})` \|", readme))
    assert set(listed) == set(YEARS) == {p.name for p in FOLDER.glob("*.xlsx")}
    for name, digest in listed.items():
        assert hashlib.sha256((FOLDER / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("name,year", sorted(YEARS.items()))
def test_each_workbook_reads_1741_municipalities_and_its_fiscal_year(name, year):
    t = _published(name)
    assert t.fiscal_year == year
    assert t.header_row == 2 and "全市町村の主要財政指標" in t.title
    f = t.frame
    assert list(f.columns) == official.COLUMNS
    assert len(f) == 1741 and f["code"].is_unique
    assert f["code"].str.fullmatch(r"\d{6}").all()
    assert (f["fiscal_year"] == year).all() and f["fiscal_year"].dtype == np.int64
    for col in (
        "fiscal_strength",
        "current_balance_ratio",
        "real_debt_service_ratio",
        "future_burden_ratio",
        "laspeyres_index",
    ):
        assert f[col].dtype == np.float64
    assert f["prefecture"].nunique() == 47
    # the national average row is left out and reported, with its values
    assert t.skipped == ((1744, "全国市町村平均"),)
    assert not f["name"].str.contains("平均").any()
    assert t.national_average.index.tolist() == list(official.INDICATOR_COLUMNS.values())
    assert math.isnan(t.national_average["laspeyres_index"])  # 「－」 in the average row
    # 「-」 is NaN, never 0: every NaN is a dash that was counted, and nothing else is missing
    for col in official.INDICATOR_COLUMNS.values():
        assert f[col].isna().sum() == t.dashes[col] + t.blanks[col]
        assert t.blanks[col] == 0
    assert t.dashes["future_burden_ratio"] > 700 and t.dashes["fiscal_strength"] == 0


def test_values_match_the_workbook_cells_checked_by_hand():
    f = _published("R3.xlsx").frame.set_index("code")
    # R3.xlsx row 952: 221007 静岡県 静岡市 0.87 90 6.2 37.1 102.3
    assert f.loc["221007"].tolist() == ["静岡県", "静岡市", 2021, 0.87, 90.0, 6.2, 37.1, 102.3]
    # row 960: 富士市, 財政力指数 stored as the integer 1
    assert f.loc["222101", "fiscal_strength"] == 1.0
    # row 88: 沼田町, 実質公債費比率 -0.1 (shown ▲0.1) and 将来負担比率 「-」
    assert f.loc["014389", "real_debt_service_ratio"] == -0.1
    assert math.isnan(f.loc["014389", "future_burden_ratio"])
    # row 1741: 多良間村 「-」
    assert math.isnan(f.loc["473758", "future_burden_ratio"])
    t = _published("R3.xlsx")
    assert t.national_average.tolist()[:4] == [0.5, 88.9, 5.5, 15.4]
    assert t.dashes["future_burden_ratio"] == 816
    # R1.xlsx row 453: 宇都宮市 将来負担比率 is a real 0, which stays 0 (not confused with 「-」)
    r1 = _published("R1.xlsx").frame.set_index("code")
    assert r1.loc["092011", "future_burden_ratio"] == 0.0


def test_report_and_citation_are_japanese_and_english():
    t = _published("H30.xlsx")
    assert t.citation == "出典：総務省「全市町村の主要財政指標」（平成30年度）"
    text = t.report()
    assert "1744行「全国市町村平均」" in text and "将来負担比率 708" in text and "FY2018" in text


def test_data_dictionary_names_every_column_in_japanese_and_english():
    d = official.data_dictionary()
    assert d["column"].tolist() == official.COLUMNS
    assert d["label_ja"].str.len().gt(0).all() and d["label_en"].str.len().gt(0).all()
    assert d.set_index("column").loc["fiscal_strength", "label_ja"] == "財政力指数"
    assert d["source"].str.contains("全市町村の主要財政指標").all()


# --- layouts that differ from this year's ---------------------------------------------------------


def _edit(tmp_path: Path, name: str, change) -> Path:
    """A copy of R3.xlsx saved as `name` after change(ws)."""
    wb = openpyxl.load_workbook(R3)
    change(wb.worksheets[0])
    out = tmp_path / name
    wb.save(out)
    return out


def test_moved_columns_extra_title_rows_and_subtotals_are_read(tmp_path):
    def change(ws):
        ws.unmerge_cells("A1744:C1744")  # openpyxl does not move merged ranges with inserted rows
        ws.insert_rows(1, 2)  # two more rows above the header, one of them a note
        ws["A2"] = "（単位：％、指数）"
        ws.move_range("D3:D1746", cols=10)  # 財政力指数 moved to column N
        ws.insert_rows(1000)
        ws["A1000"] = "静岡県計"
        ws["N1000"] = 0.7

    path = _edit(tmp_path, "R3.xlsx", change)
    t = read_financial_indicators(path)
    assert t.header_row == 4 and t.fiscal_year == 2021
    assert "静岡県計" in [label for _, label in t.skipped]
    pd.testing.assert_frame_equal(t.frame, _published("R3.xlsx").frame)


def test_text_numbers_triangle_negatives_and_fullwidth_dashes(tmp_path):
    def change(ws):
        ws["F952"] = "▲ 1.5"  # 静岡市 実質公債費比率 written as text
        ws["G952"] = "－"  # full-width dash
        ws["H952"] = "１０２．３"  # full-width digits
        ws["D952"] = None  # a blank: NaN, counted separately from dashes

    t = read_financial_indicators(_edit(tmp_path, "R3.xlsx", change))
    row = t.frame.set_index("code").loc["221007"]
    assert row["real_debt_service_ratio"] == -1.5
    assert math.isnan(row["future_burden_ratio"]) and row["laspeyres_index"] == 102.3
    assert math.isnan(row["fiscal_strength"])
    assert t.blanks["fiscal_strength"] == 1 and t.dashes["future_burden_ratio"] == 817


def test_codes_stored_as_numbers_get_their_leading_zero_back(tmp_path):
    def change(ws):
        ws["A3"] = 11002  # 札幌市 011002 as a number

    f = read_financial_indicators(_edit(tmp_path, "R3.xlsx", change)).frame
    assert f["code"].iloc[0] == "011002" and len(f) == 1741


def _error(path) -> OfficialDataError:
    with pytest.raises(OfficialDataError) as info:
        read_financial_indicators(path)
    err = info.value
    assert isinstance(err, AnalysisError) and err.ja != err.en and str(err).startswith(err.where)
    return err


@pytest.mark.parametrize(
    "cell,value,ja,en",
    [
        ("D10", "abc", "数値でも「-」でもありません", "neither a number nor"),
        ("A10", "011003", "検査数字が誤っています", "wrong check digit"),
        ("A10", "備考", "コードでも全国平均・小計でもない", "neither a code nor"),
        ("A10", "011002", "2回あります", "appears twice"),
        ("C10", None, "が空です", "is empty"),
    ],
)
def test_unreadable_cells_name_file_sheet_cell_and_value(tmp_path, cell, value, ja, en):
    def change(ws):
        ws[cell] = value

    err = _error(_edit(tmp_path, "R3.xlsx", change))
    assert ja in err.ja and en in err.en
    assert "R3.xlsx" in err.where and "全市町村の主要財政指標" in err.where
    assert f"セル/cell {cell}" in err.where or "011002" in err.ja


def test_a_changed_header_is_refused_naming_the_missing_column(tmp_path):
    err = _error(_edit(tmp_path, "R3.xlsx", lambda ws: ws.__setitem__("E2", "経常収支比率（％）")))
    assert "経常収支比率" in err.ja and "経常収支比率（％）" in err.ja and "2行" in err.where
    err = _error(_edit(tmp_path, "R3b.xlsx", lambda ws: ws.__setitem__("A2", "コード")))
    assert "見出し行" in err.ja and "header row" in err.en


def test_fiscal_year_from_title_and_file_name(tmp_path):
    # title and file name disagree
    err = _error(_edit(tmp_path, "R4.xlsx", lambda ws: None))
    assert "FY2021" in err.en and "FY2022" in err.en
    # no year in the title: the file name gives it
    t = read_financial_indicators(_edit(tmp_path, "R4.xlsx", lambda ws: ws.__setitem__("A1", "全市町村の主要財政指標")))
    assert t.fiscal_year == 2022
    # no year anywhere
    err = _error(_edit(tmp_path, "shihyo.xlsx", lambda ws: ws.__setitem__("A1", "主要財政指標")))
    assert "年度が分かりません" in err.ja
    # a file name without a year is fine when the title has one
    assert read_financial_indicators(_edit(tmp_path, "download.xlsx", lambda ws: None)).fiscal_year == 2021


def test_not_a_workbook(tmp_path):
    bad = tmp_path / "R3.xlsx"
    bad.write_text("not a workbook")
    assert "開けません" in _error(bad).ja
    assert "ファイルがありません" in _error(tmp_path / "missing.xlsx").ja


# --- all years and 財政力指数 for a survey year ------------------------------------------------------


def test_long_frame_of_all_years():
    data = official.load_financial_indicators()
    assert official.available_years() == [2018, 2019, 2020, 2021]
    assert len(data) == 4 * 1741 and not data.duplicated(["code", "fiscal_year"]).any()
    assert data.groupby("fiscal_year")["code"].apply(lambda s: (s.str[:2] == "22").sum()).tolist() == [35] * 4


def test_two_workbooks_for_one_year_are_refused(tmp_path):
    shutil.copy(R3, tmp_path / "R3.xlsx")
    shutil.copy(R3, tmp_path / "R3_copy.xlsx")
    with pytest.raises(OfficialDataError, match="FY2021"):
        official.load_financial_indicators(tmp_path)


def test_fiscal_strength_uses_the_latest_year_at_or_before_the_survey_year():
    shizuoka = ["221007", "222101", "224294", "224618"]
    fs = fiscal_strength(shizuoka, 2025)
    assert fs.frame["fiscal_strength"].tolist() == [0.87, 1.0, 0.34, 0.58]  # R3 rows 952, 960, 985, 986
    assert fs.frame["vintage_fy"].tolist() == [2021] * 4 and fs.vintages == (2021,)
    assert fs.as_dict()["221007"] == (0.87, 2021)
    assert "令和3年度（FY2021）決算" in fs.note_ja and "FY2021" in fs.note_en and not fs.missing
    # FY2019 survey: the FY2019 workbook (静岡市 0.89 in R1.xlsx)
    assert fiscal_strength(["221007"], 2019).as_dict() == {"221007": (0.89, 2019)}
    # codes in any accepted spelling
    assert fiscal_strength([22100, "２２１００７"], 2021).frame.index.tolist() == ["221007", "221007"]
    # 11002: 札幌市 011002 without its zero (a number in Excel), not 110027, which no workbook has
    assert fiscal_strength([11002], 2021).as_dict() == {"011002": (0.72, 2021)}


def test_fiscal_strength_before_the_first_workbook_is_missing_and_said():
    fs = fiscal_strength(["221007", "221309"], 2017)
    assert fs.frame["fiscal_strength"].isna().all() and fs.frame["vintage_fy"].isna().all()
    assert fs.missing == ("221007", "221309") and fs.vintages == ()
    assert "FY2018〜FY2021" in fs.note_ja and "推定していません" in fs.note_ja
    assert "not imputed" in fs.note_en
    assert fs.as_dict() == {"221007": (None, None), "221309": (None, None)}


def test_fiscal_strength_of_an_unknown_code_is_missing_and_said():
    fs = fiscal_strength(["992011", "221007"], 2021)  # the fictional sample's 青葉市
    assert fs.missing == ("992011",) and fs.as_dict()["221007"] == (0.87, 2021)
    assert "公表データにない団体コード" in fs.note_ja and "992011" in fs.note_ja


def test_fiscal_strength_falls_back_per_code_to_an_earlier_year(tmp_path):
    shutil.copy(FOLDER / "R1.xlsx", tmp_path / "R1.xlsx")
    wb = openpyxl.load_workbook(FOLDER / "R2.xlsx")
    ws = wb.worksheets[0]
    row = next(r for r in range(3, 1745) if ws.cell(r, 1).value == "221007")
    ws.cell(row, 4).value = "-"  # 静岡市 not published in FY2020
    wb.save(tmp_path / "R2.xlsx")
    fs = fiscal_strength(["221007", "221309"], 2020, folder=tmp_path)
    assert fs.as_dict() == {"221007": (0.89, 2019), "221309": (0.87, 2020)}
    assert fs.vintages == (2019, 2020)


def test_fiscal_strength_rejects_a_non_integer_year():
    with pytest.raises(TypeError):
        fiscal_strength(["221007"], "2021")


def test_panel_fills_fiscal_strength_the_master_leaves_empty():
    """Real codes with an empty 財政力指数: filled per survey year from the latest published workbook
    at or before it, with the vintage stated; a value the master gives is kept."""
    import pandas as pd

    from analysis.panel import add_official_fiscal_strength

    panel = pd.DataFrame(
        {
            "code": ["221007", "221007", "222101", "992011"],
            "fiscal_year": [2019, 2025, 2025, 2025],
            "fiscal_strength": [float("nan"), float("nan"), 0.5, float("nan")],
        }
    )
    out = add_official_fiscal_strength(panel)
    r3 = official.fiscal_strength(["221007"], 2021).frame["fiscal_strength"].iloc[0]
    r1 = official.fiscal_strength(["221007"], 2019).frame["fiscal_strength"].iloc[0]
    assert out["fiscal_strength"].tolist()[:3] == [r1, r3, 0.5]  # the master's 0.5 is kept
    assert pd.isna(out["fiscal_strength"].iloc[3])  # a fictional code stays missing
    notes = out.attrs["fiscal_strength_notes"]
    assert "FY2021" in notes[2025] and "FY2019" in notes[2019] and "欠測" in notes[2025]
