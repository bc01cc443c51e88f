"""Outputs go only under reports/<dataset>/ or to an explicit out-path outside data/ (issue 10).

`validate --tidy-out/--issues-out` used to overwrite whatever it was given, e.g. another dataset's
municipalities.csv. Each case below runs the real command (in-process, on a copy of the project
that holds a second, real-looking dataset ``other``) and checks the file system afterwards.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import make_project_copy

from analysis.cli import main

FY = 2025


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project = make_project_copy(tmp_path_factory.mktemp("confine"))
    src, other = project / "data" / "raw" / "sample", project / "data" / "raw" / "other"
    shutil.copytree(src, other)
    meta = yaml.safe_load((other / "dataset.yaml").read_text(encoding="utf-8"))
    meta.update(name="other", synthetic=False)
    (other / "dataset.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    (project / "reports" / "other" / "FY2025").mkdir(parents=True)
    (project / "reports" / "sample" / "FY2025" / "tables").mkdir(parents=True)
    return project


@pytest.fixture()
def cli(project, monkeypatch, capsys):
    monkeypatch.setenv("ANALYSIS_ROOT", str(project))
    monkeypatch.chdir(project)

    def call(*args) -> tuple[int, str, str]:
        code = main([*map(str, args)])
        out = capsys.readouterr()
        return code, out.out, out.err

    return call


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _validate(cli, project, *out_args):
    return cli(
        "validate",
        project / "data" / "raw" / "sample" / f"survey_FY{FY}.xlsx",
        "--dataset",
        "sample",
        "--fiscal-year",
        FY,
        *out_args,
    )


@pytest.mark.parametrize(
    "target, says",
    [
        ("data/raw/other/municipalities.csv", "data/ の中"),  # another dataset's master
        ("data/raw/sample/new.csv", "data/ の中"),  # a new file among the inputs
        ("data/codebook/survey.yaml", "data/ の中"),  # the codebook
        ("reports/other/FY2025/tidy.csv", "別のデータセット『other』"),  # another dataset's reports
        ("reports/sample/FY2025/tables/01_status.csv", "レポートのフォルダ"),  # a report `run` manages
        ("reports/sample/index.html", "レポートのフォルダ"),
        ("reports", "フォルダです"),
    ],
)
def test_refused_out_paths_leave_everything_untouched(cli, project, target, says):
    before = {**_hashes(project / "data"), **_hashes(project / "reports")}
    for option in ("--tidy-out", "--issues-out"):
        code, _, err = _validate(cli, project, option, target)
        assert code == 2 and says in err and "refusing" in err, err
    assert {**_hashes(project / "data"), **_hashes(project / "reports")} == before


def test_a_symlink_into_the_inputs_is_refused(cli, project, tmp_path):
    link = tmp_path / "innocent.csv"
    link.symlink_to(project / "data" / "raw" / "other" / "municipalities.csv")
    before = _hashes(project / "data")
    code, _, err = _validate(cli, project, "--tidy-out", link)
    assert code == 2 and "data/ の中" in err
    assert _hashes(project / "data") == before


def test_the_same_file_for_both_outputs_is_refused(cli, project, tmp_path):
    code, _, err = _validate(cli, project, "--tidy-out", tmp_path / "a.csv", "--issues-out", tmp_path / "a.csv")
    assert code == 2 and "同じファイル" in err and not (tmp_path / "a.csv").exists()


@pytest.mark.parametrize("target", ["{tmp}/out/tidy.csv", "data/processed/tidy.csv", "reports/sample/tidy.csv"])
def test_allowed_out_paths_are_written(cli, project, tmp_path, target):
    path = Path(target.format(tmp=tmp_path))
    code, _out, err = _validate(cli, project, "--tidy-out", path)
    assert code == 0, err
    full = path if path.is_absolute() else project / path
    assert len(pd.read_csv(full, encoding="utf-8-sig")) == 35
    full.unlink()


def test_a_read_only_out_path_is_a_clear_error(cli, project, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    try:
        subprocess.run(["mount", "--bind", str(ro), str(ro)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs root for a read-only bind mount")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True, capture_output=True)
        code, _, err = _validate(cli, project, "--tidy-out", ro / "tidy.csv")
    finally:
        subprocess.run(["umount", str(ro)], check=True, capture_output=True)
    assert code == 1
    assert "読み取り専用の場所のため書き込めませんでした" in err and "read-only file system" in err
    assert str(ro / "tidy.csv") in err


def test_sample_does_not_overwrite_a_real_dataset(cli, project):
    before = _hashes(project / "data" / "raw" / "other")
    code, _, err = cli("sample", "--out", project / "data" / "raw" / "other")
    assert code == 2 and "合成データではない" in err and "not synthetic" in err
    assert _hashes(project / "data" / "raw" / "other") == before
