"""The reader on every shape a prefecture sends, every defect, and property / fuzz tests.

All fixture files are made by `survey_fixtures` from the clean sample's FY2025 table, in tmp
directories. Every read goes through `read_checked`, which also asserts that the input file
(and its folder) is byte-for-byte unchanged afterwards.
"""

from __future__ import annotations

import contextlib
import unicodedata
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import survey_fixtures as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import codes
from analysis.codebook import answer_key
from analysis.io import ISSUE_COLUMNS, SurveyError, read_survey
from analysis.schema import check_tidy

FY = 2025
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def master(sample):
    return sample.master()


@pytest.fixture(scope="module")
def ref(sample, book, master):
    res = read_survey(sample.survey_path(FY), book, master, fiscal_year=FY, prefecture_code="99")
    assert res.ok and res.issues.empty
    return res.tidy


def _folder_state(folder: Path) -> dict:
    return {p.name: sf.sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}


def read_checked(path: Path, book, master, fiscal_year=FY, prefecture_code="99", **kw):
    """read_survey, asserting that the input file and its folder are left untouched."""
    path = Path(path)
    before = _folder_state(path.parent)
    try:
        return read_survey(path, book, master, fiscal_year=fiscal_year, prefecture_code=prefecture_code, **kw)
    finally:
        assert _folder_state(path.parent) == before, "the reader changed or created a file"


def accounted_for(grid: sf.Grid, res) -> list[int]:
    """Excel rows below the header with content that are neither read nor mentioned in an issue."""
    read_rows = set(res.info["source_rows"].values())
    issue_rows = set(int(r) for r in res.issues["row"].dropna())
    lost = []
    for r in range(grid.header_end + 1, len(grid.rows)):
        row = grid.rows[r]
        if any(v is not None and str(v).strip() != "" for v in row) and (r + 1) not in read_rows | issue_rows:
            lost.append(r + 1)
    return lost


# --- formats that must give the same tidy table as the clean sample ---------------------------

ALL_YES = ["○", "〇", "◯", "有", "実施", "はい", 1, "1", "TRUE", True, "１", "ＴＲＵＥ"]
ALL_NO = ["×", "✕", "無", "未実施", "いいえ", 0, "0", "FALSE", False, "０"]
ALL_MISSING = ["―", "-", "－", None, ""]

XLSX_LAYOUTS = {
    "sample_shape": sf.Layout(),
    "no_title_one_header_row": sf.Layout(title=[], header_rows=1),
    "five_title_rows": sf.Layout(
        title=[
            "令和7年度 包括的な支援体制に係る市町アンケート調査",
            "架空県 健康福祉部",
            "",
            "回答期限：令和7年6月30日",
            "",
        ]
    ),
    "two_header_rows_unmerged": sf.Layout(merge=False),
    "three_header_rows_split_jusou": sf.Layout(header_rows=3),
    "three_header_rows_unmerged": sf.Layout(header_rows=3, merge=False),
    "three_header_rows_every_question_split": sf.Layout(header_rows=3, split_all=True),
    "header_aliases": sf.Layout(header_style="alias"),
    "numbered_questions": sf.Layout(header_style="numbered"),
    "answer_hints_in_header": sf.Layout(header_style="hint"),
    "cover_sheet_first": sf.Layout(cover_sheet=True),
    "codes_5_digit": sf.Layout(code_style="str5"),
    "codes_as_numbers": sf.Layout(code_style="int6"),
    "codes_as_5_digit_numbers": sf.Layout(code_style="int5"),
    "codes_as_floats": sf.Layout(code_style="float6"),
    "codes_full_width": sf.Layout(code_style="fullwidth"),
    "codes_hyphenated": sf.Layout(code_style="hyphen"),
    "names_in_code_column": sf.Layout(code_style="name"),
    "names_only_no_code_column": sf.Layout(code_style="none"),
    "blank_codes_names_given": sf.Layout(code_style="blank"),
    "names_with_prefecture_prefix": sf.Layout(name_style="prefixed"),
    "codes_only_no_name_column": sf.Layout(name_style="none"),
    "every_answer_spelling": sf.Layout(yes=ALL_YES, no=ALL_NO, missing=ALL_MISSING),
    "excel_booleans": sf.Layout(yes=True, no=False),
    "numeric_1_0": sf.Layout(yes=1, no=0, missing="―"),
    "status_spellings": sf.Layout(
        status={
            "implemented": ["実施", "実施済み", "実施中"],
            "preparing": ["移行準備", "移行準備中", "準備中"],
            "not_implemented": ["未実施", "予定なし"],
        }
    ),
    "blank_rows": sf.Layout(blank_every=4),
    "total_rows": sf.Layout(total_rows=["計", "合計", "県計"]),
    "extra_columns": sf.Layout(extra_columns=["担当課", "電話番号", "記入者"]),
    "foot_notes": sf.Layout(notes_below=["※ ○：実施、×：未実施", "注）令和7年4月1日現在"]),
    "reversed_rows_and_columns": sf.Layout(shuffle_columns=True, row_order="reverse"),
}

CSV_VARIANTS = {
    "cp932_crlf": dict(encoding="cp932", newline="\r\n"),
    "utf8_lf": dict(encoding="utf-8", newline="\n"),
    "utf8_bom_crlf": dict(encoding="utf-8-sig", newline="\r\n"),
    "utf16_tab": dict(encoding="utf-16", newline="\r\n", delimiter="\t"),
}
CSV_LAYOUTS = {
    "plain_header": sf.Layout(title=[], header_rows=1, merge=False),
    "title_and_group_rows": sf.Layout(merge=False),
    "three_header_rows": sf.Layout(header_rows=3, merge=False),
    "messy": sf.Layout(
        merge=False,
        code_style=["str5", "int6", "fullwidth", "name"],
        yes=["○", "有", "1", "TRUE"],
        no=["×", "無", "0", "FALSE"],
        missing=["―", "-", "－", ""],
        blank_every=7,
        total_rows=["県計"],
        extra_columns=["備考2"],
    ),
}


@pytest.mark.parametrize("name", sorted(XLSX_LAYOUTS))
def test_xlsx_shapes_read_like_the_sample(tmp_path, book, master, ref, name):
    grid = sf.build_grid(ref, book, XLSX_LAYOUTS[name])
    path = sf.save(grid, tmp_path / f"{name}.xlsx")
    res = read_checked(path, book, master)
    pd.testing.assert_frame_equal(res.tidy, ref)
    assert res.ok, res.errors
    assert accounted_for(grid, res) == []


@pytest.mark.parametrize("layout", sorted(CSV_LAYOUTS))
@pytest.mark.parametrize("variant", sorted(CSV_VARIANTS))
def test_csv_shapes_read_like_the_sample(tmp_path, book, master, ref, variant, layout):
    grid = sf.build_grid(ref, book, CSV_LAYOUTS[layout])
    path = sf.save(grid, tmp_path / "survey.csv", **CSV_VARIANTS[variant])
    res = read_checked(path, book, master)
    pd.testing.assert_frame_equal(res.tidy, ref)
    assert res.ok, res.errors
    assert res.info["format"] == "csv"
    assert accounted_for(grid, res) == []


def test_skipped_and_ignored_things_are_reported(tmp_path, book, master, ref):
    layout = sf.Layout(
        total_rows=["計", "合計", "県計"], extra_columns=["担当課"], cover_sheet=True, notes_below=["※ 架空データ"]
    )
    res = read_checked(sf.write_survey(ref, book, tmp_path / "s.xlsx", layout), book, master)
    info = res.issues[res.issues["severity"] == "info"]
    totals = info[info["reason_en"] == "total row skipped"]
    assert sorted(totals["value"]) == sorted(["計", "合計", "県計"])
    extra = info[info["reason_en"] == "unknown column ignored"]
    assert list(extra["column"]) == ["担当課"] and extra["row"].notna().all()
    assert info["reason_en"].str.contains("表紙").any() or info["reason_ja"].str.contains("表紙").any()
    assert (info["reason_en"] == "note row skipped").any()
    assert res.sheet == "回答一覧" and res.ok


def test_codes_that_lost_their_leading_zero(tmp_path, root, book, master, ref):
    """A real prefecture with a leading zero (01 北海道): numbers 11002 and 1100 mean 011002."""
    national = codes.load_master(root / "data" / "external" / "municipality_codes.csv")
    tidy01, master01 = sf.relabel(ref, master, national, "01")
    for style, suffix in (("int6", ".xlsx"), ("int5", ".xlsx"), ("int6", ".csv"), ("str5", ".csv")):
        path = sf.write_survey(tidy01, book, tmp_path / f"{style}{suffix}", sf.Layout(code_style=style))
        res = read_checked(path, book, master01, prefecture_code="01")
        pd.testing.assert_frame_equal(res.tidy, tidy01)
        assert res.ok, res.errors


def test_title_fiscal_year_is_used_when_none_is_requested(tmp_path, book, master, ref):
    path = sf.write_survey(ref, book, tmp_path / "s.xlsx")
    res = read_checked(path, book, master, fiscal_year=None)
    assert res.fiscal_year == FY and res.ok
    pd.testing.assert_frame_equal(res.tidy, ref)


def test_unknown_fiscal_year_is_a_warning(tmp_path, book, master, ref):
    path = sf.write_survey(ref, book, tmp_path / "s.csv", sf.Layout(title=[], header_rows=1))
    res = read_checked(path, book, master, fiscal_year=None)
    assert res.ok and res.fiscal_year is None and res.tidy["fiscal_year"].isna().all()
    assert res.warnings["reason_en"].str.contains("fiscal year unknown").any()


def test_csv_with_the_wrong_extension_is_read_by_content(tmp_path, book, master, ref):
    csv_path = sf.write_survey(ref, book, tmp_path / "s.csv", sf.Layout(merge=False))
    renamed = tmp_path / "s_named.xlsx"
    renamed.write_bytes(csv_path.read_bytes())
    res = read_checked(renamed, book, master)
    pd.testing.assert_frame_equal(res.tidy, ref)
    assert res.warnings["reason_en"].str.contains("holds CSV text").any()


def test_repeated_header_and_hint_rows(tmp_path, book, master, ref):
    """A header repeated after a page break, and a row of answer hints under the header."""
    grid = sf.build_grid(ref, book)
    header = list(grid.rows[grid.header_end])
    hints = ["", ""] + [
        "（○/×）" if c not in ("code", "name", "jusou_status", "notes") else "" for c in grid.columns[2:]
    ]
    grid.rows.insert(grid.header_end + 1, hints)
    grid.row_of = {c: r + 1 for c, r in grid.row_of.items()}
    middle = grid.row_of[ref["code"].iloc[20]]
    grid.rows.insert(middle, header)
    grid.row_of = {c: (r + 1 if r >= middle else r) for c, r in grid.row_of.items()}
    res = read_checked(sf.save(grid, tmp_path / "s.xlsx"), book, master)
    pd.testing.assert_frame_equal(res.tidy, ref)
    assert res.ok
    assert _only(res, "repeated header row skipped", "info")["row"] == middle + 1
    assert res.info["header_rows"][1] == grid.header_end + 2  # the hint row belongs to the header
    # a row under the header that the header match does not explain is reported, not dropped silently
    grid.rows[grid.header_end + 1][grid.col("item_hub")] = "要確認"
    res = read_checked(sf.save(grid, tmp_path / "s2.xlsx"), book, master)
    pd.testing.assert_frame_equal(res.tidy, ref)
    assert _only(res, "treated as part of the header", "info")["value"] == "要確認"


def test_several_sheets(tmp_path, book, master, ref):
    """A hidden old sheet and a second table: the best visible table is read, the rest reported."""
    from openpyxl import load_workbook

    path = sf.write_survey(ref, book, tmp_path / "s.xlsx", sf.Layout(cover_sheet=True))
    wb = load_workbook(path)
    hidden = wb.copy_worksheet(wb["回答一覧"])
    hidden.title = "前年度"
    hidden.sheet_state = "hidden"
    wb.move_sheet("前年度", offset=-2)
    copy = wb.copy_worksheet(wb["回答一覧"])
    copy.title = "回答一覧 (2)"
    wb.save(path)
    res = read_checked(path, book, master)
    pd.testing.assert_frame_equal(res.tidy, ref)
    assert res.sheet == "回答一覧"
    assert "回答一覧 (2)" in _only(res, "also hold a survey table", "warning")["reason_en"]
    assert "前年度" in _only(res, "hidden sheet", "info")["reason_en"]


# --- defects: each one is an issue with file, sheet, row, column, value and reasons -----------


def _only(res, reason_en: str, severity: str = "error") -> pd.Series:
    hits = res.issues[
        (res.issues["severity"] == severity) & res.issues["reason_en"].str.contains(reason_en, regex=False)
    ]
    assert len(hits) == 1, res.issues.to_string()
    hit = hits.iloc[0]
    assert hit["reason_ja"] and hit["reason_en"] and hit["file"]
    return hit


def _defect(tmp_path, book, master, ref, edit, suffix=".xlsx", layout=None, **kw):
    grid = sf.build_grid(ref, book, layout)
    edit(grid)
    path = sf.save(grid, tmp_path / f"defect{suffix}")
    return grid, read_checked(path, book, master, **kw)


def test_unknown_code(tmp_path, book, master, ref):
    code = ref["code"].iloc[3]
    bad = sf.unknown_code(master, "99")
    grid, res = _defect(tmp_path, book, master, ref, lambda g: g.set(code, "code", bad))
    hit = _only(res, "unknown municipality code")
    assert (hit["row"], hit["column"], hit["value"], hit["sheet"]) == (
        grid.excel_row(code),
        "市町村コード",
        bad,
        "回答一覧",
    )
    assert hit["cell"] == f"A{grid.excel_row(code)}" and "マスタ" in hit["reason_ja"]
    assert not res.ok and code not in set(res.tidy["code"])
    assert _only(res, f"no answer from municipality {code}", "warning")["value"] == code


def test_wrong_check_digit(tmp_path, book, master, ref):
    code = ref["code"].iloc[0]
    bad = sf.wrong_check_digit(code)
    grid, res = _defect(tmp_path, book, master, ref, lambda g: g.set(code, "code", bad))
    hit = _only(res, "wrong check digit")
    assert hit["value"] == bad and hit["row"] == grid.excel_row(code) and code in hit["reason_en"]
    assert "検査数字" in hit["reason_ja"]


def test_municipality_of_another_prefecture(tmp_path, book, master, ref):
    code = ref["code"].iloc[5]
    grid, res = _defect(tmp_path, book, master, ref, lambda g: g.set(code, "code", "011002"))  # 札幌市
    hit = _only(res, "another prefecture")
    assert hit["value"] == "011002" and hit["row"] == grid.excel_row(code)
    assert "札幌市" in hit["reason_ja"] and "他の都道府県" in hit["reason_ja"]


def test_duplicate_municipality(tmp_path, book, master, ref):
    code = ref["code"].iloc[7]
    grid, res = _defect(tmp_path, book, master, ref, lambda g: g.duplicate(code))
    hit = _only(res, "duplicate municipality")
    assert hit["row"] == grid.excel_row(code) + 1 and hit["value"] == code
    assert str(grid.excel_row(code)) in hit["reason_ja"]
    assert res.tidy["code"].is_unique


def test_missing_municipality_is_a_warning(tmp_path, book, master, ref):
    code = ref["code"].iloc[10]
    _, res = _defect(tmp_path, book, master, ref, lambda g: g.remove(code))
    hit = _only(res, f"no answer from municipality {code}", "warning")
    assert hit["value"] == code and res.ok and len(res.tidy) == len(ref) - 1
    assert res.info["missing"] == [code]


def test_unmappable_answer(tmp_path, book, master, ref):
    code = ref["code"].iloc[2]
    grid, res = _defect(tmp_path, book, master, ref, lambda g: g.set(code, "sup_workshop", "たぶん"))
    hit = _only(res, "unmappable answer for sup_workshop")
    assert (hit["row"], hit["value"]) == (grid.excel_row(code), "たぶん")
    assert hit["column"] == book.question("sup_workshop").header_ja
    row = res.tidy.set_index("code").loc[code]
    assert pd.isna(row["sup_workshop"])  # not guessed


def test_unmappable_status(tmp_path, book, master, ref):
    code = ref["code"].iloc[2]
    _, res = _defect(tmp_path, book, master, ref, lambda g: g.set(code, "jusou_status", "検討中"))
    assert _only(res, "unmappable answer for jusou_status")["value"] == "検討中"


def test_missing_required_question(tmp_path, book, master, ref):
    _, res = _defect(tmp_path, book, master, ref, lambda g: g.drop_column("item_welfare_plan"))
    hit = _only(res, "required question column missing: item_welfare_plan")
    assert hit["column"] == "地域福祉計画への位置付け"
    assert res.tidy["item_welfare_plan"].isna().all()


def test_fiscal_year_contradicting_the_title(tmp_path, book, master, ref):
    layout = sf.Layout(title=["令和6年度 包括的な支援体制に係る市町アンケート調査 集計表"])
    _, res = _defect(tmp_path, book, master, ref, lambda g: None, layout=layout)
    hit = _only(res, "FY2024 but FY2025")
    assert (hit["row"], hit["cell"]) == (1, "A1") and "令和6年度" in hit["value"]


def test_unknown_name(tmp_path, book, master, ref):
    code = ref["code"].iloc[4]
    grid, res = _defect(
        tmp_path, book, master, ref, lambda g: g.set(code, "name", "存在しない町"), layout=sf.Layout(code_style="none")
    )
    hit = _only(res, "name not in the master")
    assert hit["value"] == "存在しない町" and hit["row"] == grid.excel_row(code)


def test_code_and_name_that_contradict(tmp_path, book, master, ref):
    a, b = ref["code"].iloc[0], ref["name"].iloc[1]
    _, res = _defect(tmp_path, book, master, ref, lambda g: g.set(a, "name", b))
    assert _only(res, "contradicts the name")["value"] == b


def test_name_spellings_resolve_after_nfkc(tmp_path, book, master, ref):
    """Names in place of codes: full-width spaces, ケ for ヶ, a prefecture or 郡 prefix."""
    grid = sf.build_grid(ref, book, sf.Layout(code_style="none"))
    codes_ = list(ref["code"])
    grid.set(codes_[0], "name", "青葉　市")
    grid.set(codes_[1], "name", "霞ケ丘市")
    grid.set(codes_[12], "name", "架空郡" + ref["name"].iloc[12])
    res = read_checked(sf.save(grid, tmp_path / "s.csv", encoding="cp932"), book, master)
    pd.testing.assert_frame_equal(res.tidy, ref)
    assert res.ok and res.issues.empty


def test_names_shared_by_several_municipalities(tmp_path, book, master, ref):
    """Names are not unique nationally: 伊達市 alone is ambiguous, a prefecture prefix or a code settles it."""
    extra = pd.DataFrame({"code": ["012335", "072133"], "name": ["伊達市", "伊達市"]})
    master2 = pd.concat([master, extra], ignore_index=True).sort_values("code").reset_index(drop=True)
    grid = sf.build_grid(ref, book, sf.Layout(code_style="blank"))
    ambiguous = grid.append_row({"name": "伊達市", "item_hub": "○"})
    grid.append_row({"name": "北海道伊達市", "item_hub": "○"})
    grid.append_row({"code": "072133", "name": "伊達市", "item_hub": "×"})
    res = read_checked(sf.save(grid, tmp_path / "s.xlsx"), book, master2, prefecture_code=None)
    hit = _only(res, "ambiguous municipality name")
    assert hit["row"] == ambiguous and "012335" in hit["reason_ja"] and "072133" in hit["reason_ja"]
    got = res.tidy.set_index("code")["item_hub"]
    assert got["012335"] and not got["072133"]
    assert not res.issues["reason_en"].str.contains("contradicts").any()


def test_duplicate_question_column(tmp_path, book, master, ref):
    def edit(g):
        j = g.col("item_hub")
        for row in g.rows[g.header_end - 1 :]:
            row.append(row[j] if j < len(row) else None)
        g.columns.append("item_hub")

    _, res = _defect(tmp_path, book, master, ref, edit)
    assert "item_hub" in _only(res, "duplicate column")["reason_en"]


def test_formula_without_a_cached_result(tmp_path, book, master, ref):
    code = ref["code"].iloc[0]
    _, res = _defect(tmp_path, book, master, ref, lambda g: g.set(code, "item_hub", '=IF(TRUE,"○","×")'))
    assert _only(res, "formula without a saved result")["cell"].startswith("D")


def test_values_in_a_column_without_header(tmp_path, book, master, ref):
    code = ref["code"].iloc[0]

    def edit(g):
        g.set_cell(g.row_of[code], len(g.columns) + 1, "○")

    _, res = _defect(tmp_path, book, master, ref, edit)
    assert _only(res, "column without a header", "warning")["value"] == "○"


def test_row_with_answers_but_no_municipality(tmp_path, book, master, ref):
    code = ref["code"].iloc[0]
    grid, res = _defect(tmp_path, book, master, ref, lambda g: g.set(code, "code", None).set(code, "name", None))
    assert _only(res, "without code or name")["row"] == grid.excel_row(code)


def test_every_problem_is_reported_at_once(tmp_path, book, master, ref):
    c = list(ref["code"])

    def edit(g):
        g.set(c[0], "code", sf.unknown_code(master, "99"))
        g.set(c[1], "code", sf.wrong_check_digit(c[1]))
        g.set(c[2], "code", "011002")
        g.set(c[3], "item_hub", "たぶん")
        g.set(c[4], "ch_manpower", "?")
        g.duplicate(c[5])
        g.remove(c[6])
        g.drop_column("sup_advisor")

    layout = sf.Layout(title=["令和6年度 包括的な支援体制に係る市町アンケート調査"], total_rows=["県計"])
    for suffix in (".xlsx", ".csv"):
        grid, res = _defect(tmp_path, book, master, ref, edit, suffix=suffix, layout=layout)
        errors = res.errors
        for reason in (
            "unknown municipality code",
            "wrong check digit",
            "another prefecture",
            "unmappable answer for item_hub",
            "unmappable answer for ch_manpower",
            "duplicate municipality",
            "required question column missing: sup_advisor",
            "FY2024",
        ):
            assert errors["reason_en"].str.contains(reason, regex=False).any(), (suffix, reason)
        assert res.warnings["reason_en"].str.contains(f"no answer from municipality {c[6]}").any()
        assert (res.issues["reason_en"] == "total row skipped").any()
        assert list(res.issues.columns) == ISSUE_COLUMNS
        assert accounted_for(grid, res) == []
        # what could be read was read
        assert len(res.tidy) == len(ref) - 4


# --- unusable files: SurveyError with an issue carrying the reasons ---------------------------


def _unusable(path: Path, book, master, match: str):
    with pytest.raises(SurveyError, match=match) as exc:
        read_checked(path, book, master)
    issues = exc.value.issues
    assert list(issues.columns) == ISSUE_COLUMNS
    err = issues[issues["severity"] == "error"]
    assert len(err) >= 1 and (err["file"] == path.name).all()
    assert err["reason_ja"].str.len().gt(0).all() and err["reason_en"].str.len().gt(0).all()
    return exc.value


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_empty_file(tmp_path, book, master, suffix):
    _unusable(sf.empty(tmp_path / f"empty{suffix}"), book, master, "空です.*empty")


def test_whitespace_only_csv(tmp_path, book, master):
    path = tmp_path / "blank.csv"
    path.write_bytes("\r\n \r\n,,,\r\n".encode("cp932"))
    _unusable(path, book, master, "データがありません.*no cells")


def test_wrong_file_types(tmp_path, book, master):
    _unusable(sf.pdf(tmp_path / "survey.pdf"), book, master, "対応していないファイル形式.*unsupported")
    _unusable(sf.pdf(tmp_path / "survey.xlsx"), book, master, "開けません.*pdf")
    _unusable(sf.pdf(tmp_path / "survey.csv"), book, master, "CSV として読めません")
    _unusable(sf.legacy_xls(tmp_path / "survey.xls"), book, master, r"\.xls")
    docx = tmp_path / "survey.docx"
    with zipfile.ZipFile(docx, "w") as zf:
        zf.writestr("word/document.xml", "<w:document/>")
    _unusable(docx, book, master, "対応していないファイル形式")


def test_corrupt_xlsx(tmp_path, sample, book, master):
    _unusable(sf.truncated(sample.survey_path(FY), tmp_path / "truncated.xlsx"), book, master, "開けません")
    not_a_workbook = tmp_path / "other.xlsx"
    with zipfile.ZipFile(not_a_workbook, "w") as zf:
        zf.writestr("hello.txt", "not a workbook")
    _unusable(not_a_workbook, book, master, "開けません")


def test_password_protected_xlsx(tmp_path, book, master):
    path = sf.encrypted_ooxml(tmp_path / "locked.xlsx")
    assert path.read_bytes()[:4] == b"\xd0\xcf\x11\xe0"
    _unusable(path, book, master, "パスワード.*password")


def test_csv_with_a_header_only(tmp_path, book, master, ref):
    grid = sf.build_grid(ref.iloc[:0], book, sf.Layout(title=[], header_rows=1), fiscal_year=FY)
    _unusable(sf.save(grid, tmp_path / "header_only.csv"), book, master, "データ行がありません.*header only")


def test_workbook_without_a_survey_table(tmp_path, book, master):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active["A1"] = "集計中"
    path = tmp_path / "draft.xlsx"
    wb.save(path)
    _unusable(path, book, master, "見出し行")


# --- schema ------------------------------------------------------------------------------------


def test_schema_accepts_the_sample_and_names_each_failure(book, ref):
    assert check_tidy(ref, book) == []
    bad = ref.copy()
    bad.loc[0, "code"] = sf.wrong_check_digit(bad.loc[0, "code"])
    bad.loc[2, "code"] = bad.loc[1, "code"]
    bad.loc[3, "jusou_status"] = "bogus"
    bad["item_hub"] = bad["item_hub"].astype(object)
    problems = check_tidy(bad, book)
    reasons = " ".join(p["reason_en"] for p in problems)
    for what in ("wrong check digit", "duplicate value", "not in the allowed set", "wrong data type"):
        assert what in reasons
    assert any(p["code"] == bad.loc[3, "code"] and p["value"] == "bogus" for p in problems)
    assert check_tidy(ref.drop(columns=["notes"]), book)  # a missing column is a failure, not an exception
    assert check_tidy(ref.assign(fiscal_year=ref["fiscal_year"].astype("float")), book)


def test_schema_failures_become_issues_not_tracebacks(tmp_path, monkeypatch, book, master, ref, sample):
    import analysis.io as io_mod

    original = io_mod._tidy_frame

    def broken(records, book_, fy):
        frame = original(records, book_, fy)
        frame.loc[0, "jusou_status"] = "bogus"
        return frame

    monkeypatch.setattr(io_mod, "_tidy_frame", broken)
    res = read_checked(sample.survey_path(FY), book, master)
    hit = _only(res, "schema check: jusou_status")
    assert hit["value"] == "bogus" and hit["row"] == res.info["source_rows"][ref["code"].iloc[0]]


# --- property: a valid tidy table written in any supported shape reads back identically --------


def _yaml_spellings(book, answers: str, value: str) -> list:
    return [s for s in book.raw["answer_maps"][answers][value] if s != ""]


def _encodable(values, encoding):
    out = []
    for v in values:
        try:
            if isinstance(v, str) and v.encode(encoding).decode(encoding) != v:
                continue
        except UnicodeError:
            continue
        out.append(v)
    return out


NOTES = [
    None,
    "アドバイザー派遣を引き続き希望",
    "庁内連携会議を設置済み",
    "次年度から移行予定（準備中）",
    "研修を増やしてほしい\n２回以上",
    "ＡＢＣ　全角の備考",
]


@st.composite
def survey_cases(draw, ref, book):
    n = len(ref)
    idx = sorted(draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n)))
    tidy = ref.iloc[idx].reset_index(drop=True).copy()
    k = len(tidy)
    for q in book.questions:
        if q.answers == "yes_no":
            tidy[q.variable] = pd.array(
                draw(st.lists(st.sampled_from([True, False, None]), min_size=k, max_size=k)), dtype="boolean"
            )
        elif q.answers == "text":
            tidy[q.variable] = pd.array(draw(st.lists(st.sampled_from(NOTES), min_size=k, max_size=k)), dtype="string")
        else:
            values = [None, "implemented", "preparing", "not_implemented"]
            tidy[q.variable] = pd.array(draw(st.lists(st.sampled_from(values), min_size=k, max_size=k)), dtype="string")
    fmt = draw(st.sampled_from(["xlsx", "utf-8", "utf-8-sig", "cp932", "utf-16"]))
    enc = "utf-8" if fmt == "xlsx" else fmt
    bools = [True, False] if fmt == "xlsx" else []
    yes = _encodable(_yaml_spellings(book, "yes_no", "true") + bools[:1], enc)
    no = _encodable(_yaml_spellings(book, "yes_no", "false") + bools[1:], enc)
    missing = [*_encodable(_yaml_spellings(book, "yes_no", "missing"), enc), None]
    status = {
        v: _encodable(_yaml_spellings(book, "jusou_status", v), enc)
        for v in ("implemented", "preparing", "not_implemented")
    }
    status_missing = [*_encodable(_yaml_spellings(book, "jusou_status", "missing"), enc), None]
    pick = lambda pool: draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4))  # noqa: E731
    name_style = draw(st.sampled_from(["same", "same", "prefixed", "none"]))
    code_pool = ["str6", "str5", "int6", "fullwidth", "hyphen", "float6"] + (
        ["name", "blank"] if name_style != "none" else []
    )
    layout = sf.Layout(
        title=draw(st.sampled_from([None, [], ["令和7年度 集計表"], ["令和7年度 集計表", "架空県", "", ""]])),
        header_rows=draw(st.integers(1, 3)),
        merge=fmt == "xlsx" and draw(st.booleans()),
        split_all=draw(st.booleans()),
        header_style=draw(st.sampled_from(["ja", "ja", "alias", "numbered", "hint"])),
        code_style=pick(code_pool),
        name_style=name_style,
        yes=pick(yes),
        no=pick(no),
        missing=pick(missing),
        status={v: pick(s) for v, s in status.items()},
        extra_columns=draw(st.sampled_from([(), ("担当課",), ("担当課", "電話番号")])),
        blank_every=draw(st.sampled_from([0, 0, 3, 10])),
        total_rows=draw(st.sampled_from([(), ("計",), ("合計", "県計")])),
        shuffle_columns=draw(st.booleans()),
        row_order=draw(st.sampled_from(["code", "reverse"])),
        cover_sheet=fmt == "xlsx" and draw(st.booleans()),
    )
    # the jusou map has its own missing spellings: write those for a missing status
    return tidy, layout, fmt, status_missing


@SETTINGS
@given(data=st.data())
def test_round_trip_through_every_format_and_spelling(tmp_path_factory, book, master, ref, data):
    tidy, layout, fmt, status_missing = data.draw(survey_cases(ref, book))
    tmp = tmp_path_factory.mktemp("rt")
    grid = sf.build_grid(tidy, book, layout)
    j = grid.col("jusou_status")
    miss = iter(data.draw(st.lists(st.sampled_from(status_missing), min_size=len(tidy), max_size=len(tidy))))
    for code, value in zip(tidy["code"], tidy["jusou_status"], strict=False):
        if pd.isna(value):
            grid.rows[grid.row_of[code]][j] = next(miss)
    if fmt == "xlsx":
        path = sf.save(grid, tmp / "survey.xlsx")
    else:
        path = sf.save(
            grid,
            tmp / "survey.csv",
            encoding=fmt,
            newline=data.draw(st.sampled_from(["\r\n", "\n"])),
            delimiter=data.draw(st.sampled_from([",", "\t"])),
        )
    res = read_checked(path, book, master)
    pd.testing.assert_frame_equal(res.tidy, tidy.sort_values("code").reset_index(drop=True))
    assert res.ok, res.errors.to_string()
    assert accounted_for(grid, res) == []


# --- fuzzing: only SurveyError ever escapes, and bad cells become issues -----------------------


@SETTINGS
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".xlsx", ".csv", ".xlsm", ".txt", ".tsv", ".xls", ""]))
def test_random_bytes_raise_only_survey_error(tmp_path_factory, book, master, data, suffix):
    path = tmp_path_factory.mktemp("fz") / f"random{suffix}"
    path.write_bytes(data)
    try:
        res = read_checked(path, book, master)
    except SurveyError as exc:
        assert not exc.issues.empty
    else:
        assert list(res.issues.columns) == ISSUE_COLUMNS


@SETTINGS
@given(data=st.data())
def test_damaged_xlsx_bytes_raise_only_survey_error(tmp_path_factory, sample, book, master, data):
    raw = bytearray(sample.survey_path(FY).read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    path = tmp_path_factory.mktemp("fz") / "damaged.xlsx"
    path.write_bytes(bytes(raw))
    with contextlib.suppress(SurveyError):
        read_checked(path, book, master)


@SETTINGS
@given(text=st.text(max_size=2000))
def test_random_csv_text_raises_only_survey_error(tmp_path_factory, book, master, text):
    path = tmp_path_factory.mktemp("fz") / "random.csv"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    with contextlib.suppress(SurveyError):
        read_checked(path, book, master)


_PRINTABLE = st.characters(blacklist_categories=("Cs", "Cc"))
CELL_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**7), 10**7),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(_PRINTABLE, max_size=12),
    st.sampled_from(["○", "×", "―", "県計", "992011", "青葉市", "TRUE", "1.5"]),
    st.datetimes(
        min_value=pd.Timestamp("1950-01-01").to_pydatetime(), max_value=pd.Timestamp("2050-01-01").to_pydatetime()
    ),
)


def _is_valid_answer(value, book, answers: str) -> bool:
    if answers == "text" or value is None:
        return True
    if isinstance(value, bool):
        key = "TRUE" if value else "FALSE"
    elif isinstance(value, float) and value.is_integer():
        key = str(int(value))
    else:
        key = answer_key(str(value))
    return unicodedata.normalize("NFKC", key) in book.answer_maps[answers]


@SETTINGS
@given(data=st.data(), fmt=st.sampled_from(["xlsx", "csv"]))
def test_random_cell_values_become_issues(tmp_path_factory, book, master, ref, data, fmt):
    grid = sf.build_grid(ref, book)
    rows = sorted(grid.row_of.values())
    changed = []
    for _ in range(data.draw(st.integers(1, 12))):
        r = data.draw(st.sampled_from(rows))
        c = data.draw(st.integers(0, len(grid.columns) - 1))
        v = data.draw(CELL_VALUES)
        if fmt == "csv" and v is not None and not isinstance(v, str):
            v = str(v)
        grid.rows[r][c] = v
        changed.append((r, c, v))
    path = sf.save(grid, tmp_path_factory.mktemp("fz") / f"cells.{fmt}", encoding="utf-8")
    try:
        res = read_checked(path, book, master)
    except SurveyError:
        return
    assert accounted_for(grid, res) == []
    issue_rows = set(int(r) for r in res.issues["row"].dropna())
    for r, c, v in changed:
        var = grid.columns[c]
        if grid.rows[r][c] is not v or var in ("code", "name"):
            continue  # overwritten later, or an id cell (covered by accounted_for)
        if not _is_valid_answer(v, book, book.question(var).answers):
            assert r + 1 in issue_rows, (r + 1, var, v)


@SETTINGS
@given(
    data=st.data(), layout=st.sampled_from([sf.Layout(), sf.Layout(header_rows=3), sf.Layout(header_rows=1, title=[])])
)
def test_random_cells_anywhere_raise_only_survey_error(tmp_path_factory, book, master, ref, data, layout):
    """Title, header and data cells alike: the reader returns issues or raises SurveyError."""
    grid = sf.build_grid(ref, book, layout)
    for _ in range(data.draw(st.integers(1, 15))):
        r = data.draw(st.integers(0, len(grid.rows) - 1))
        c = data.draw(st.integers(0, len(grid.columns)))
        grid.set_cell(r, c, data.draw(CELL_VALUES))
    grid.merges = []
    path = sf.save(grid, tmp_path_factory.mktemp("fz") / "cells.xlsx")
    try:
        res = read_checked(path, book, master)
    except SurveyError as exc:
        assert (exc.issues["severity"] == "error").any()
    else:
        assert res.tidy["code"].is_unique and list(res.tidy.columns)[:3] == ["fiscal_year", "code", "name"]
