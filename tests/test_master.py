"""`python -m analysis master` and the code master check against the official workbooks."""

from __future__ import annotations

import os
import shutil
import unicodedata
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml

from analysis import master as master_mod
from analysis import official
from analysis.cli import main
from analysis.codes import is_valid, load_master
from analysis.io import read_master
from analysis.paths import data_dir

EXTERNAL = data_dir() / "external"
R3 = EXTERNAL / "soumu_shuyo_zaisei_shihyo" / "R3.xlsx"
# The 7 names that differ between the code master and the financial workbooks: ヶ vs ケ only.
KE_NAMES = {
    "023213": "鰺ヶ沢町",
    "024112": "六ヶ所村",
    "043028": "七ヶ宿町",
    "044041": "七ヶ浜町",
    "112411": "鶴ヶ島市",
    "202100": "駒ヶ根市",
    "454435": "五ヶ瀬町",
}


def _code_master() -> pd.DataFrame:
    m = load_master(EXTERNAL / "municipality_codes.csv")
    return m[m["municipality"] != ""]


def _raw_r3_rows() -> list[tuple]:
    """R3.xlsx municipality rows straight from openpyxl, independent of analysis.official."""
    ws = openpyxl.load_workbook(R3, read_only=True).worksheets[0]
    return [r[:8] for r in ws.iter_rows(min_row=3, values_only=True) if r[0] and str(r[0]).isdigit()]


# --- item 6: the code master against the FY2021 workbook -----------------------------------------


def test_code_master_has_exactly_the_1741_codes_of_the_fy2021_workbook():
    m = _code_master()
    book = official.read_financial_indicators(R3).frame
    assert len(m) == 1741 and len(book) == 1741
    assert set(m["lg_code"]) == set(book["code"])
    assert all(is_valid(c) for c in m["lg_code"])
    # the same municipalities per prefecture, and the same prefecture names
    merged = m.merge(book, left_on="lg_code", right_on="code", validate="one_to_one")
    assert (merged["prefecture_x"] == merged["prefecture_y"]).all()
    # names agree except 7 spelled with ヶ in the code master and ケ in the workbook
    differ = merged[merged["municipality"] != merged["name"]]
    assert dict(zip(differ["lg_code"], differ["municipality"], strict=False)) == KE_NAMES
    assert (differ["municipality"].str.replace("ヶ", "ケ") == differ["name"]).all()


def test_earlier_workbooks_list_the_same_municipalities():
    data = official.load_financial_indicators()
    codes = set(_code_master()["lg_code"])
    for year, frame in data.groupby("fiscal_year"):
        assert set(frame["code"]) == codes, year


def test_data_register_states_the_code_master_vintage_and_how_to_update_it():
    text = (data_dir() / "README.md").read_text(encoding="utf-8")
    assert master_mod.CODE_MASTER_VINTAGE in text and "soumu_shuyo_zaisei_shihyo" in text
    assert "Updating the code master" in text and "tests/test_master.py" in text


# --- building the master ----------------------------------------------------------------------


def test_shizuoka_has_its_35_municipalities_with_their_published_fiscal_strength():
    m = master_mod.build_master("22")
    assert (m.prefecture_code, m.prefecture) == ("22", "静岡県")
    f = m.frame
    assert list(f.columns) == master_mod.MASTER_COLUMNS and len(f) == 35
    expected = {r[0]: (r[2], float(r[3])) for r in _raw_r3_rows() if r[0].startswith("22")}
    assert len(expected) == 35
    assert {c: (n, v) for c, n, v in zip(f["code"], f["name"], f["fiscal_strength"], strict=False)} == expected
    # checked by hand in R3.xlsx: row 952 静岡市 0.87, row 960 富士市 1, row 985 川根本町 0.34
    by = f.set_index("code")["fiscal_strength"]
    assert (by["221007"], by["222101"], by["224294"]) == (0.87, 1.0, 0.34)
    assert f[["population", "aging_rate", "kaso"]].isna().all().all()
    assert m.vintage == 2021


@pytest.mark.parametrize("given", ["22", 22, "２２", "静岡県", "静岡"])
def test_prefecture_by_code_or_name(given):
    assert master_mod.resolve_prefecture(given) == ("22", "静岡県")


def test_every_prefecture_builds_and_hokkaido_keeps_its_leading_zero():
    counts = {}
    for pref in range(1, 48):
        counts[pref] = len(master_mod.build_master(pref).frame)
    assert sum(counts.values()) == 1741 and counts[22] == 35 and counts[1] == 179
    assert master_mod.build_master("01").frame["code"].iloc[0] == "011002"


def test_an_older_fiscal_year_and_one_before_the_data():
    m = master_mod.build_master("22", fiscal_year=2019)
    assert m.vintage == 2019 and m.frame.set_index("code").loc["221007", "fiscal_strength"] == 0.89
    with pytest.raises(master_mod.MasterError, match="FY2017"):
        master_mod.build_master("22", fiscal_year=2017)


def test_a_code_master_that_disagrees_with_the_workbook_is_refused(project, monkeypatch):
    root = project
    codes = root / "data" / "external" / "municipality_codes.csv"
    table = pd.read_csv(EXTERNAL / "municipality_codes.csv", dtype=str, keep_default_na=False)
    table[table["lg_code"] != "224618"].to_csv(codes, index=False)  # 森町 missing, as after a merger
    monkeypatch.setenv("ANALYSIS_ROOT", str(root))
    with pytest.raises(master_mod.MasterError) as info:
        master_mod.build_master("22")
    assert "224618" in info.value.ja and "data/README.md" in info.value.ja and "34" in info.value.en


@pytest.fixture(scope="module")
def _project_root(tmp_path_factory) -> Path:
    """One project root for the module: its workbooks keep their paths, so analysis.official reads them once."""
    root = tmp_path_factory.mktemp("master") / "project"
    (root / "data" / "external").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    os.symlink(EXTERNAL / "soumu_shuyo_zaisei_shihyo", root / "data" / "external" / "soumu_shuyo_zaisei_shihyo")
    return root


@pytest.fixture
def project(_project_root) -> Path:
    """A project root whose data/external is the real one (code master copied), with an empty data/raw.

    Reset for every test: data/raw emptied, the code master copied afresh, nothing else in data/external.
    """
    root = _project_root
    raw = root / "data" / "raw"
    shutil.rmtree(raw, ignore_errors=True)
    raw.mkdir()
    ext = root / "data" / "external"
    for p in ext.iterdir():
        if p.name != "soumu_shuyo_zaisei_shihyo":
            p.unlink()
    (ext / "municipality_codes.csv").write_bytes((EXTERNAL / "municipality_codes.csv").read_bytes())
    return root


# --- the command --------------------------------------------------------------------------------


def test_cli_writes_a_validated_workbook_with_instructions(tmp_path, capsys):
    out = tmp_path / "municipalities.xlsx"
    assert main(["master", "--prefecture", "22", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "35 市町村" in printed and "FY2021" in printed and "2020-10" in printed

    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["municipalities", "記入方法"]
    ws = wb["municipalities"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == tuple(master_mod.MASTER_COLUMNS) and len(rows) == 36
    assert rows[1] == ("221007", "静岡市", None, None, None, 0.87)
    assert all(isinstance(r[0], str) and ws.cell(i + 2, 1).number_format == "@" for i, r in enumerate(rows[1:]))
    assert not any(c.data_type == "f" for s in wb.worksheets for row in s.iter_rows() for c in row)
    rules = {str(dv.sqref): dv for dv in ws.data_validations.dataValidation}
    pop, aging, kaso = rules["C2:C36"], rules["D2:D36"], rules["E2:E36"]
    assert (pop.type, pop.operator, pop.formula1) == ("whole", "greaterThan", "0")
    assert (aging.type, aging.operator, aging.formula1, aging.formula2) == ("decimal", "between", "0", "100")
    assert (kaso.type, kaso.formula1) == ("list", '"0,1"')
    assert all(dv.showErrorMessage and dv.error for dv in rules.values())

    guide = "\n".join(str(v) for row in wb["記入方法"].iter_rows(values_only=True) for v in row if v)
    for source in (
        "住民基本台帳に基づく人口",
        "国勢調査",
        "過疎地域の公示",
        "全市町村の主要財政指標",
        "令和3年度（FY2021）決算",
        "全国地方公共団体コード",
        "2020年10月",
    ):
        assert source in guide, source
    by_column = {
        row[0]: row for row in wb["記入方法"].iter_rows(values_only=True) if row[0] in master_mod.MASTER_COLUMNS
    }
    assert set(by_column) == set(master_mod.MASTER_COLUMNS)
    assert "住民基本台帳" in by_column["population"][3] and "過疎" in by_column["kaso"][3]


def test_cli_writes_utf8_bom_csv_the_master_reader_accepts(tmp_path, capsys):
    out = tmp_path / "municipalities.csv"
    assert main(["master", "--prefecture", "静岡県", "--out", str(out)]) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.decode("utf-8-sig").splitlines()[0] == ",".join(
        master_mod.MASTER_COLUMNS
    )
    back = read_master(out)
    assert len(back) == 35 and back.loc[back["code"] == "221007", "fiscal_strength"].item() == 0.87
    assert "住民基本台帳" in capsys.readouterr().out  # the sources are printed, as a CSV cannot hold them


def test_output_is_byte_reproducible(tmp_path):
    a, b = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    master_mod.write_master("22", a)
    master_mod.write_master("22", b)
    assert a.read_bytes() == b.read_bytes()


def test_existing_file_is_kept_without_replace(tmp_path, capsys):
    out = tmp_path / "municipalities.xlsx"
    out.write_bytes(b"filled in by hand")
    assert main(["master", "--prefecture", "22", "--out", str(out)]) == 2
    assert "--replace" in capsys.readouterr().err and out.read_bytes() == b"filled in by hand"
    assert main(["master", "--prefecture", "22", "--out", str(out), "--replace"]) == 0
    assert openpyxl.load_workbook(out).sheetnames[0] == "municipalities"


def test_refuses_other_datasets_raw_folders_and_external_data(project, tmp_path, monkeypatch, capsys):
    root = project
    raw = root / "data" / "raw"
    for name, meta in {
        "sample": {"prefecture_code": "99", "synthetic": True},
        "aichi": {"prefecture_code": "23"},
        "shizuoka": {"prefecture_code": "22"},
    }.items():
        (raw / name).mkdir()
        (raw / name / "dataset.yaml").write_text(yaml.safe_dump(meta), encoding="utf-8")
    monkeypatch.setenv("ANALYSIS_ROOT", str(root))
    refused = {
        raw / "sample" / "municipalities.xlsx": "別のデータセット",
        raw / "aichi" / "municipalities.xlsx": "別のデータセット",
        raw / "municipalities.xlsx": "直下",
        root / "data" / "external" / "m.xlsx": "data/external",
        tmp_path / "m.txt": ".xlsx か .csv",
    }
    for out, why in refused.items():
        assert main(["master", "--prefecture", "22", "--out", str(out)]) == 2, out
        assert why in capsys.readouterr().err and not out.exists()
    # its own dataset's folder, and a new folder, are fine
    for out in (raw / "shizuoka" / "municipalities.xlsx", raw / "new" / "municipalities.xlsx"):
        assert main(["master", "--prefecture", "22", "--out", str(out)]) == 0 and out.is_file()


def test_out_may_be_a_folder(tmp_path):
    path, _ = master_mod.write_master("22", tmp_path)
    assert path == (tmp_path / "municipalities.xlsx").resolve() and path.is_file()


def test_unknown_prefecture(capsys):
    assert main(["master", "--prefecture", "48", "--out", "/nonexistent/x.xlsx"]) == 2
    err = capsys.readouterr().err
    assert "都道府県が分かりません" in err and "unknown prefecture" in err


def test_names_are_nfkc_like_the_rest_of_the_project():
    names = master_mod.build_master("22").frame["name"]
    assert (names == names.map(lambda n: unicodedata.normalize("NFKC", n))).all()
