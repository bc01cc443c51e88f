"""Tests for analysis.site.build_index (static index of a dataset's reports)."""

from __future__ import annotations

import json
import re
import stat
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pandas as pd
import pytest

from analysis.htmlexport import FICTIONAL_DATA_BANNER_JA, find_offline_violations
from analysis.site import build_index, wareki_fy

COMMIT = "0123456789abcdef0123456789abcdef01234567"
INJECT = "<script>alert(1)</script>"
IMG_INJECT = "<img src=x onerror=alert(1)>"

DATASET = {
    "name": "sample",
    "label_ja": f"架空県（サンプル）{INJECT}",
    "label_en": "Fictional prefecture (sample)",
    "synthetic": True,
    "description_ja": f"架空の県の35市町を対象とした調査に基づく評価です。{IMG_INJECT}\n\n二段落目です。",
}


def _sha(seed: str) -> str:
    import hashlib

    return hashlib.sha256(seed.encode()).hexdigest()


def _manifest(fy: int | None, *, status: str = "ok", finished: str, notebook: str = "fiscal_year_report") -> dict:
    inputs = {"data/external/municipality_codes.csv": _sha("codes")}
    if fy is not None:
        inputs[f"data/raw/sample/survey_FY{fy}.xlsx"] = _sha(f"survey{fy}")
    else:
        inputs[f"data/raw/sample/{INJECT}.xlsx"] = _sha("inject")
    return {
        "dataset": "sample",
        "notebook": notebook,
        "fiscal_year": fy,
        "status": status,
        "parameters": {"dataset": "sample", "fiscal_year": fy},
        "summary": {"n_municipalities": 35, "n_jusou": 13, "n_full": 7},
        "inputs": inputs,
        "git_commit": COMMIT,
        "code_hash": _sha("code"),
        "finished": finished,
    }


def _write_report_dir(d: Path, manifest: dict | None, *, csv_names=("t2_jusou.csv", "t1_summary.csv")) -> None:
    (d / "tables").mkdir(parents=True, exist_ok=True)
    (d / "figures").mkdir(exist_ok=True)
    (d / "report.html").write_text("<!DOCTYPE html><html lang='ja'><title>r</title></html>", encoding="utf-8")
    df = pd.DataFrame({"市町": ["A町", "B市"], "値": [1, 2]})
    df.to_excel(d / "tables.xlsx", index=False)
    for name in csv_names:
        df.to_csv(d / "tables" / name, index=False, encoding="utf-8-sig")
    (d / "figures" / "fig1.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    if manifest is not None:
        (d / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")


@pytest.fixture
def reports(tmp_path) -> Path:
    """reports/sample/ with FY2021–FY2025, trends and one quality report.

    FY2023 failed (status "error"), FY2022 has no manifest (not built),
    FY2021's CSV names need URL-escaping.
    """
    root = tmp_path / "reports" / "sample"
    for fy in (2021, 2022, 2023, 2024, 2025):
        status = "error" if fy == 2023 else "ok"
        manifest = _manifest(fy, status=status, finished=f"2026-11-28T0{fy - 2020}:00:00+00:00")
        names = ("t1_summary.csv", "支援 一覧&<x>.csv") if fy == 2021 else ("t2_jusou.csv", "t1_summary.csv")
        _write_report_dir(root / f"FY{fy}", None if fy == 2022 else manifest, csv_names=names)
    _write_report_dir(root / "trends", _manifest(None, finished="2026-11-29T03:40:00+00:00", notebook="trends_report"))
    q = root / "quality" / "FY2025"
    q.mkdir(parents=True)
    (q / "report.html").write_text("<!DOCTYPE html><title>q</title>", encoding="utf-8")
    (q / "manifest.json").write_text(
        json.dumps(
            {
                "dataset": "sample",
                "notebook": "quality",
                "fiscal_year": 2025,
                "status": "ok",
                "finished": "2026-11-29T01:00:00+00:00",
            }
        ),
        encoding="utf-8",
    )
    return root


class _Page(HTMLParser):
    """Collects links, table structure and per-row contents."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.resources: list[str] = []
        self.captions = 0
        self.th_col = 0
        self.th_row = 0
        self.rows: list[dict] = []
        self._row: dict | None = None
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
            if self._row is not None:
                self._row["links"].append(a["href"])
        for key in ("src", "href"):
            if key in a and tag != "a":
                self.resources.append(a[key])
        if tag == "caption":
            self.captions += 1
        if tag == "th" and a.get("scope") == "col":
            self.th_col += 1
        if tag == "th" and a.get("scope") == "row":
            self.th_row += 1
        if tag == "tr" and a.get("class", "").startswith("row-"):
            self._row = {"class": a["class"], "links": [], "text": ""}
            self.rows.append(self._row)

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._row is not None:
            self._row["text"] += data


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def _row(page: _Page, fy: int) -> dict:
    [row] = [r for r in page.rows if f"FY{fy}" in r["text"]]
    return row


def test_index_written_and_links_resolve(reports):
    out = build_index(reports, DATASET)
    assert out == reports / "index.html"
    html = out.read_text(encoding="utf-8")
    page = _parse(html)
    assert page.links, "no links found"
    for href in page.links:
        parts = urlsplit(href)
        assert not parts.scheme and not parts.netloc, href
        assert not href.startswith("/"), href
        target = reports / unquote(parts.path)
        assert target.is_file(), href
        assert target.resolve().is_relative_to(reports.resolve())
    # expected links are there
    for expected in (
        "FY2025/report.html",
        "FY2025/tables.xlsx",
        "FY2025/tables/t1_summary.csv",
        "FY2025/tables/t2_jusou.csv",
        "FY2024/report.html",
        "FY2021/report.html",
        "trends/report.html",
        "trends/tables.xlsx",
        "quality/FY2025/report.html",
    ):
        assert expected in page.links, expected
    # URL-escaped file name resolves to the real file
    assert any(unquote(h) == "FY2021/tables/支援 一覧&<x>.csv" for h in page.links)
    # CSV links are sorted
    fy25_csv = [h for h in page.links if h.startswith("FY2025/tables/")]
    assert fy25_csv == sorted(fy25_csv)


def test_page_basics_and_self_contained(reports):
    html = build_index(reports, DATASET).read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="ja">' in html
    assert re.search(r'<meta charset="utf-8"\s*/?>', html)
    assert 'name="viewport"' in html
    assert "<style>" in html
    page = _parse(html)
    assert page.resources == []  # no <link>, <script src>, <img src> …
    assert "script" not in page.tags
    assert find_offline_violations(html) == []
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", html)
    assert "包括的な支援体制の整備に関する市町支援の評価" in html
    assert '"Hiragino Sans"' in html and '"Noto Sans CJK JP"' in html
    assert re.search(r"\.table-scroll\s*\{[^}]*overflow-x:\s*auto", html)


def test_table_structure(reports):
    page = _parse(build_index(reports, DATASET).read_text(encoding="utf-8"))
    assert page.captions >= 1
    assert page.th_col >= 8  # 年度 … CSV + データ品質
    assert page.th_row == 5
    text = "".join(page.text)
    headers = (
        "年度",
        "回答市町数",
        "重層的支援体制整備事業を実施済",
        "指針の主要項目を全て実施",
        "レポート",
        "Excel",
        "CSV",
        "データ品質",
    )
    for header in headers:
        assert header in text


def test_year_rows_wareki_summary_and_order(reports):
    page = _parse(build_index(reports, DATASET).read_text(encoding="utf-8"))
    assert [re.search(r"FY(\d{4})", r["text"]).group(1) for r in page.rows] == ["2025", "2024", "2023", "2022", "2021"]
    row = _row(page, 2025)
    assert "令和7年度" in row["text"]
    assert "35" in row["text"] and "13（37.1%）" in row["text"] and "7（20.0%）" in row["text"]
    assert "令和3年度" in _row(page, 2021)["text"]


def test_failed_and_missing_years_have_no_links(reports):
    page = _parse(build_index(reports, DATASET).read_text(encoding="utf-8"))
    failed = _row(page, 2023)
    assert failed["class"] == "row-failed"
    assert failed["links"] == []
    assert "失敗" in failed["text"]
    missing = _row(page, 2022)
    assert missing["class"] == "row-missing"
    assert missing["links"] == []
    assert "未作成" in missing["text"]
    assert not any(h.startswith(("FY2023/", "FY2022/")) for h in page.links)
    # a year that is ok has the report link
    assert "FY2024/report.html" in _row(page, 2024)["links"]


def test_invalid_or_foreign_manifest_is_failed(reports):
    (reports / "FY2024" / "manifest.json").write_text("{not json", encoding="utf-8")
    other = _manifest(2021, finished="2026-11-28T01:00:00+00:00")
    other["dataset"] = "real_pref"
    (reports / "FY2021" / "manifest.json").write_text(json.dumps(other), encoding="utf-8")
    page = _parse(build_index(reports, DATASET).read_text(encoding="utf-8"))
    for fy in (2024, 2021):
        row = _row(page, fy)
        assert row["links"] == [] and "失敗" in row["text"]


def test_runner_failure_log_marks_year_failed(reports):
    import shutil

    shutil.rmtree(reports / "FY2022")
    (reports / ".failed").mkdir()
    (reports / ".failed" / "FY2022.log").write_text("Traceback ...", encoding="utf-8")
    (reports / ".failed" / "FY2025.log").write_text("old failure", encoding="utf-8")  # later succeeded
    (reports / ".staging" / "FY2024-123").mkdir(parents=True)
    (reports / ".failed" / "FY2020.log").write_text("Traceback ...", encoding="utf-8")
    page = _parse(build_index(reports, DATASET).read_text(encoding="utf-8"))
    row = _row(page, 2022)
    assert row["class"] == "row-failed" and "失敗" in row["text"] and row["links"] == []
    # a year only known from its failure log is listed as failed too
    row = _row(page, 2020)
    assert row["class"] == "row-failed" and row["links"] == []
    assert "FY2025/report.html" in _row(page, 2025)["links"]
    assert len(page.rows) == 6


def test_custom_banner_text(reports):
    html = build_index(reports, {**DATASET, "banner_ja": "見本<データ>"}).read_text(encoding="utf-8")
    assert "見本&lt;データ&gt;" in html and FICTIONAL_DATA_BANNER_JA not in html


def test_ok_manifest_without_report_is_not_linked(reports):
    (reports / "FY2024" / "report.html").unlink()
    page = _parse(build_index(reports, DATASET).read_text(encoding="utf-8"))
    row = _row(page, 2024)
    assert row["links"] == [] and "未作成" in row["text"]


def test_expected_years_without_directory_are_listed(reports):
    page = _parse(build_index(reports, {**DATASET, "fiscal_years": [2020, 2021]}).read_text(encoding="utf-8"))
    row = _row(page, 2020)
    assert "令和2年度" in row["text"] and "未作成" in row["text"] and row["links"] == []


def test_banner_only_when_synthetic(reports):
    html = build_index(reports, DATASET).read_text(encoding="utf-8")
    assert FICTIONAL_DATA_BANNER_JA in html
    assert 'class="banner"' in html
    real = build_index(reports, {**DATASET, "synthetic": False}).read_text(encoding="utf-8")
    assert FICTIONAL_DATA_BANNER_JA not in real
    assert 'class="banner"' not in real
    no_key = {k: v for k, v in DATASET.items() if k != "synthetic"}
    assert 'class="banner"' not in build_index(reports, no_key).read_text(encoding="utf-8")


def test_injected_strings_escaped(reports):
    bad = _manifest(2023, status=f"<b>{INJECT}</b>", finished="2026-11-28T03:00:00+00:00")
    (reports / "FY2023" / "manifest.json").write_text(json.dumps(bad), encoding="utf-8")
    html = build_index(reports, DATASET).read_text(encoding="utf-8")
    assert "<script>" not in html
    assert "<img src=x" not in html
    assert "<b><script>" not in html
    # the label, description, manifest status and input path are shown escaped
    assert "架空県（サンプル）&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "status: &lt;b&gt;&lt;script&gt;" in html
    assert "data/raw/sample/&lt;script&gt;alert(1)&lt;/script&gt;.xlsx" in html
    assert find_offline_violations(html) == []


def test_rebuild_is_byte_identical(reports):
    first = build_index(reports, DATASET).read_bytes()
    # touching files and rebuilding must not change anything
    (reports / "FY2025" / "report.html").touch()
    second = build_index(reports, DATASET).read_bytes()
    assert first == second
    assert sorted(p.name for p in reports.iterdir() if p.is_file()) == ["index.html"]  # no temp files left
    assert stat.S_IMODE((reports / "index.html").stat().st_mode) == 0o644


def test_provenance_footer(reports):
    html = build_index(reports, DATASET).read_text(encoding="utf-8")
    # newest "finished" among the manifests (trends: 03:40 UTC = 12:40 JST)
    assert '<time datetime="2026-11-29T03:40:00+00:00">2026年11月29日 12:40（日本時間）</time>' in html
    assert COMMIT in html
    assert "<details>" in html
    survey = _sha("survey2025")
    assert survey[:12] in html
    assert survey not in html  # shortened to 12 hex chars
    assert "data/raw/sample/survey_FY2025.xlsx" in html
    # inputs of the failed year are not reported as used
    assert "survey_FY2023.xlsx" not in html


def test_no_quality_column_when_no_quality_reports(reports):
    import shutil

    shutil.rmtree(reports / "quality")
    page = _parse(build_index(reports, DATASET).read_text(encoding="utf-8"))
    assert "データ品質" not in "".join(page.text)
    assert page.th_col == 7


def test_missing_trends_is_noted(reports):
    import shutil

    shutil.rmtree(reports / "trends")
    html = build_index(reports, DATASET).read_text(encoding="utf-8")
    page = _parse(html)
    assert not any(h.startswith("trends/") for h in page.links)
    section = html[html.index('id="trends-heading"') : html.index("</section>", html.index('id="trends-heading"'))]
    assert "未作成" in section


def test_missing_reports_dir(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_index(tmp_path / "nope", DATASET)


def test_empty_reports_dir(tmp_path):
    html = build_index(tmp_path, DATASET).read_text(encoding="utf-8")
    assert "まだ作成されていません" in html
    assert "不明" in html  # no generation date


@pytest.mark.parametrize(
    ("year", "expected"),
    [
        (2019, "令和元年度"),
        (2020, "令和2年度"),
        (2021, "令和3年度"),
        (2025, "令和7年度"),
        (2018, "平成30年度"),
        (1989, "平成元年度"),
        (1988, "昭和63年度"),
    ],
)
def test_wareki_fy(year, expected):
    assert wareki_fy(year) == expected


@pytest.mark.parametrize("bad", [True, "2025", 2025.0, None])
def test_wareki_fy_rejects_non_int(bad):
    with pytest.raises(TypeError):
        wareki_fy(bad)


def test_wareki_fy_rejects_too_early():
    with pytest.raises(ValueError):
        wareki_fy(1900)


def test_pdfs_and_one_page_summaries_are_linked_when_present(reports):
    (reports / "FY2025" / "report.pdf").write_bytes(b"%PDF-1.4")
    for name in ("summary.html", "summary.pdf", "summary.png"):
        (reports / "FY2025" / name).write_bytes(b"x")
    (reports / "quality" / "FY2025" / "report.pdf").write_bytes(b"%PDF-1.4")
    (reports / "trends" / "report.pdf").write_bytes(b"%PDF-1.4")
    html = build_index(reports, DATASET).read_text(encoding="utf-8")
    page = _parse(html)
    for href in (
        "FY2025/report.pdf",
        "FY2025/summary.html",
        "FY2025/summary.pdf",
        "FY2025/summary.png",
        "quality/FY2025/report.pdf",
        "trends/report.pdf",
    ):
        assert href in page.links, href
    assert "FY2024/report.pdf" not in page.links and "FY2024/summary.html" not in page.links
    assert '<th scope="col">1枚の要約</th>' in html
    # every cell of a year row says what it is (the phone layout shows it as a label)
    assert 'data-label="1枚の要約"' in html and 'data-label="レポート"' in html
    # printed: the page margins carry the title and page numbers, and the 架空データ note
    assert "@page" in html and "counter(pages)" in html and "@top-right" in html


def test_no_pdf_or_summary_links_without_the_files(reports):
    html = build_index(reports, DATASET).read_text(encoding="utf-8")
    assert ".pdf" not in html and "summary.html" not in html and "1枚の要約" not in html


def test_assumptions_caption_names_the_logs_own_columns(tmp_path):
    """The caption lists the columns the table has (the log's header row), no stale list."""
    from analysis.site import write_assumptions

    md = tmp_path / "assumptions.md"
    md.write_text("# 前提\n\n| 番号 | 日付 | 前提 |\n|---|---|---|\n| 1 | 2026-11-30 | <b>x</b> |\n", encoding="utf-8")
    page = write_assumptions(md, tmp_path / "out").read_text(encoding="utf-8")
    assert "<caption>前提の一覧（番号・日付・前提）</caption>" in page
    assert "<b>x</b>" not in page  # raw HTML in the log stays escaped
    real = (Path(__file__).resolve().parents[1] / "docs" / "assumptions.md").read_text(encoding="utf-8")
    header = next(line for line in real.splitlines() if line.startswith("| 番号"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    page = write_assumptions(Path(__file__).resolve().parents[1] / "docs" / "assumptions.md", tmp_path / "real")
    assert f"<caption>前提の一覧（{'・'.join(columns)}）</caption>" in page.read_text(encoding="utf-8")


def test_a_failure_reason_shows_paths_relative_to_the_project_and_wraps(reports):
    # the runner's record names the survey by its absolute path; the published page must not
    project = reports.parent.parent.resolve()
    (reports / ".failed").mkdir()
    long_name = "survey_FY2024_" + "x" * 80 + ".xlsx"
    record = {
        "name": "FY2024",
        "reason_ja": f"{project}/data/raw/sample/{long_name}: 読み込めません",
        "reason_en": f"{project}/data/raw/sample/{long_name}: unreadable",
    }
    (reports / ".failed" / "FY2024.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    html = build_index(reports, DATASET).read_text(encoding="utf-8")
    assert f"data/raw/sample/{long_name}" in html and str(project) not in html
    # the reason is in a status-detail or status-failed element, which wraps anywhere
    css = re.search(r"\.status-failed, \.status-detail \{([^}]*)\}", html)
    assert css is not None and "overflow-wrap: anywhere" in css.group(1) and "white-space: normal" in css.group(1)
