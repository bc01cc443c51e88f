"""No cell the project writes is a formula (OWASP CSV injection; issue 10, "Spreadsheet safety").

Unit tests of the writers, then one real run of the pipeline on a copy of the sample whose
municipality names and notes start with = + - @ (what a hostile or careless survey file could
hold; dataset ``hostile`` of ``conftest.make_hostile_dataset``, run once per session by
``conftest.hostile_run`` and shared with test_escaping, whose HTML markup it also holds): every generated workbook is opened with openpyxl (no cell of type "f", no <f> element in
the sheet XML) and every generated CSV is read with the csv module (no text cell that a
spreadsheet would run as a formula). `validate --tidy-out/--issues-out` CSVs are checked too.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pandas as pd
from conftest import HOSTILE_FORMULA_NAMES as HOSTILE_NAMES
from openpyxl import Workbook, load_workbook

from analysis import export
from analysis.cli import main

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _formula_like(text: str) -> bool:
    """Independent of the code under test: a text cell a spreadsheet could evaluate."""
    if not text.startswith(DANGEROUS):
        return False
    try:
        float(text.rstrip("%"))
        return False  # a plain number
    except ValueError:
        pass
    left, sep, right = text.partition("〜")
    if sep:
        try:
            float(left), float(right)
            return False  # a displayed interval "-27.7〜30.2": 〜 is no operator
        except ValueError:
            pass
    return True


def assert_no_formulas_in_workbook(path: Path) -> int:
    """No formula cell (openpyxl) and no <f> element (raw XML); returns the number of text cells."""
    wb = load_workbook(path)
    n_text = 0
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{path.name}!{ws.title}!{cell.coordinate}: formula {cell.value!r}"
                if isinstance(cell.value, str):
                    n_text += 1
                    if cell.value.startswith(DANGEROUS):
                        assert cell.quotePrefix, f"{path.name}!{ws.title}!{cell.coordinate}: no quote prefix"
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                xml = z.read(name).decode("utf-8")
                assert "<f>" not in xml and "<f " not in xml, f"{path.name}:{name} has a formula element"
    return n_text


def csv_cells(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def assert_csv_inert(path: Path) -> None:
    for i, row in enumerate(csv_cells(path), start=1):
        for j, cell in enumerate(row, start=1):
            assert not _formula_like(cell), f"{path.name} row {i} column {j}: {cell!r}"


# ---------------------------------------------------------------------------
# the writers
# ---------------------------------------------------------------------------


def _hostile_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "市町村名": ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tタブ", "\r改行", "普通の市"],
            "差": [-1.5, 2.0, -0.25, 0.0, 3.0, -7.0, 1.0],  # numbers, negative ones too
            "区間": ["-27.7〜30.2", "-3", "+4", "-1e-3", "5%", "-x", "1〜2"],
            "件数": pd.array([1, -2, 3, None, 5, 6, 7], dtype="Int64"),
        }
    )


def test_csv_neutralises_text_cells_and_keeps_numbers(tmp_path):
    path = export.write_csv(_hostile_frame().rename(columns={"件数": "=件数"}), tmp_path / "t.csv")
    rows = csv_cells(path)
    assert rows[0] == ["市町村名", "差", "区間", "'=件数"]
    names = [r[0] for r in rows[1:]]
    # (a CR inside a cell becomes LF: the csv module would not quote a bare CR, ending the row)
    assert names == ["'=1+1", "'+SUM(A1)", "'-2+3", "'@cmd", "'\tタブ", "'\n改行", "普通の市"]
    # numeric columns are untouched, negative numbers included
    assert [r[1] for r in rows[1:]] == ["-1.5", "2.0", "-0.25", "0.0", "3.0", "-7.0", "1.0"]
    assert [r[3] for r in rows[1:]] == ["1", "-2", "3", "", "5", "6", "7"]
    # text that is a number or an interval stays as it is; other text starting with - is neutralised
    assert [r[2] for r in rows[1:]] == ["-27.7〜30.2", "-3", "+4", "-1e-3", "5%", "'-x", "1〜2"]
    assert_csv_inert(path)
    back = pd.read_csv(path, encoding="utf-8-sig")
    assert back["差"].dtype == float and back["差"].tolist() == _hostile_frame()["差"].tolist()


def test_csv_neutralises_index_labels_and_categoricals(tmp_path):
    frame = pd.DataFrame({"v": [1, 2]}, index=pd.Index(["=a", "b"], name="@idx"))
    frame["c"] = pd.Categorical(["-cat", "ok"])
    rows = csv_cells(export.write_csv(frame, tmp_path / "t.csv", index=True))
    assert rows == [["'@idx", "v", "c"], ["'=a", "1", "'-cat"], ["b", "2", "ok"]]


def test_xlsx_text_is_never_a_formula(tmp_path):
    frame = _hostile_frame()
    path = export.write_xlsx({"=sheet": frame}, tmp_path / "t.xlsx", titles={"=sheet": "=TITLE()"}, note="@note")
    assert assert_no_formulas_in_workbook(path) > 0
    ws = load_workbook(path).worksheets[0]
    # values are kept exactly (no apostrophe in the text: Excel's quote prefix is a cell style)
    assert ws["A1"].value == "=TITLE()" and ws["A2"].value == "@note"
    # (an XML parser reads a CR in text as LF)
    assert [ws.cell(row=r, column=1).value for r in range(5, 12)] == frame["市町村名"].str.replace("\r", "\n").tolist()
    assert [ws.cell(row=r, column=2).value for r in range(5, 12)] == frame["差"].tolist()
    assert ws.cell(row=5, column=2).data_type == "n" and ws.cell(row=6, column=4).value == -2


def test_xlsx_control_characters_do_not_crash(tmp_path):
    path = export.write_xlsx({"s": pd.DataFrame({"名前": ["a\x01b"]})}, tmp_path / "t.xlsx")
    assert load_workbook(path).worksheets[0]["A5"].value == "a\ufffdb"


def test_save_workbook_defuses_formula_cells(tmp_path):
    wb = Workbook()
    wb.active["A1"] = "=1+1"
    wb.active["A2"] = 5
    assert wb.active["A1"].data_type == "f"
    path = export.save_workbook(wb, tmp_path / "w.xlsx")
    assert_no_formulas_in_workbook(path)
    ws = load_workbook(path).active
    assert ws["A1"].value == "=1+1" and ws["A2"].value == 5


# ---------------------------------------------------------------------------
# the pipeline
# ---------------------------------------------------------------------------


def test_pipeline_writes_no_formula_anywhere(hostile_run):
    project, proc, _ = hostile_run
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    base = project / "reports" / "hostile"
    workbooks = sorted(base.rglob("*.xlsx"))
    assert {p.parent.name for p in workbooks} == {"FY2024", "FY2025", "trends"}
    for path in workbooks:
        assert_no_formulas_in_workbook(path)
    csvs = sorted(base.rglob("*.csv"))
    assert len(csvs) >= 14
    for path in csvs:
        assert_csv_inert(path)


def test_hostile_names_reach_the_tables_as_text(hostile_run):
    """The check above is not vacuous: the names are in the outputs, kept as (neutralised) text."""
    project, _, _ = hostile_run
    d = project / "reports" / "hostile" / "FY2025"
    table = next((d / "tables").glob("*municipality*.csv"))
    names = [row[1] for row in csv_cells(table)[1:]]
    assert {"'" + n for n in HOSTILE_NAMES} <= set(names)
    wb = load_workbook(d / "tables.xlsx")
    cells = {c.value: c for ws in wb.worksheets for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    for name in HOSTILE_NAMES:
        assert name in cells and cells[name].data_type == "s" and cells[name].quotePrefix


def test_validate_outputs_are_neutralised(hostile_run, tmp_path, monkeypatch, capsys):
    """`validate --tidy-out/--issues-out` (the command line's `main`, in this process)."""
    project, _, _ = hostile_run
    monkeypatch.setenv("ANALYSIS_ROOT", str(project))
    survey = project / "data" / "raw" / "hostile" / "survey_FY2025.xlsx"
    bad = tmp_path / "bad.xlsx"
    wb = load_workbook(survey)
    ws = wb.worksheets[-1]
    header = next(r for r in range(1, 10) if ws.cell(row=r, column=1).value == "市町村コード")
    cell = ws.cell(row=header + 1, column=4, value="=1+1")  # an answer no codebook maps
    cell.data_type = "s"
    wb.save(bad)
    tidy, issues = tmp_path / "tidy.csv", tmp_path / "issues.csv"
    validate = ["validate", "--dataset", "hostile", "--fiscal-year", "2025"]
    assert main([*validate[:1], str(survey), *validate[1:], "--tidy-out", str(tidy)]) == 0, capsys.readouterr().err
    assert {"'" + n for n in HOSTILE_NAMES} <= {row[2] for row in csv_cells(tidy)}
    assert_csv_inert(tidy)
    code = main([*validate[:1], str(bad), *validate[1:], "--issues-out", str(issues)])
    assert code == 1, capsys.readouterr().out[-2000:]
    assert any("'=1+1" in row for row in csv_cells(issues))
    assert_csv_inert(issues)
