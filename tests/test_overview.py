"""reports/index.html, the page linking every dataset's site: what its banner says about the data."""

from __future__ import annotations

import shutil

import pytest
import yaml
from conftest import make_project_copy

from analysis.overview import ALL_SYNTHETIC_BANNER_JA, SOME_SYNTHETIC_BANNER_JA, build_overview


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A project with the sample (synthetic) and `real31`, the same data declared real."""
    project = make_project_copy(tmp_path / "p")
    real = project / "data" / "raw" / "real31"
    shutil.copytree(project / "data" / "raw" / "sample", real)
    meta = yaml.safe_load((real / "dataset.yaml").read_text(encoding="utf-8"))
    meta.update(name="real31", synthetic=False, label_ja="実データ県")
    (real / "dataset.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    for name in ("sample", "real31"):
        (project / "reports" / name).mkdir(parents=True)
        (project / "reports" / name / "index.html").write_text("<!DOCTYPE html>", encoding="utf-8")
    monkeypatch.setenv("ANALYSIS_ROOT", str(project))
    return project


def test_a_real_dataset_is_never_called_fictional(project):
    html = build_overview(project / "reports", ["sample", "real31"]).read_text(encoding="utf-8")
    assert ALL_SYNTHETIC_BANNER_JA not in html and SOME_SYNTHETIC_BANNER_JA in html
    # the synthetic row says so; the real one does not
    rows = html.split("<tr>")[2:]
    real_row = next(r for r in rows if "real31/index.html" in r)
    sample_row = next(r for r in rows if "sample/index.html" in r)
    assert "架空データ" in sample_row and "架空データ" not in real_row


def test_all_synthetic_and_all_real(project):
    reports = project / "reports"
    shutil.rmtree(reports / "real31")
    html = build_overview(reports, ["sample"]).read_text(encoding="utf-8")
    assert ALL_SYNTHETIC_BANNER_JA in html
    shutil.rmtree(reports / "sample")
    (reports / "real31").mkdir()
    (reports / "real31" / "index.html").write_text("<!DOCTYPE html>", encoding="utf-8")
    html = build_overview(reports, ["real31"]).read_text(encoding="utf-8")
    body = html.split("<body>", 1)[1]
    assert "架空" not in body and 'class="banner"' not in body


def test_the_list_becomes_cards_on_a_phone(project):
    # the same card layout as a dataset's index (site.css .table-years), so no column is off-screen
    html = build_overview(project / "reports", ["sample", "real31"]).read_text(encoding="utf-8")
    assert 'class="table-scroll table-years"' in html and ".table-years td" in html
    assert html.count('data-label="') >= 2 * 6


def test_the_page_says_when_its_newest_report_was_made_never_the_clock(project):
    import json

    reports = project / "reports"
    html = build_overview(reports, ["sample", "real31"]).read_text(encoding="utf-8")
    assert "最新のレポートの作成日時：不明" in html
    for name, finished in (("sample", "2026-11-28T01:30:00+00:00"), ("real31", "2026-11-29T03:05:00+00:00")):
        (reports / name / "FY2025").mkdir()
        manifest = {"status": "ok", "finished": finished, "summary": {"n_municipalities": 35}}
        (reports / name / "FY2025" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    html = build_overview(reports, ["sample", "real31"]).read_text(encoding="utf-8")
    assert '<time datetime="2026-11-29T03:05:00+00:00">2026年11月29日 12:05（日本時間）</time>' in html
