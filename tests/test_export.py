import pandas as pd
import pytest
from openpyxl import load_workbook

from analysis import export


def _frame():
    return pd.DataFrame({"区分": ["重層的支援体制整備事業を実施済", "全項目実施"], "市町数": [13, 7], "割合(%)": [37.1, None]})


def test_csv_is_utf8_with_bom_and_reads_back(tmp_path):
    path = export.write_csv(_frame(), tmp_path / "t.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(path, encoding="utf-8-sig")
    assert back["区分"].tolist() == _frame()["区分"].tolist()


def test_xlsx_one_sheet_per_table_with_japanese_headers(tmp_path):
    path = export.write_xlsx({"01_status": _frame(), "02_other": _frame().head(1)}, tmp_path / "t.xlsx",
                             titles={"01_status": "県内市町の実施状況"}, note="架空データ")
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
    with pytest.raises(RuntimeError):
        with export.atomic_path(target) as tmp:
            tmp.write_text("half", encoding="utf-8")
            raise RuntimeError("crash while writing")
    assert target.read_text(encoding="utf-8") == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]
