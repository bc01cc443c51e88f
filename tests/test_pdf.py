"""analysis.pdf and analysis.summary_page without a browser: the summary's numbers and sentences,
what gets printed when, the PDF date fix, the header/footer templates and the note without chromium.

(The printing itself, in chromium, is checked by tests/test_print.py.)
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis import pdf
from analysis.association import measure_sentence_ja
from analysis.htmlexport import css_string, find_offline_violations, print_page_css
from analysis.summary_page import build_summary_page, key_sentences, render_summary_page

# a 1×1 PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
INJECT = "<script>alert(1)</script>"

ASSOC_COLUMNS = [
    "施策の視点",
    "支援施策",
    "活用あり(市町数)",
    "全項目実施率・あり(%)",
    "活用なし(市町数)",
    "全項目実施率・なし(%)",
    "差(ポイント)",
    "差・下限(ポイント)",
    "差・上限(ポイント)",
    "Fisher正確検定p値",
    "検出できる最小の差(ポイント)",
    "注記",
]


def _fy(
    base: Path,
    year: int,
    *,
    jusou: int,
    full: int,
    n: int = 35,
    assoc: list[list] | None = None,
    progress: bool = False,
    lag: int = 0,
) -> Path:
    d = base / f"FY{year}"
    (d / "tables").mkdir(parents=True)
    (d / "figures").mkdir()
    (d / "summary.json").write_text(
        json.dumps({"fiscal_year": year, "n_municipalities": n, "n_jusou": jusou, "n_full": full, "exposure_lag": lag}),
        encoding="utf-8",
    )
    (d / "manifest.json").write_text(json.dumps({"status": "ok", "fiscal_year": year}), encoding="utf-8")
    (d / "report.html").write_text(
        "<!DOCTYPE html><html lang='ja'><title>r</title><p>報告</p></html>", encoding="utf-8"
    )
    for key in ("forest", "main_items"):
        (d / "figures" / f"{key}.png").write_bytes(PNG)
    if assoc is not None:
        pd.DataFrame(assoc, columns=ASSOC_COLUMNS).to_csv(
            d / "tables" / "07_association.csv", index=False, encoding="utf-8-sig"
        )
    if progress:
        pd.DataFrame(
            [
                ["重層的支援体制整備事業の実施市町数", 2027, 20, jusou, 65.0, 3, 14.0, "概ね順調"],
                ["指針の主要項目を全て実施した市町数", 2027, 15, full, 46.7, 1, 10.3, "やや遅れ"],
            ],
            columns=[
                "指標",
                "目標年度",
                "目標値(市町数)",
                "実績(市町数)",
                "達成率(%)",
                "前年度からの増減(市町数)",
                "今年度の目安(市町数)",
                "評価",
            ],
        ).to_csv(d / "tables" / "02_progress.csv", index=False, encoding="utf-8-sig")
    return d


ROWS = [
    [
        "視点A",
        "アドバイザー派遣",
        19,
        21.052631578947366,
        16,
        18.75,
        2.3026315789473673,
        -27.746161504795673,
        30.232037839136616,
        1.0,
        48.0,
        "",
    ],
    [
        "視点B",
        "市町向け研究会",
        14,
        35.714285714285715,
        21,
        9.523809523809524,
        26.190476190476193,
        -3.0,
        55.6,
        0.09,
        46.0,
        "",
    ],
    [
        "視点C",
        "ワークショップ",
        12,
        16.666666666666668,
        23,
        21.73913043478261,
        -5.072463768115941,
        -31.6,
        28.9,
        1.0,
        51.0,
        "",
    ],
]


@pytest.fixture
def reports(tmp_path) -> Path:
    base = tmp_path / "reports" / "sample"
    _fy(base, 2024, jusou=10, full=6, assoc=ROWS)
    _fy(base, 2025, jusou=13, full=6, assoc=ROWS, progress=True)
    return base


# --- the summary's content --------------------------------------------------------------------


def test_status_sentence_says_counts_shares_and_changes(reports):
    summary = json.loads((reports / "FY2025" / "summary.json").read_text(encoding="utf-8"))
    before = json.loads((reports / "FY2024" / "summary.json").read_text(encoding="utf-8"))
    (head, status), *_ = key_sentences(reports / "FY2025", summary, before)
    assert head == "実施状況"
    assert status == (
        "令和7年度は、回答した35市町のうち、13市町（37.1%）が重層的支援体制整備事業を実施済で、"
        "6市町（17.1%）が指針の主要項目を全て実施していました。前年度（令和6年度）と比べ、"
        "重層的支援体制整備事業の実施は3市町増え、全項目実施は前年度と同じでした。"
    )


def test_status_sentence_for_a_decrease_and_for_a_first_year(reports):
    summary = {"fiscal_year": 2025, "n_municipalities": 35, "n_jusou": 9, "n_full": 4}
    status = key_sentences(reports / "FY2025", summary, {"n_jusou": 10, "n_full": 6})[0][1]
    assert status.endswith("重層的支援体制整備事業の実施は1市町減り、全項目実施は2市町減りました。")
    first = key_sentences(reports / "FY2025", summary, None)[0][1]
    assert "前年度" not in first and first.endswith("全て実施していました。")


def test_measure_sentence_is_the_reports_own_for_the_smallest_p(reports):
    summary = json.loads((reports / "FY2025" / "summary.json").read_text(encoding="utf-8"))
    sentences = dict(key_sentences(reports / "FY2025", summary, None))
    measure = sentences["支援施策との関連（p値が最も小さい施策）"]
    row = {
        "label": "市町向け研究会",
        "n_exposed": 14,
        "n_unexposed": 21,
        "rate_exposed": 0.35714285714285715,
        "rate_unexposed": 0.09523809523809523,
        "rd": 0.26190476190476193,
        "rd_lower": -0.03,
        "rd_upper": 0.556,
    }
    assert measure == measure_sentence_ja(row, "同じ年度")
    assert "市町向け研究会" in measure and "36%" in measure and "−3〜56ポイント" in measure
    caution = sentences["読み方の注意"]
    assert "効果を示すものではありません" in caution and "約46〜51ポイント" in caution


def test_saved_sentences_are_preferred_when_summary_json_has_them(reports):
    summary = json.loads((reports / "FY2025" / "summary.json").read_text(encoding="utf-8"))
    summary["association_sentences"] = ["一つ目。", "二つ目。", "三つ目。"]
    sentences = dict(key_sentences(reports / "FY2025", summary, None))
    assert sentences["支援施策との関連（p値が最も小さい施策）"] == "二つ目。"


def test_without_an_association_table_only_the_status_is_said(tmp_path):
    d = _fy(tmp_path / "r", 2021, jusou=3, full=1)
    summary = json.loads((d / "summary.json").read_text(encoding="utf-8"))
    assert [h for h, _ in key_sentences(d, summary, None)] == ["実施状況"]


def test_page_shows_headlines_targets_charts_and_sentences(reports):
    page = render_summary_page(reports / "FY2025", label_ja="架空県", synthetic=True, banner_ja="架空データ：見本")
    assert '<html lang="ja">' in page and "<title>令和7年度（FY2025）1枚の要約 — 架空県</title>" in page
    assert '<span class="n">13</span><span class="of"> / 35市町</span><span class="pct">（37.1%）</span>' in page
    assert "令和6年度から +3市町" in page and "令和6年度から ±0市町" in page
    assert "2027年度の目標 20市町・評価「概ね順調」" in page and "2027年度の目標 15市町・評価「やや遅れ」" in page
    assert page.count('<img src="data:image/png;base64,') == 2 and 'alt="支援施策ごとの' in page
    assert page.count("<li><strong>") == 3
    assert 'href="../index.html"' in page and 'href="report.html"' in page
    assert "架空データ：見本" in page and "@top-right" in page  # banner on screen and in the page margins
    assert find_offline_violations(page) == []


def test_page_escapes_the_dataset_label_and_has_no_banner_for_real_data(reports):
    page = render_summary_page(reports / "FY2025", label_ja=INJECT, synthetic=False)
    assert INJECT not in page and "&lt;script&gt;" in page
    assert 'class="banner"' not in page and "@top-right" not in page
    assert find_offline_violations(page) == []


def test_summary_file_is_rewritten_only_when_it_changes(reports):
    out = build_summary_page(reports / "FY2025", label_ja="架空県", synthetic=True)
    first = out.stat().st_mtime_ns
    time.sleep(0.02)
    assert build_summary_page(reports / "FY2025", label_ja="架空県", synthetic=True) == out
    assert out.stat().st_mtime_ns == first
    build_summary_page(reports / "FY2025", label_ja="別の県", synthetic=True)
    assert out.stat().st_mtime_ns > first and "別の県" in out.read_text(encoding="utf-8")


def test_no_summary_without_summary_json(tmp_path):
    d = tmp_path / "FY2025"
    d.mkdir()
    assert build_summary_page(d, label_ja="x", synthetic=False) is None
    assert not (d / "summary.html").exists()


# --- what is printed, and the note without chromium -----------------------------------------


def test_print_jobs_are_the_stale_reports_and_summaries(reports):
    for year in (2024, 2025):
        build_summary_page(reports / f"FY{year}", label_ja="架空県", synthetic=True)
    (reports / "FY2023").mkdir()  # no manifest: not a report
    failed = _fy(reports, 2022, jusou=1, full=1)  # a failed report is not printed
    (failed / "manifest.json").write_text(json.dumps({"status": "error"}), encoding="utf-8")
    jobs = pdf.print_jobs(reports)
    assert sorted(j.pdf.relative_to(reports).as_posix() for j in jobs) == [
        "FY2024/report.pdf",
        "FY2024/summary.pdf",
        "FY2025/report.pdf",
        "FY2025/summary.pdf",
    ]
    assert {j.png.name for j in jobs if j.png} == {"summary.png"}
    # written after the HTML: up to date; the HTML rewritten later: stale again
    for j in jobs:
        for out in (j.pdf, j.png):
            if out is not None:
                out.write_bytes(b"%PDF-")
    assert pdf.print_jobs(reports) == []
    later = time.time() + 5
    os.utime(reports / "FY2025" / "report.html", (later, later))
    assert [j.pdf.relative_to(reports).as_posix() for j in pdf.print_jobs(reports)] == ["FY2025/report.pdf"]
    assert len(pdf.print_jobs(reports, all_jobs=True)) == 4


def test_without_chromium_the_summaries_are_written_and_the_run_says_why(reports, monkeypatch):
    monkeypatch.setenv(pdf.CHROMIUM_ENV, "")
    assert pdf.find_chromium() is None
    notes = pdf.publish(reports, label_ja="架空県", synthetic=True, banner_ja="架空データ")
    assert len(notes) == 1
    assert "chromium が見つからないため PDF は作成しませんでした" in notes[0] and "no chromium found" in notes[0]
    assert (reports / "FY2025" / "summary.html").is_file()
    assert not list(reports.rglob("*.pdf")) and not list(reports.rglob("summary.png"))


def test_no_pdf_writes_the_summaries_prints_nothing_and_removes_only_outdated_prints(reports):
    # run --no-pdf: HTML only. A print older than its page would contradict it: removed; a
    # current one stays; nothing is printed (no chromium is started) and nothing is said.
    for year in (2024, 2025):
        build_summary_page(reports / f"FY{year}", label_ja="架空県", synthetic=True)
    for j in pdf.print_jobs(reports):
        for out in (j.pdf, j.png):
            if out is not None:
                out.write_bytes(b"%PDF-")
    later = time.time() + 5
    os.utime(reports / "FY2025" / "report.html", (later, later))
    notes = pdf.publish(reports, label_ja="架空県", synthetic=True, pdfs=False)
    assert notes == []
    assert sorted(p.relative_to(reports).as_posix() for p in reports.rglob("*.pdf")) == [
        "FY2024/report.pdf",
        "FY2024/summary.pdf",
        "FY2025/summary.pdf",  # the summary page was rewritten only if it changed: still current
    ]
    assert (reports / "FY2025" / "summary.png").is_file()
    assert pdf.print_jobs(reports) == [
        pdf.PrintJob(reports / "FY2025" / "report.html", reports / "FY2025" / "report.pdf")
    ]


def test_chromium_from_the_environment(tmp_path, monkeypatch):
    exe = tmp_path / "chrome"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv(pdf.CHROMIUM_ENV, str(exe))
    assert pdf.find_chromium() == exe
    monkeypatch.setenv(pdf.CHROMIUM_ENV, str(tmp_path / "missing"))
    assert pdf.find_chromium() is None
    assert str(tmp_path / "missing") in str(pdf.pdf_unavailable())


# --- PDF bytes and the page furniture ---------------------------------------------------------


def test_pdf_dates_are_fixed_without_moving_any_byte():
    data = (
        b"%PDF-1.4\n1 0 obj\n<</Producer (Skia/PDF m156)\n/CreationDate (D:20261130031810+00'00')\n"
        b"/ModDate (D:20261130031811+00'00')>>\nendobj\nstartxref\n123\n%%EOF"
    )
    fixed = pdf.fix_pdf_dates(data)
    assert len(fixed) == len(data)
    assert b"/CreationDate (D:20000101000000+00'00')" in fixed and b"/ModDate (D:20000101000000+00'00')" in fixed
    assert pdf.fix_pdf_dates(fixed) == fixed


def test_structure_ids_are_renumbered_in_order_without_moving_any_byte():
    data = b"<</T (node00000046)>> <</T (node00000012)>> <</K (node00000046)>>"
    fixed = pdf.renumber_structure_ids(data)
    assert fixed == b"<</T (node00000000)>> <</T (node00000001)>> <</K (node00000000)>>"
    assert pdf.renumber_structure_ids(fixed) == fixed


def test_the_structure_name_tree_is_sorted_by_the_new_ids_without_moving_any_byte():
    # two chromium processes printed the same page; the tree differed only in the order of two
    # entries (the full run of 2026-11-30, national_pref31's data-quality report)
    def printed(names: bytes, limits: bytes) -> bytes:
        return (
            b"50 0 obj\n<</T (node00000050)>>\nendobj\n52 0 obj\n<</T (node00000052)>>\nendobj\n"
            b"289 0 obj\n<</Limits [" + limits + b"]\n/Names [" + names + b"]>>\nendobj\n"
        )

    one = printed(b"(node00000052) 52 0 R (node00000050) 50 0 R", b"(node00000052) (node00000050)")
    other = printed(b"(node00000050) 50 0 R (node00000052) 52 0 R", b"(node00000050) (node00000052)")
    fixed_one, fixed_other = pdf.deterministic_pdf(one), pdf.deterministic_pdf(other)
    assert fixed_one == fixed_other and len(fixed_one) == len(one)
    assert b"/Limits [(node00000000) (node00000001)]\n/Names [(node00000000) 50 0 R (node00000001) 52 0 R]" in fixed_one
    assert pdf.deterministic_pdf(fixed_one) == fixed_one


def test_header_and_footer_templates_escape_and_number_pages():
    head = pdf.header_template(f"令和7年度 {INJECT}", synthetic=True)
    assert INJECT not in head and "&lt;script&gt;" in head and "架空データ" in head
    assert "架空データ" not in pdf.header_template("t", synthetic=False)
    foot = pdf.footer_template()
    assert 'class="pageNumber"' in foot and 'class="totalPages"' in foot


def test_print_page_css_cannot_break_out_of_its_string():
    css = print_page_css('題"; } body { display: none } </style><script>', synthetic=True)
    assert "</style>" not in css and "<script" not in css and '"; }' not in css
    assert css_string('a"b\\c\n') == '"a\\22 b\\5c c\\a "'
    assert css_string("令和7年度（FY2025） — 架空県") == '"令和7年度（FY2025） — 架空県"'
    assert "counter(page)" in css and "counter(pages)" in css and "@top-right" in css
    assert "@top-right" not in print_page_css("t")


def test_profile_pdfs_only_up_to_prefecture_size(tmp_path):
    """A prefecture's profiles of the latest year get PDFs; a national dataset's 1,741 stay HTML."""
    for n, expected in ((3, 3), (pdf.PROFILE_PDF_LIMIT + 1, 0)):
        base = tmp_path / f"n{n}"
        (base / "profiles" / "FY2024").mkdir(parents=True)
        latest = base / "profiles" / "FY2025"
        latest.mkdir(parents=True)
        for i in range(n):
            (latest / f"{i:06d}.html").write_text("<html></html>", encoding="utf-8")
        (base / "profiles" / "FY2024" / "000000.html").write_text("<html></html>", encoding="utf-8")
        jobs = [j for j in pdf.print_jobs(base, all_jobs=True) if "profiles" in j.html.parts]
        assert len(jobs) == expected and all(j.html.parent == latest for j in jobs)


def _page(title: str, body: str, head: str = "<style>p{color:#111}</style>") -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="ja">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n{head}\n'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def test_pages_of_one_shell_are_swappable_and_others_are_loaded(tmp_path):
    """Printer swaps in a page only when all but its title and body equals the page on screen."""
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    a.write_text(_page("札幌市 &amp; カルテ", "<p>A</p>"), encoding="utf-8")
    b.write_text(_page("函館市", "<main><p>B</p></main>"), encoding="utf-8")
    pa, pb = pdf.swappable_parts(a), pdf.swappable_parts(b)
    assert pa is not None and pb is not None
    assert pa.shell == pb.shell
    assert (pa.title, pb.title) == ("札幌市 & カルテ", "函館市")  # the text document.title gets
    assert pb.body.strip() == "<main><p>B</p></main>"
    other_head = tmp_path / "c.html"
    other_head.write_text(_page("函館市", "<p>C</p>", head="<style>p{color:red}</style>"), encoding="utf-8")
    assert pdf.swappable_parts(other_head).shell != pa.shell
    (tmp_path / "sub").mkdir()
    elsewhere = tmp_path / "sub" / "a.html"  # relative links would resolve elsewhere: loaded
    elsewhere.write_text(a.read_text(encoding="utf-8"), encoding="utf-8")
    assert pdf.swappable_parts(elsewhere).shell != pa.shell
    scripted = tmp_path / "s.html"
    scripted.write_text(_page("x", "<p>x</p><SCRIPT>document.title='y'</SCRIPT>"), encoding="utf-8")
    assert pdf.swappable_parts(scripted) is None
    assert pdf.swappable_parts(tmp_path / "missing.html") is None
    untitled = tmp_path / "u.html"
    untitled.write_text("<html><body><p>no head</p></body></html>", encoding="utf-8")
    assert pdf.swappable_parts(untitled) is None


def test_two_browsers_print_a_prefectures_pages_and_one_in_a_worker_process():
    import multiprocessing

    assert pdf.print_lanes(2 * pdf.PAGES_PER_LANE - 1) == 1
    assert pdf.print_lanes(2 * pdf.PAGES_PER_LANE) == (2 if (os.cpu_count() or 1) >= 2 else 1)
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # a runner worker finishing a dataset
        assert pool.apply(pdf.print_lanes, (500,)) == 1
