"""Survey files, the master and the codebook are read once per process and content, never stale."""

from __future__ import annotations

import os
import shutil

import pytest

from analysis import filecache
from analysis.codebook import load_codebook
from analysis.datasets import load_dataset


@pytest.fixture()
def project(tmp_path, monkeypatch, root):
    """A copy of the sample's data with ANALYSIS_ROOT pointing at it, and empty caches."""
    shutil.copytree(root / "data", tmp_path / "data", ignore=shutil.ignore_patterns("processed", "national-synthetic"))
    monkeypatch.setenv("ANALYSIS_ROOT", str(tmp_path))
    filecache.clear_all()
    yield tmp_path
    filecache.clear_all()


def test_a_survey_is_read_once_and_each_caller_gets_its_own_copy(project):
    ds = load_dataset("sample")
    first = ds.read(2025)
    survey = filecache.CACHES["survey"]
    assert (survey.hits, survey.misses) == (0, 1)
    first.tidy.loc[0, "jusou_status"] = "changed by a caller"
    first.info["sheet"] = "changed too"
    second = ds.read(2025)
    assert (survey.hits, survey.misses) == (1, 1)
    assert second.tidy.loc[0, "jusou_status"] != "changed by a caller"
    assert second.info.get("sheet") != "changed too"
    assert second.tidy is not first.tidy and second.issues is not first.issues


def test_a_file_rewritten_in_place_is_read_again_even_with_the_same_size_and_mtime(project, tmp_path):
    # the key holds the sha256 of the bytes, not only size and mtime
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc")
    st = f.stat()
    before = filecache.file_key(f)
    f.write_bytes(b"abd")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    assert filecache.file_key(f) != before
    # a survey file replaced by another year's answers, its mtime put back, is read again
    ds = load_dataset("sample")
    path = ds.survey_path(2025)
    old = ds.read(2025)
    st = path.stat()
    shutil.copyfile(ds.survey_path(2023), path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    new = ds.read(2025)
    assert filecache.CACHES["survey"].misses == 2
    assert not new.tidy.drop(columns="fiscal_year").equals(old.tidy.drop(columns="fiscal_year"))


def test_a_different_codebook_is_a_different_read(project):
    ds = load_dataset("sample")
    ds.read(2024)
    book = load_codebook()
    book.raw["questions"][0]["aliases"] = [*book.raw["questions"][0].get("aliases", []), "別名の見出し"]
    ds.read(2024, book)
    assert filecache.CACHES["survey"].misses == 2


def test_the_codebook_is_parsed_once_and_copies_are_independent(project):
    a = load_codebook()
    a.raw["main_items"].append("changed by a caller")
    b = load_codebook()
    assert "changed by a caller" not in b.raw["main_items"]
    assert filecache.CACHES["codebook"].misses == 1 and filecache.CACHES["codebook"].hits >= 1


def test_the_master_is_read_once_and_reread_when_it_changes(project):
    ds = load_dataset("sample")
    m1 = ds.master()
    m1.loc[0, "name"] = "changed by a caller"
    assert ds.master().loc[0, "name"] != "changed by a caller"
    assert filecache.CACHES["master"].misses == 1
    path = ds.master_path
    path.write_bytes(path.read_bytes() + b"\n")  # a trailing blank line: new content, same table
    ds.master()
    assert filecache.CACHES["master"].misses == 2


def test_a_missing_or_broken_file_is_reported_by_the_reader_and_not_cached(project):
    from analysis.survey import SurveyError

    ds = load_dataset("sample")
    path = ds.survey_path(2025)
    path.write_bytes(b"not a workbook")
    with pytest.raises(SurveyError):
        ds.read(2025)
    assert len(filecache.CACHES["survey"]) == 0
    path.unlink()
    with pytest.raises(SurveyError):
        ds.read(2025)
