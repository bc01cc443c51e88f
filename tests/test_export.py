import pandas as pd
import pytest
from openpyxl import load_workbook

from analysis import export


def _frame():
    return pd.DataFrame(
        {"区分": ["重層的支援体制整備事業を実施済", "全項目実施"], "市町数": [13, 7], "割合(%)": [37.1, None]}
    )


def test_csv_is_utf8_with_bom_and_reads_back(tmp_path):
    path = export.write_csv(_frame(), tmp_path / "t.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(path, encoding="utf-8-sig")
    assert back["区分"].tolist() == _frame()["区分"].tolist()


def test_xlsx_one_sheet_per_table_with_japanese_headers(tmp_path):
    path = export.write_xlsx(
        {"01_status": _frame(), "02_other": _frame().head(1)},
        tmp_path / "t.xlsx",
        titles={"01_status": "県内市町の実施状況"},
        note="架空データ",
    )
    wb = load_workbook(path)
    assert wb.sheetnames == ["01_status", "02_other"]
    ws = wb["01_status"]
    assert ws["A1"].value == "県内市町の実施状況" and ws["A2"].value == "架空データ"
    assert [c.value for c in ws[4]] == ["区分", "市町数", "割合(%)"]
    assert ws["B5"].value == 13 and ws["C6"].value is None
    back = pd.read_excel(path, sheet_name="01_status", header=3)
    assert back["市町数"].tolist() == [13, 7]


def test_xlsx_is_byte_reproducible(tmp_path):
    a = export.write_xlsx({"s": _frame()}, tmp_path / "a.xlsx").read_bytes()
    b = export.write_xlsx({"s": _frame()}, tmp_path / "b.xlsx").read_bytes()
    assert a == b


def test_sheet_names_are_made_valid_and_unique():
    used = set()
    assert export.sheet_name("a/b:c", used) == "a_b_c"
    long = "x" * 40
    assert export.sheet_name(long, used) == "x" * 31
    assert export.sheet_name(long, used) == "x" * 29 + "_2"


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "t.csv"
    target.write_text("good", encoding="utf-8")
    with pytest.raises(RuntimeError), export.atomic_path(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("crash while writing")
    assert target.read_text(encoding="utf-8") == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_workbook_is_ready_for_excel_users(tmp_path):
    """Japanese sheet names, numbers as numbers with display formats, filter, frozen header, A4 print."""
    import math

    frame = pd.DataFrame(
        {
            "支援施策": ["アドバイザー派遣", "研究会"],
            "活用あり(市町数)": [18, 3],
            "全項目実施率・あり(%)": [11.1111, 33.3333],
            "差(ポイント)": [-18.3, 4.0],
            "差・下限(ポイント)": [-47.5, -30.0],
            "差・上限(ポイント)": [10.3, 40.0],
            "尤度比検定p値": [0.0004, math.nan],
            "調整オッズ比(Firth)": [0.29, 1.5],
            "注記": ["", "p値は計算できませんでした。"],
        }
    )
    path = export.write_xlsx(
        {"06 支援施策と全項目実施の関連": frame},
        tmp_path / "t.xlsx",
        titles={"06 支援施策と全項目実施の関連": "関連（令和7年度）"},
        note="【架空データ】",
    )
    wb = load_workbook(path)
    assert wb.sheetnames == ["06 支援施策と全項目実施の関連"]
    ws = wb.active
    header = [c.value for c in ws[4]]
    col = {name: i + 1 for i, name in enumerate(header)}
    row = 5
    assert (
        ws.cell(row, col["活用あり(市町数)"]).value == 18
        and ws.cell(row, col["活用あり(市町数)"]).number_format == "#,##0"
    )
    rate = ws.cell(row, col["全項目実施率・あり(%)"])
    assert rate.data_type == "n" and math.isclose(rate.value, 11.1111) and rate.number_format == "0.0"
    p = ws.cell(row, col["尤度比検定p値"])
    assert p.value == 0.0004 and p.number_format == '[<0.001]"<0.001";0.000'
    assert ws.cell(row + 1, col["尤度比検定p値"]).value is None  # missing: empty, never text in a number column
    assert ws.cell(row, col["調整オッズ比(Firth)"]).number_format == "0.00"
    assert ws.cell(row, col["差・下限(ポイント)"]).value == -47.5
    assert ws.auto_filter.ref == "A4:I6" and ws.freeze_panes == "B5" and ws.print_title_rows == "$4:$4"
    assert int(ws.page_setup.paperSize) == int(ws.PAPERSIZE_A4) and ws.page_setup.orientation == "landscape"
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
    assert "架空データ" in ws["A2"].value and "&P" in ws.oddFooter.right.text
    assert ws.column_dimensions["A"].width >= 16  # アドバイザー派遣: 8 full-width characters
