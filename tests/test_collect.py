"""`python -m analysis collect`: merging the questionnaires municipalities send back.

The returned files are per-municipality templates (`analysis.survey_template`) filled with
random answers from their own drop-down lists; each test copies them into a folder the way
e-mail leaves them (renamed, in subfolders, twice, missing, among other attachments) and runs
collect against a throw-away copy of the project (ANALYSIS_ROOT), never the repository's data/.

In that copy the sample's master keeps only the municipalities in CODES (every file is read on
each collect; nothing here depends on how many there are), so these tests read 8 files, not 35.
The end-to-end test (`full` tier) collects all 35 of the sample and runs the report on them.
"""

from __future__ import annotations

import random
import shutil

import pandas as pd
import pytest
import template_fill as tf
import yaml
from conftest import make_project_copy, run_cli
from openpyxl import Workbook, load_workbook

from analysis import survey_template as st
from analysis.cli import main
from analysis.datasets import load_dataset
from analysis.export import save_workbook

FY = 2026
DROPPED = ("994090", "千鳥町")
TWICE = "992020"
# the municipalities of the tests' master: the ones the tests name, and one they leave alone
CODES = ("992011", TWICE, "992038", "992046", "993018", DROPPED[0], "995011", "996017")


def make_returned(folder, book, master):
    """A filled per-municipality file for each row of `master` in `folder`; the answers they hold."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2026)
    frames = []
    for code, name in zip(master["code"], master["name"], strict=False):
        path = folder / st.municipality_file_name(code, name, FY)
        save_workbook(st.build_workbook(book, master, FY, codes=[code], synthetic=True), path)
        frames.append(tf.fill(path, book, FY, rng, p_blank=0))
    expected = pd.concat(frames).sort_values("code").reset_index(drop=True)
    return folder, expected


@pytest.fixture(scope="module")
def master(sample):
    """The sample master's rows of CODES: the master of the `project` copies."""
    frame = sample.master()
    return frame[frame["code"].astype(str).isin(CODES)].reset_index(drop=True)


@pytest.fixture(scope="module")
def returned(tmp_path_factory, book, master):
    """A filled file for each municipality of `master` and the answers they hold."""
    return make_returned(tmp_path_factory.mktemp("returned"), book, master)


@pytest.fixture()
def project(tmp_path, monkeypatch, master):
    """A project copy whose sample master keeps the rows of CODES only (lines dropped, text kept)."""
    root = make_project_copy(tmp_path / "project")
    path = root / "data/raw/sample/municipalities.csv"
    header, *rows = path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    path.write_text("".join([header, *(r for r in rows if r.split(",", 1)[0] in CODES)]), encoding="utf-8-sig")
    monkeypatch.setenv("ANALYSIS_ROOT", str(root))
    assert len(load_dataset("sample").master()) == len(master) == len(CODES)
    return root


def inbox(returned, tmp_path, drop=(), name="inbox"):
    folder = tmp_path / name
    folder.mkdir()
    for p in sorted(returned[0].iterdir()):
        if drop and p.name.startswith(drop):
            continue
        shutil.copy2(p, folder / p.name)
    return folder


def file_of(folder, code):
    return next(p for p in folder.iterdir() if p.name.startswith(code))


def collect(capsys, folder, *extra):
    code = main(["collect", "--dataset", "sample", "--fiscal-year", str(FY), str(folder), *map(str, extra)])
    out = capsys.readouterr()
    return code, out.out, out.err


def snapshot(project):
    return {p: p.read_bytes() for p in sorted((project / "data").rglob("*")) if p.is_file()}


# --- the normal case --------------------------------------------------------------------------------


def test_complete_folder_becomes_the_survey_of_the_year(project, returned, tmp_path, capsys, book):
    meta_before = yaml.safe_load((project / "data/raw/sample/dataset.yaml").read_text(encoding="utf-8"))
    code, out, err = collect(capsys, inbox(returned, tmp_path))
    assert code == 0, err
    assert f"{len(CODES)} 市町の回答" in out and "survey file written" in out
    target = project / "data/raw/sample/survey_FY2026.xlsx"
    assert target.is_file()
    text = (project / "data/raw/sample/dataset.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Dataset definition")  # the leading comment is kept
    meta = yaml.safe_load(text)
    assert meta["surveys"] == {**meta_before["surveys"], 2026: "survey_FY2026.xlsx"}
    assert {k: v for k, v in meta.items() if k != "surveys"} == {k: v for k, v in meta_before.items() if k != "surveys"}
    result = load_dataset("sample").read(FY, book)
    assert result.ok
    pd.testing.assert_frame_equal(result.tidy, returned[1])
    # the same layout as the template: cover, locked rows, drop-down lists
    wb = load_workbook(target)
    assert wb.sheetnames == [st.COVER_SHEET, st.ANSWER_SHEET]
    ws = wb[st.ANSWER_SHEET]
    assert ws.protection.sheet and ws.cell(row=st.FIRST_DATA_ROW, column=1).protection.locked
    assert tf.rule_for(ws, f"D{st.FIRST_DATA_ROW + len(CODES) - 1}").formula1 == '"○,×"'


# --- what e-mail does to a folder -------------------------------------------------------------------


def test_missing_duplicate_and_foreign_files_are_reported_and_nothing_is_written(project, returned, tmp_path, capsys):
    folder = inbox(returned, tmp_path, drop=(DROPPED[0],))
    (folder / "Re 再送").mkdir()
    shutil.copy2(file_of(folder, TWICE), folder / "Re 再送" / "回答票（霞ヶ丘市）.xlsx")
    junk = Workbook()
    junk.active.append(["氏名", "メールアドレス"])
    junk.active.append(["山田", "yamada@example.invalid"])
    junk.save(folder / "連絡先.xlsx")
    (folder / "送付状.pdf").write_bytes(b"%PDF-1.4\n")
    (folder / "~$992011_青葉市_FY2026.xlsx").write_bytes(b"lock")
    before = snapshot(project)
    code, out, err = collect(capsys, folder)
    assert code == 1
    text = out + err
    assert f"回答（ファイル）のない市町が 1 あります: {DROPPED[0]} {DROPPED[1]}" in text
    assert f"no file from 1 municipality: {DROPPED[0]}" in text
    twice = file_of(folder, TWICE).name
    assert (
        f"{TWICE} 霞ヶ丘市 の回答が複数のファイルにあります（『{twice}』と『Re 再送/回答票（霞ヶ丘市）.xlsx』、"
        f"内容は同じ）。『{twice}』を使います"
    ) in text
    assert "identical answers" in text
    assert "連絡先.xlsx: 調査票の回答表が見つからないため" in text and "ignored as not a questionnaire" in text
    assert "送付状.pdf: Excel (.xlsx) ではないため読み込みませんでした" in text
    assert "~$" not in text  # Excel's lock file is not worth a line
    assert "nothing written" in err
    assert snapshot(project) == before


def test_allow_missing_writes_without_them(project, returned, tmp_path, capsys, book):
    folder = inbox(returned, tmp_path, drop=(DROPPED[0],))
    shutil.copy2(file_of(folder, TWICE), folder / "copy.xlsx")
    code, out, err = collect(capsys, folder, "--allow-missing")
    assert code == 0, err
    assert "[警告/warning]" in out and DROPPED[0] in out
    result = load_dataset("sample").read(FY, book)
    assert result.info["missing"] == [DROPPED[0]]
    pd.testing.assert_frame_equal(result.tidy, returned[1][returned[1]["code"] != DROPPED[0]].reset_index(drop=True))


def test_different_answers_from_one_municipality_are_an_error_naming_both_files(
    project, returned, tmp_path, capsys, book
):
    folder = inbox(returned, tmp_path)
    second = folder / "再提出.xlsx"
    shutil.copy2(file_of(folder, TWICE), second)
    old = returned[1].set_index("code").loc[TWICE, "item_hub"]
    tf.set_cell(second, "item_hub", book, "×" if old else "○")
    before = snapshot(project)
    code, _out, err = collect(capsys, folder)
    assert code == 1
    first = file_of(folder, TWICE).name
    assert (
        f"[エラー/error] 再提出.xlsx: {TWICE} 霞ヶ丘市 の回答が複数のファイルにあり、内容が違います"
        f"（『{first}』と『再提出.xlsx』、違う設問: 『地域住民が交流できる拠点の整備』）"
    ) in err
    assert "differing: item_hub" in err
    assert snapshot(project) == before


def test_a_file_with_an_invalid_answer_is_named_with_its_cell(project, returned, tmp_path, capsys, book):
    folder = inbox(returned, tmp_path)
    bad = file_of(folder, "993018")
    cell = tf.set_cell(bad, "jusou_status", book, "検討中")
    before = snapshot(project)
    code, _out, err = collect(capsys, folder)
    assert code == 1
    line = next(ln for ln in err.splitlines() if bad.name in ln)
    assert f"セル {cell}" in line and "値『検討中』" in line and f"cell {cell}" in line
    assert snapshot(project) == before


def test_a_broken_workbook_is_an_error_naming_it(project, returned, tmp_path, capsys):
    folder = inbox(returned, tmp_path)
    (folder / "壊れた添付.xlsx").write_bytes(b"this is not a zip archive")
    before = snapshot(project)
    code, _out, err = collect(capsys, folder)
    assert code == 1
    assert "[エラー/error] 壊れた添付.xlsx: Excel ファイルとして開けません" in err and "cannot open as xlsx" in err
    assert snapshot(project) == before


def test_last_years_questionnaire_is_refused(project, returned, tmp_path, capsys, book, master):
    folder = inbox(returned, tmp_path, drop=("995011",))
    old = folder / "995011_椿原町_FY2025.xlsx"
    save_workbook(st.build_workbook(book, master, FY - 1, codes=["995011"]), old)
    tf.fill(old, book, FY - 1, random.Random(1), p_blank=0)
    code, _out, err = collect(capsys, folder)
    assert code == 1
    assert f"{old.name}: " in err and f"title says FY{FY - 1} but FY{FY} was requested" in err


def test_a_contact_list_with_a_municipality_column_is_not_a_survey(project, returned, tmp_path, capsys):
    folder = inbox(returned, tmp_path)
    wb = Workbook()
    wb.active.append(["市町村名", "担当者", "電話"])
    wb.active.append(["青葉市", "山田", "000-0000"])
    wb.save(folder / "担当者名簿.xlsx")
    code, out, err = collect(capsys, folder)
    assert code == 0, err
    assert "担当者名簿.xlsx: 市町村の列はありますが設問の列がないため" in out


def test_an_unanswered_return_counts_as_missing(project, returned, tmp_path, capsys, book, master):
    folder = inbox(returned, tmp_path, drop=("996017",))
    save_workbook(st.build_workbook(book, master, FY, codes=["996017"]), folder / "blank.xlsx")
    code, out, err = collect(capsys, folder)
    assert code == 1
    assert "blank.xlsx: 996017 銀杏町: 回答が1つも記入されていないため、未回答として扱います" in out
    assert "回答（ファイル）のない市町が 1 あります: 996017 銀杏町" in err


def test_blank_required_answers_are_warnings(project, returned, tmp_path, capsys, book):
    folder = inbox(returned, tmp_path)
    f = file_of(folder, "992046")
    tf.set_cell(f, "ch_internal", book, None)
    code, out, err = collect(capsys, folder)
    assert code == 0, err
    assert f"[警告/warning] {f.name}: 992046 白砂市: 必須の設問 1 問が未回答です（『庁内の理解不足』）" in out


# --- never overwrite ---------------------------------------------------------------------------------


def test_existing_survey_or_entry_needs_replace(project, returned, tmp_path, capsys):
    folder = inbox(returned, tmp_path)
    assert collect(capsys, folder)[0] == 0
    target = project / "data/raw/sample/survey_FY2026.xlsx"
    before = snapshot(project)
    code, _out, err = collect(capsys, folder)
    assert code == 1 and "既に登録されています" in err and "pass --replace" in err
    assert snapshot(project) == before
    assert collect(capsys, folder, "--replace")[0] == 0
    assert target.read_bytes() == before[target]  # same answers, same bytes


def test_an_unregistered_file_in_the_way_is_not_overwritten(project, returned, tmp_path, capsys):
    target = project / "data/raw/sample/survey_FY2026.xlsx"
    target.write_bytes(b"someone's own file")
    code, _out, err = collect(capsys, inbox(returned, tmp_path))
    assert code == 1 and "調査ファイルが既にあります" in err
    assert target.read_bytes() == b"someone's own file"
    assert "2026" not in (project / "data/raw/sample/dataset.yaml").read_text(encoding="utf-8")


def test_out_writes_elsewhere_and_leaves_the_dataset_alone(project, returned, tmp_path, capsys, book, master):
    before = snapshot(project)
    out_path = tmp_path / "combined.xlsx"
    code, _out, err = collect(capsys, inbox(returned, tmp_path), "--out", out_path)
    assert code == 0, err
    assert snapshot(project) == before
    from analysis.io import read_survey

    result = read_survey(out_path, book, master, fiscal_year=FY, prefecture_code="99")
    pd.testing.assert_frame_equal(result.tidy, returned[1])
    code, _out, err = collect(capsys, tmp_path / "inbox", "--out", project / "data/raw/sample/x.xlsx")
    assert code == 1 and "data/ の中は指定できません" in err
    assert snapshot(project) == before


# --- end to end ------------------------------------------------------------------------------------------


@pytest.mark.full
def test_end_to_end_collect_then_run(tmp_path, book, sample):
    """On a project copy through the real command line: a messy folder is refused with its reasons,
    the complete one becomes a survey file, and `run` makes the FY2026 report from it. All 35
    municipalities of the sample (its own master, not CODES)."""
    project = make_project_copy(tmp_path / "project")
    returned = make_returned(tmp_path / "returned", book, sample.master())
    messy = inbox(returned, tmp_path, drop=(DROPPED[0],), name="messy")
    shutil.copy2(file_of(messy, TWICE), messy / "Fwd 回答.xlsx")
    junk = Workbook()
    junk.active.append(["件名", "日付"])
    junk.save(messy / "受信一覧.xlsx")
    proc = run_cli(project, "collect", "--dataset", "sample", "--fiscal-year", str(FY), str(messy))
    assert proc.returncode == 1
    assert DROPPED[0] in proc.stderr and "Fwd 回答.xlsx" in proc.stdout and "受信一覧.xlsx" in proc.stdout
    assert not (project / "data/raw/sample/survey_FY2026.xlsx").exists()

    proc = run_cli(
        project,
        "collect",
        "--dataset",
        "sample",
        "--fiscal-year",
        str(FY),
        str(inbox(returned, tmp_path, name="complete")),
    )
    assert proc.returncode == 0, proc.stderr
    proc = run_cli(
        project, "run", "--dataset", "sample", "--years", str(FY), "--jobs", "2", "--no-progress", "--no-pdf"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = project / "reports" / "sample" / f"FY{FY}"
    assert (report / "report.html").is_file() and (report / "manifest.json").is_file()
    html = (report / "report.html").read_text(encoding="utf-8")
    assert "令和8年度" in html
