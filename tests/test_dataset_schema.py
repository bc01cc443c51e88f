"""The dataset definition: names, dataset.yaml, paths confined to the dataset folder, the master.

Each test builds a throw-away project (ANALYSIS_ROOT) with data/raw/<dataset>/ made from the
sample, edits one thing, and checks the Japanese and English message names the key, row or
path; every dataset folder is hashed before and after to prove nothing was written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import survey_fixtures as sf
import yaml

from analysis.cli import main
from analysis.datasets import DatasetError, check_name, load_dataset
from analysis.errors import AnalysisError
from analysis.survey import MasterError, SurveyError, read_master

FY = 2025


@pytest.fixture()
def project(tmp_path, monkeypatch, root):
    """A project root with data/raw/sample (copied), data/external and data/codebook."""
    data = tmp_path / "proj" / "data"
    shutil.copytree(root / "data" / "raw" / "sample", data / "raw" / "sample")
    shutil.copytree(root / "data" / "external", data / "external")
    shutil.copytree(root / "data" / "codebook", data / "codebook")
    monkeypatch.setenv("ANALYSIS_ROOT", str(tmp_path / "proj"))
    ds_dir = data / "raw" / "sample"
    _mark(ds_dir)
    yield ds_dir
    assert sf.snapshot(ds_dir.parent) == _EXPECTED.pop(ds_dir), "the code under test changed a dataset file"


_EXPECTED: dict[Path, dict] = {}


def _mark(ds_dir: Path) -> None:
    """Record the dataset folders as the test left them (after its own deliberate edits)."""
    _EXPECTED[ds_dir] = sf.snapshot(ds_dir.parent)


def _meta(ds_dir: Path) -> dict:
    return yaml.safe_load((ds_dir / "dataset.yaml").read_text(encoding="utf-8"))


def _write_meta(ds_dir: Path, meta: dict | str) -> None:
    text = meta if isinstance(meta, str) else yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    (ds_dir / "dataset.yaml").write_bytes(text.encode("utf-8"))
    _mark(ds_dir)


def _error(match: str, name: str = "sample") -> DatasetError:
    with pytest.raises(DatasetError, match=match) as exc:
        load_dataset(name)
    err = exc.value
    assert isinstance(err, AnalysisError) and err.ja and err.en and err.ja != err.en
    return err


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "sample/..", "a/b", "", ".hidden", "-dash", "x" * 65, "名前", "a b", "a\x00"])
def test_dataset_names_are_plain_identifiers(name):
    with pytest.raises(DatasetError, match=r"使えません.*invalid dataset name"):
        check_name(name)


def test_good_names_pass(project):
    for name in ("sample", "national-synthetic", "pref_22", "A1"):
        assert check_name(name) == name
    assert load_dataset("sample").years == [2021, 2022, 2023, 2024, 2025]


def test_run_refuses_a_path_as_dataset(project, capsys):
    code = main(["validate", str(project / "survey_FY2025.xlsx"), "--dataset", "../sample"])
    assert code == 2 and "invalid dataset name" in capsys.readouterr().err


# --- dataset.yaml ------------------------------------------------------------------------------


def test_bad_yaml_names_the_line(project):
    _write_meta(project, "municipalities: municipalities.csv\nsurveys:\n  2025: [unclosed\n")
    _error(r"YAML の書式が正しくありません（\d+行目.*invalid YAML on line \d+")


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "ファイルが空です.*empty"),
        ("# only a comment\n", "ファイルが空です"),
        ("- a\n- b\n", "「キー: 値」.*not a YAML mapping"),
    ],
)
def test_empty_or_not_a_mapping(project, text, match):
    _write_meta(project, text)
    _error(match)


def test_each_problem_names_its_key(project):
    meta = _meta(project)
    meta["surveys"] = {"令和7": "survey_FY2025.xlsx", 2024: 42}
    meta["synthetic"] = "yes"
    meta["min_response_rate"] = 90
    meta["non_respondig"] = {2025: ["992011"]}
    meta["limits"] = {"max_rows": -1, "max_lines": 5}
    del meta["municipalities"]
    _write_meta(project, meta)
    err = _error("dataset.yaml に問題が")
    for ja in (
        "『令和7』は西暦4桁",
        "（『令和7』なら 2025）",
        "surveys の 2024 のファイル名",
        "項目『synthetic』はtrue/false",
        "min_response_rate は 0 から 1",
        "『non_respondig』があります（もしかして『non_responding』）",
        "limits の『max_rows』は正の整数",
        "limits の『max_lines』は知らない項目",
        "項目『municipalities』がありません",
    ):
        assert ja in err.ja, ja
    for en in (
        "'令和7' is 2025",
        "unknown key 'non_respondig' (did you mean 'non_responding'?)",
        "missing key 'municipalities'",
    ):
        assert en in err.en, en
    assert err.where.endswith("dataset.yaml")


def test_non_responding_codes_are_checked(project):
    meta = _meta(project)
    meta["non_responding"] = {2025: ["992012", 99201]}
    _write_meta(project, meta)
    _error("non_responding の 2025 のコード『992012』が不正です.*wrong check digit")


def test_prefecture_code_as_a_number_is_accepted_and_padded(project):
    meta = _meta(project)
    meta["prefecture_code"] = 99
    _write_meta(project, meta)
    assert load_dataset("sample").meta["prefecture_code"] == "99"


# --- confinement -------------------------------------------------------------------------------


def test_absolute_paths_and_escapes_are_refused(project, tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("code,name\n", encoding="utf-8")
    meta = _meta(project)
    for bad, match in (
        (str(outside), "絶対パスは使えません.*absolute paths"),
        ("../sample/../../secret.csv", "フォルダ.*の外を指しています.*outside the dataset folder"),
        ("sub/../../secret.csv", "outside the dataset folder"),
    ):
        _write_meta(project, {**meta, "municipalities": bad})
        err = _error(match)
        assert "municipalities" in err.ja and bad in err.ja


def test_symlinks_are_resolved(project, tmp_path):
    outside = tmp_path / "outside.xlsx"
    outside.write_bytes((project / "survey_FY2025.xlsx").read_bytes())
    (project / "linked.xlsx").symlink_to(outside)
    _mark(project)
    meta = _meta(project)
    _write_meta(project, {**meta, "surveys": {**meta["surveys"], 2025: "linked.xlsx"}})
    err = _error(r"surveys: 2025.*outside")
    assert str(outside.resolve()) in err.ja
    if Path("/dev/zero").exists():
        (project / "zero.csv").symlink_to("/dev/zero")
        _mark(project)
        _write_meta(project, {**meta, "municipalities": "zero.csv"})
        _error("外を指しています.*/dev/zero")


def test_a_folder_is_not_a_file(project):
    (project / "folder.xlsx").mkdir()
    _mark(project)
    meta = _meta(project)
    _write_meta(project, {**meta, "surveys": {**meta["surveys"], 2025: "folder.xlsx"}})
    _error("通常のファイルではありません.*not a regular file")


def test_outputs_may_not_go_into_data_raw(project, tmp_path, capsys):
    other = project.parent / "other"
    other.mkdir()
    _mark(project)
    target = other / "municipalities.csv"
    code = main(["validate", str(project / "survey_FY2025.xlsx"), "--dataset", "sample", "--tidy-out", str(target)])
    assert (
        code == 2 and "data/ の中（調査ファイル・市町一覧・コードブック）には書き出せません" in capsys.readouterr().err
    )
    assert not target.exists()
    out = tmp_path / "tidy.csv"
    assert main(["validate", str(project / "survey_FY2025.xlsx"), "--dataset", "sample", "--tidy-out", str(out)]) == 0
    assert out.is_file()


# --- response rate through the dataset ------------------------------------------------------------


def test_a_short_file_fails_validate_until_listed(project, book, capsys):
    ds = load_dataset("sample")
    ref = ds.read(FY, book).tidy
    gone = list(ref["code"][:2])
    grid = sf.build_grid(ref, book)
    for c in gone:
        grid.remove(c)
    sf.save(grid, project / "survey_FY2025.xlsx")
    _mark(project)
    res = load_dataset("sample").read(FY, book)
    assert not res.ok and res.info["response_rate"] == pytest.approx(33 / 35)
    assert main(["validate", str(project / "survey_FY2025.xlsx"), "--dataset", "sample"]) == 1
    assert "回答率 33/35" in capsys.readouterr().out
    meta = _meta(project)
    _write_meta(project, {**meta, "non_responding": {FY: gone}})
    res = load_dataset("sample").read(FY, book)
    assert res.ok and res.info["non_responding"] == gone
    _write_meta(project, {**meta, "min_response_rate": 0.9})
    assert load_dataset("sample").read(FY, book).ok


# --- the municipality master ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def master_ref(sample):
    return sample.master()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932", "utf-16"])
def test_master_in_any_encoding(tmp_path, master_ref, encoding):
    path = tmp_path / "m.csv"
    path.write_bytes(master_ref.to_csv(index=False, lineterminator="\r\n").encode(encoding))
    before = sf.sha256(path)
    pd.testing.assert_frame_equal(read_master(path), master_ref)
    assert sf.sha256(path) == before


def test_master_as_xlsx_with_japanese_headers_and_empty_covariates(tmp_path, master_ref):
    frame = master_ref.copy()
    frame.loc[3, "population"] = None
    frame.loc[5, "kaso"] = None
    frame = frame.rename(columns={"code": "市町村コード", "name": "市町村名", "population": "人口", "kaso": "過疎"})
    path = tmp_path / "m.xlsx"
    frame.to_excel(path, index=False)
    got = read_master(path)
    assert list(got.columns) == list(master_ref.columns)
    assert pd.isna(got.loc[3, "population"]) and pd.isna(got.loc[5, "kaso"])  # missing, never filled in
    expected = master_ref.drop(index=[3, 5])
    pd.testing.assert_frame_equal(got.drop(index=[3, 5]), expected, check_dtype=False)


def _master_error(path: Path, match: str) -> MasterError:
    with pytest.raises(MasterError, match=match) as exc:
        read_master(path)
    err = exc.value
    assert isinstance(err, SurveyError) and err.ja and err.en
    return err


def test_master_problems_name_row_and_column(tmp_path, master_ref):
    rows = master_ref.astype(object).copy()
    rows.loc[1, "code"] = rows.loc[0, "code"]  # duplicate (Excel row 3)
    rows.loc[4, "code"] = "992012"  # wrong check digit (row 6)
    rows.loc[6, "aging_rate"] = "高い"  # not a number (row 8)
    rows.loc[7, "kaso"] = 2  # out of range (row 9)
    rows.loc[8, "name"] = ""  # empty name (row 10)
    path = tmp_path / "m.csv"
    path.write_bytes(rows.to_csv(index=False).encode("utf-8"))
    err = _master_error(path, r"市町村マスタに問題が 5 件あります。最初の問題: 3行目.*5 problem\(s\).*row 3")
    issues = err.issues.set_index("row")
    assert "重複" in issues.loc[3, "reason_ja"] and "検査数字" in issues.loc[6, "reason_ja"]
    assert issues.loc[8, "column"] == "aging_rate" and issues.loc[8, "value"] == "高い"
    assert "範囲外" in issues.loc[9, "reason_ja"] and "empty name" in issues.loc[10, "reason_en"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("code,population\n992011,100\n", "必須の列『name』.*required column 'name'"),
        ("", "空です"),
        ("code,name\n", "市町村の行がありません"),
        ("x,y\n1,2\n", "見出し行"),
    ],
)
def test_master_shape_errors(tmp_path, text, match):
    path = tmp_path / "m.csv"
    path.write_bytes(text.encode("utf-8"))
    with pytest.raises(SurveyError, match=match):
        read_master(path)


def test_a_broken_master_is_a_clean_error_in_validate(project, capsys):
    (project / "municipalities.csv").write_bytes("code,name\n992011,青葉市\n992011,霞ヶ丘市\n".encode("cp932"))
    _mark(project)
    code = main(["validate", str(project / "survey_FY2025.xlsx"), "--dataset", "sample"])
    assert code == 2 and "コードが重複しています" in capsys.readouterr().err


def test_an_unknown_dataset_suggests_the_close_name_and_lists_only_a_few(tmp_path, monkeypatch):
    from conftest import make_project_copy

    project = make_project_copy(tmp_path / "p")
    for i in range(1, 48):
        d = project / "data" / "raw" / f"national_pref{i:02d}"
        d.mkdir()
        (d / "dataset.yaml").write_text("municipalities: m.csv\nsurveys: {}\n", encoding="utf-8")
    monkeypatch.setenv("ANALYSIS_ROOT", str(project))
    with pytest.raises(DatasetError) as err:
        load_dataset("national-pref31")
    text = str(err.value)
    assert "もしかして『national_pref31』" in text and "did you mean 'national_pref31'?" in text
    assert "ほか 40 件" in text and "and 40 more" in text and "national_pref47" not in text
