"""`python -m analysis template`: next year's questionnaire from the codebook and the master.

The central check is the round trip: a generated workbook filled with random answers taken from
its own drop-down lists reads back, through the project's reader, as exactly those answers; an
answer outside the codebook is refused by the workbook's validation rule (checked in the file)
and reported by the reader with its cell.
"""

from __future__ import annotations

import random
from datetime import date

import pandas as pd
import pytest
import template_fill as tf
from conftest import make_project_copy
from openpyxl import load_workbook

from analysis import survey_template as st
from analysis.cli import main
from analysis.codebook import answer_key
from analysis.io import read_survey
from analysis.schema import allowed_values

FY = 2026


@pytest.fixture(scope="module")
def master(sample):
    return sample.master()


@pytest.fixture(scope="module")
def template(tmp_path_factory, book, master):
    path = tmp_path_factory.mktemp("template") / "survey_FY2026_template.xlsx"
    wb = st.build_workbook(book, master, FY, deadline=date(2026, 10, 30), synthetic=True, prefecture="架空県")
    from analysis.export import save_workbook

    return save_workbook(wb, path)


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A throw-away project copy; ANALYSIS_ROOT points there, so data/ of the repository is never touched."""
    root = make_project_copy(tmp_path / "project")
    monkeypatch.setenv("ANALYSIS_ROOT", str(root))
    return root


def read(path, book, master, fiscal_year=FY):
    return read_survey(path, book, master, fiscal_year=fiscal_year, prefecture_code="99")


# --- round trip ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_valid_answers_read_back_exactly(tmp_path, template, book, master, seed):
    filled = tmp_path / "filled.xlsx"
    expected = tf.fill(template, book, FY, random.Random(seed), out=filled)
    assert len(expected) == len(master) == 35
    result = read(filled, book, master)
    assert result.ok, result.errors.to_string()
    pd.testing.assert_frame_equal(result.tidy, expected)
    # nothing but the skipped cover sheet is worth a note
    assert list(result.issues["reason_en"]) == ["sheet(s) 表紙 skipped (cover or other non-table sheets)"]
    assert result.sheet == st.ANSWER_SHEET


def test_fiscal_year_is_read_from_the_title(tmp_path, template, book, master):
    filled = tmp_path / "filled.xlsx"
    expected = tf.fill(template, book, FY, random.Random(7), out=filled)
    result = read(filled, book, master, fiscal_year=None)
    assert result.fiscal_year == FY and result.info["fiscal_year_source"] == "title"
    pd.testing.assert_frame_equal(result.tidy, expected)
    other = read(filled, book, master, fiscal_year=FY + 1)
    assert not other.ok
    assert other.errors["reason_en"].str.contains(f"title says FY{FY} but FY{FY + 1}").any()


def test_blank_template_reads_as_all_missing(template, book, master):
    result = read(template, book, master)
    assert result.ok and len(result.tidy) == 35
    assert result.tidy[book.variables].isna().all().all()
    assert list(result.tidy["code"]) == sorted(master["code"])
    assert list(result.tidy["name"]) == list(master.sort_values("code")["name"])


@pytest.mark.parametrize("variable,bad", [("item_hub", "△"), ("jusou_status", "検討中"), ("sup_advisor", "有る")])
def test_invalid_answer_is_refused_by_the_rule_and_reported_by_the_reader(
    tmp_path, template, book, master, variable, bad
):
    path = tmp_path / "bad.xlsx"
    tf.fill(template, book, FY, random.Random(11), out=path, p_blank=0)
    cell = tf.set_cell(path, variable, book, bad, row=st.FIRST_DATA_ROW + 3)
    q = book.question(variable)
    assert answer_key(bad) not in book.answer_maps[q.answers]  # the codebook does not accept it either
    # (a) the workbook's rule on that cell refuses it
    ws = load_workbook(path)[st.ANSWER_SHEET]
    rule = tf.rule_for(ws, cell)
    assert rule is not None and rule.type == "list"
    assert rule.showErrorMessage and rule.errorStyle == "stop"
    assert bad not in rule.formula1.strip('"').split(",")
    # (b) the reader reports it, naming the cell
    result = read(path, book, master)
    assert not result.ok
    errors = result.errors
    assert list(errors["cell"]) == [cell]
    assert errors.iloc[0]["value"] == bad and "unmappable answer" in errors.iloc[0]["reason_en"]


# --- what the workbook holds ----------------------------------------------------------------------


def test_drop_down_lists_offer_exactly_the_codebook_answers(template, book):
    ws = load_workbook(template)[st.ANSWER_SHEET]
    cols = tf.header_columns(ws, book)
    lists = tf.validation_lists(ws)
    last = st.FIRST_DATA_ROW + 35 - 1
    for q in book.questions:
        j = cols[q.variable]
        if q.answers == "text":
            assert j not in lists
            continue
        items, rule = lists[j]
        mapped = [book.answer_maps[q.answers][answer_key(s)] for s in items]
        # one entry per value, every value the codebook's map can produce
        assert len(set(mapped)) == len(mapped) and None not in mapped
        assert sorted(mapped, key=str) == allowed_values(book, q.answers), q.variable
        assert rule.showErrorMessage and rule.errorStyle == "stop" and rule.allow_blank
        # Excel refuses (offers to "repair") a file whose rule texts exceed these lengths
        assert len(rule.errorTitle) <= 32 and len(rule.promptTitle) <= 32
        assert len(rule.error) <= 255 and len(rule.prompt) <= 255 and len(rule.formula1) <= 257
        rng = rule.sqref.ranges
        assert [(r.min_col, r.max_col, r.min_row, r.max_row) for r in rng] == [(j, j, st.FIRST_DATA_ROW, last)]
    assert lists[cols["item_hub"]][0] == ["○", "×"]
    assert lists[cols["jusou_status"]][0] == ["実施", "移行準備", "未実施"]


def test_headers_protection_and_highlights(template, book, master):
    wb = load_workbook(template)
    assert wb.sheetnames == [st.COVER_SHEET, st.ANSWER_SHEET]
    assert wb.security.lockStructure
    ws = wb[st.ANSWER_SHEET]
    headers = [c.value for c in ws[st.HEADER_ROW]]
    assert headers == ["市町村コード", "市町村名", *[q.header_ja for q in book.questions]]
    groups = [ws.cell(row=st.GROUP_ROW, column=j).value for j in range(1, len(headers) + 1)]
    assert groups[0] == "基本情報" and groups[2] == "重層的支援体制整備事業" and groups[3] == "指針の主要項目"
    assert any(str(m) == "D4:K4" for m in ws.merged_cells.ranges)  # the 8 main items under one group cell
    assert ws.protection.sheet and ws.protection.insertRows and ws.protection.deleteColumns
    assert ws.freeze_panes == "C6"
    rows = master.sort_values("code")
    for i, (code, name) in enumerate(zip(rows["code"], rows["name"], strict=False), start=st.FIRST_DATA_ROW):
        a, b = ws.cell(row=i, column=1), ws.cell(row=i, column=2)
        assert (a.value, b.value) == (code, name) and a.data_type == "s"
        assert a.protection.locked and b.protection.locked
        for j in range(3, len(headers) + 1):
            assert not ws.cell(row=i, column=j).protection.locked
    assert ws.cell(row=st.FIRST_DATA_ROW + 35, column=3).protection.locked  # below the table: locked
    for j, q in enumerate(book.questions, start=3):
        head = ws.cell(row=st.HEADER_ROW, column=j).fill.fgColor.rgb
        answer = ws.cell(row=st.FIRST_DATA_ROW, column=j).fill.fgColor.rgb
        if q.required:
            assert head.endswith(st.REQUIRED_FILL) and answer.endswith(st.REQUIRED_FILL), q.variable
        else:
            assert not head.endswith(st.REQUIRED_FILL) and not answer.endswith(st.REQUIRED_FILL), q.variable
    assert "架空データ" in ws.cell(row=st.NOTE_ROW, column=1).value
    assert ws.cell(row=1, column=1).value.startswith("令和8年度（2026年度）包括的な支援体制に係る市町アンケート調査")


def test_cover_sheet(template, book):
    ws = load_workbook(template)[st.COVER_SHEET]
    cells = {c.coordinate: c for row in ws.iter_rows() for c in row if c.value is not None}
    texts = [str(c.value) for c in cells.values()]
    assert ws["A1"].value == "令和8年度（2026年度）包括的な支援体制に係る市町アンケート調査"
    deadline = next(ws.cell(row=c.row, column=2) for c in cells.values() if c.value == "提出期限")
    assert deadline.value.date() == date(2026, 10, 30) and not deadline.protection.locked
    assert "（令和8年10月30日）" in texts
    contact = next(ws.cell(row=c.row, column=2) for c in cells.values() if c.value == "提出先")
    assert contact.value == st.CONTACT_PLACEHOLDER and not contact.protection.locked
    assert any("黄色の設問は必須" in t for t in texts)
    assert any("▼の一覧から選んで" in t for t in texts)
    assert any(
        "○ は「実施している" in t
        and "『重層的支援体制整備事業の実施状況』は 実施 / 移行準備 / 未実施 から選びます" in t
        for t in texts
    )
    assert ws.protection.sheet
    # the question table: every question with its answers and 必須/任意
    for q in book.questions:
        row = next(c.row for c in cells.values() if c.value == q.header_ja)
        answers = ws.cell(row=row, column=4).value
        assert answers == (" / ".join(st.choices(book, q)) or "自由記述（任意）")
        assert ws.cell(row=row, column=5).value == ("必須" if q.required else "任意")


def test_written_bytes_are_reproducible(project, tmp_path):
    a, b = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    st.write_template("sample", FY, out=a)
    st.write_template("sample", FY, out=b)
    assert a.read_bytes() == b.read_bytes()


def test_text_that_looks_like_a_formula_stays_text(tmp_path, book, master):
    answers = read_survey(tf_fill_all(tmp_path, book, master), book, master, fiscal_year=FY, prefecture_code="99").tidy
    answers.loc[0, "notes"] = '=HYPERLINK("http://example.invalid")'
    answers.loc[1, "notes"] = "@SUM(1)"
    wb = st.build_workbook(book, master, FY, answers=answers)
    from analysis.export import save_workbook

    path = save_workbook(wb, tmp_path / "combined.xlsx")
    ws = load_workbook(path)[st.ANSWER_SHEET]
    notes_col = tf.header_columns(ws, book)["notes"]
    cell = ws.cell(row=st.FIRST_DATA_ROW, column=notes_col)
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")
    back = read_survey(path, book, master, fiscal_year=FY, prefecture_code="99")
    assert back.ok
    pd.testing.assert_frame_equal(back.tidy, answers)


def tf_fill_all(tmp_path, book, master):
    path = tmp_path / "t.xlsx"
    from analysis.export import save_workbook

    save_workbook(st.build_workbook(book, master, FY), path)
    tf.fill(path, book, FY, random.Random(5))
    return path


# --- per-municipality files and the command line ----------------------------------------------------


def test_per_municipality_files(project, tmp_path, book, capsys):
    out = tmp_path / "send"
    code = main(
        [
            "template",
            "--dataset",
            "sample",
            "--fiscal-year",
            str(FY),
            "--per-municipality",
            str(out),
            "--deadline",
            "2026-10-30",
        ]
    )
    assert code == 0
    files = sorted(out.iterdir())
    assert len(files) == 35 and files[0].name == "992011_青葉市_FY2026.xlsx"
    assert all(f.name.endswith("_FY2026.xlsx") for f in files)
    assert not (project / "survey_FY2026_template.xlsx").exists()  # only the per-municipality files
    master = pd.read_csv(project / "data/raw/sample/municipalities.csv", dtype={"code": str}, encoding="utf-8-sig")
    path = out / "993018_花野町_FY2026.xlsx"
    wb = load_workbook(path)
    ws = wb[st.ANSWER_SHEET]
    assert ws.cell(row=st.FIRST_DATA_ROW, column=1).value == "993018"
    assert ws.cell(row=st.FIRST_DATA_ROW + 1, column=1).value is None
    assert any(c.value == "993018 花野町" for row in wb[st.COVER_SHEET].iter_rows() for c in row)
    rule = tf.rule_for(ws, f"C{st.FIRST_DATA_ROW}")
    assert str(rule.sqref) == f"C{st.FIRST_DATA_ROW}"
    expected = tf.fill(path, book, FY, random.Random(3))
    master["code"] = master["code"].astype(str)
    result = read(path, book, master)
    assert result.ok
    pd.testing.assert_frame_equal(result.tidy, expected)
    assert len(result.info["missing"]) == 34  # the others are not in this file (warnings)


def test_existing_files_are_not_overwritten_without_replace(project, tmp_path, capsys):
    out = tmp_path / "t.xlsx"
    assert main(["template", "--dataset", "sample", "--fiscal-year", str(FY), "--out", str(out)]) == 0
    out.write_bytes(b"keep me")
    assert main(["template", "--dataset", "sample", "--fiscal-year", str(FY), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "ファイルが既にあります" in err and "pass --replace" in err
    assert out.read_bytes() == b"keep me"
    assert main(["template", "--dataset", "sample", "--fiscal-year", str(FY), "--out", str(out), "--replace"]) == 0
    assert out.read_bytes()[:2] == b"PK"
    # per-municipality: one existing file stops the whole batch before anything is written
    send = tmp_path / "send"
    send.mkdir()
    (send / "995096_岬町_FY2026.xlsx").write_bytes(b"keep")
    assert main(["template", "--dataset", "sample", "--fiscal-year", str(FY), "--per-municipality", str(send)]) == 2
    assert [p.name for p in send.iterdir()] == ["995096_岬町_FY2026.xlsx"]


@pytest.mark.parametrize(
    "where", ["data/raw/sample/survey_FY2026.xlsx", "data/raw/new.xlsx", "data/external/t.xlsx", "data/codebook/t.xlsx"]
)
def test_inputs_are_never_written(project, capsys, where):
    target = project / where
    before = sorted(p for p in (project / "data").rglob("*"))
    code = main(["template", "--dataset", "sample", "--fiscal-year", str(FY), "--out", str(target), "--replace"])
    assert code == 2
    err = capsys.readouterr().err
    assert "入力データの置き場" in err and "holds inputs" in err
    assert sorted(p for p in (project / "data").rglob("*")) == before
    assert (
        main(
            [
                "template",
                "--dataset",
                "sample",
                "--fiscal-year",
                str(FY),
                "--per-municipality",
                str(project / "data/raw/sample/send"),
            ]
        )
        == 2
    )
    assert not (project / "data/raw/sample/send").exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--deadline", "2026-13-01"], "日付として読めません"),
        (["--fiscal-year", "1900"], "年度『1900』が不正です"),
        (["--dataset", "nosuch"], "nosuch"),
        (["--out", "t.csv"], ".xlsx にしてください"),
    ],
)
def test_bad_arguments_are_explained(project, tmp_path, capsys, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    base = {"--dataset": "sample", "--fiscal-year": str(FY)}
    for k, v in zip(args[::2], args[1::2], strict=False):
        base[k] = v
    argv = ["template"] + [x for kv in base.items() for x in kv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and " / " in err
    assert list(tmp_path.glob("*.xlsx")) == []


def test_wareki_date():
    assert st.wareki_date(date(2026, 10, 30)) == "令和8年10月30日"
    assert st.wareki_date(date(2019, 5, 1)) == "令和元年5月1日"
    assert st.wareki_date(date(2019, 4, 30)) == "2019年4月30日"


def test_file_names_never_leave_the_folder():
    assert st.municipality_file_name("992011", "青葉/市", FY) == "992011_青葉_市_FY2026.xlsx"
    assert st.municipality_file_name("992011", "..", FY) == "992011_.._FY2026.xlsx"
