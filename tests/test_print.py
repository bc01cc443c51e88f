"""Print, PDF, the one-page summary, phones and accessibility, in a real headless chromium.

On the pages of one full run (the session fixture ``sample_run``), one of each kind (index,
fiscal-year report, one-page summary, trends, quality, assumptions):

* in print emulation at the A4 content width, no table or figure sticks out of the page (tables
  marked wide are checked at the A4 landscape width, the named page they print on);
* the run's PDFs: A4 pages (landscape where the wide tables are), the header (title and the
  架空データ note) and the footer (page X / Y) on every page, the last column of every table
  printed, the summary on exactly one A4 landscape page, its slide image 1600×900, and printing
  again gives the same bytes;
* axe-core (injected with Playwright into a context that bypasses the pages' CSP) finds no
  serious or critical violation, at 1280 and at 390 px;
* at 390 px the first column of a table that scrolls stays in view, and every link of the index
  is on screen without scrolling sideways.

Needs /usr/bin/chromium (``make test`` installs it as root); otherwise skipped.
"""

from __future__ import annotations

import html
import io
import re
import struct
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from browser_support import PYTESTMARK, SCREENSHOT_DIR

ROOT = Path(__file__).resolve().parents[1]

pytestmark = PYTESTMARK

PAGES = {
    "index": "index.html",
    "fiscal_year": "FY2025/report.html",
    "summary": "FY2025/summary.html",
    "trends": "trends/report.html",
    "quality": "quality/FY2025/report.html",
    "assumptions": "assumptions.html",
}
PDFS = {
    "fiscal_year": "FY2025/report.pdf",
    "summary": "FY2025/summary.pdf",
    "trends": "trends/report.pdf",
    "quality": "quality/FY2025/report.pdf",
}
# A4 minus the stylesheets' 12 mm side margins (10 mm on the summary's landscape page), in CSS px
MM = 96 / 25.4
PORTRAIT_WIDTH = int((210 - 24) * MM)
LANDSCAPE_WIDTH = int((297 - 24) * MM)
SUMMARY_WIDTH = int((297 - 20) * MM)
A4_PT = (595.3, 841.9)
PHONE = {"width": 390, "height": 844}
BANNER_WORD = "架空データ"

# Boxes of tables and figures that reach past the page's right (or left) edge, in print media.
PRINT_OVERFLOW_JS = r"""
(wide) => {
  const vw = document.documentElement.clientWidth;
  const describe = el => el.tagName.toLowerCase() + (el.closest('table') && el.closest('table').caption
      ? ' 「' + el.closest('table').caption.innerText.trim().slice(0, 40) + '」' : '')
      + (el.tagName === 'IMG' ? ' ' + (el.alt || '').slice(0, 40) : '');
  const out = [];
  let n = 0;
  for (const el of document.querySelectorAll('table, img, figure, svg, pre')) {
    if (!!el.closest('.table-wide') !== wide) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;
    n++;
    if (r.right > vw + 1 || r.left < -1)
      out.push(describe(el) + ` spans ${Math.round(r.left)}..${Math.round(r.right)} px of ${vw}`);
  }
  return {checked: n, problems: out};
}
"""

STICKY_JS = r"""
() => {
  const out = [];
  for (const wrap of document.querySelectorAll('.table-scroll')) {
    if (wrap.scrollWidth <= wrap.clientWidth + 1) continue;
    const table = wrap.querySelector('table');
    const cell = table.querySelector('tbody tr > :first-child');
    const cap = table.caption ? table.caption.innerText.trim().slice(0, 40) : '?';
    wrap.scrollLeft = wrap.scrollWidth;
    const gap = cell.getBoundingClientRect().left - wrap.getBoundingClientRect().left;
    const scrolled = wrap.scrollLeft;
    wrap.scrollLeft = 0;
    out.push({caption: cap, position: getComputedStyle(cell).position, gap: Math.round(gap), scrolled});
  }
  return out;
}
"""

LINKS_ON_SCREEN_JS = r"""
() => {
  const vw = window.innerWidth;
  const out = [];
  for (const a of document.querySelectorAll('a[href]')) {
    const closed = a.closest('details:not([open])');
    if (closed && !a.closest('summary')) continue;  // inside a folded list: its <summary> is checked
    const r = a.getBoundingClientRect();
    out.push({href: a.getAttribute('href'), left: Math.round(r.left), right: Math.round(r.right), width: r.width});
  }
  for (const s of document.querySelectorAll('details > summary')) {
    const r = s.getBoundingClientRect();
    out.push({href: 'summary:' + s.innerText.trim(), left: Math.round(r.left), right: Math.round(r.right), width: r.width});
  }
  return {vw, links: out, scrollWidth: document.scrollingElement.scrollWidth};
}
"""


@pytest.fixture(scope="module")
def browser(chromium_browser):
    """The session's chromium (tests/conftest.py)."""
    return chromium_browser


@pytest.fixture(scope="module")
def reports_dir(sample_run) -> Path:
    project, proc = sample_run
    assert proc.returncode == 0, f"sample run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    out = project / "reports" / "sample"
    missing = [n for n in [*PAGES.values(), *PDFS.values()] if not (out / n).is_file()]
    assert not missing, f"the run did not write {missing}; stderr:\n{proc.stderr[-3000:]}"
    return out


def _url(reports_dir: Path, name: str) -> str:
    return (reports_dir / name).resolve().as_uri()


def _pdf(path: Path):
    from pypdf import PdfReader

    return PdfReader(io.BytesIO(path.read_bytes()))


def _squash(text: str) -> str:
    """Text for comparing with what a PDF gives back: NFKC (Kangxi radicals → kanji), no spaces or dashes."""
    return re.sub(r"[\s\u2014\u2015\u0336\u2500-]+", "", unicodedata.normalize("NFKC", text))


# --- print layout -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(PAGES))
def test_tables_and_figures_fit_the_printed_page(browser, reports_dir, kind):
    """Print media at the A4 content width: nothing sticks out (wide tables: at the landscape width)."""
    name = PAGES[kind]
    portrait = SUMMARY_WIDTH if kind == "summary" else PORTRAIT_WIDTH
    context = browser.new_context(viewport={"width": portrait, "height": 1000}, locale="ja-JP")
    page = context.new_page()
    problems, checked = [], 0
    try:
        page.emulate_media(media="print")
        for width, wide in ((portrait, False), (LANDSCAPE_WIDTH, True)):
            page.set_viewport_size({"width": width, "height": 1000})
            page.goto(_url(reports_dir, name), wait_until="load")
            page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
            facts = page.evaluate(PRINT_OVERFLOW_JS, wide)
            checked += facts["checked"]
            problems += [
                f"{name} (A4 {'landscape' if wide else 'portrait'}, {width}px): {p}" for p in facts["problems"]
            ]
    finally:
        context.close()
    assert checked, f"{name}: no table or figure found"
    assert not problems, "cut off when printed:\n  " + "\n  ".join(problems)


def test_wide_tables_are_marked_for_landscape_pages(reports_dir):
    html_text = (reports_dir / PAGES["fiscal_year"]).read_text(encoding="utf-8")
    wrappers = [
        (
            re.search(r'class="([^"]*)"', w).group(1),
            int(re.search(r'data-columns="(\d+)"', w).group(1)),
            html.unescape(re.search(r'aria-label="([^"]*)"', w).group(1)),
        )
        for w in re.findall(r"<div [^>]*class=\"table-scroll[^>]*>", html_text)
    ]
    wide = [(n, label) for cls, n, label in wrappers if "table-wide" in cls.split()]
    narrow = [n for cls, n, _ in wrappers if "table-wide" not in cls.split()]
    assert wide and min(n for n, _ in wide) >= 10, wrappers
    assert narrow and max(narrow) < 10, wrappers
    # the association table (18 columns) and the municipality table (12) print on landscape pages
    assert any(label.startswith("表「支援施策") and n >= 16 for n, label in wide), wide
    assert any(label.startswith("表「市町別の主要項目") for _, label in wide), wide


# --- the PDFs of the run ------------------------------------------------------------------------


def _last_header_words(html_text: str) -> list[str]:
    """For every table: the first words (up to a bracket) of its last non-empty header cell."""
    out = []
    for table in re.findall(r"<table\b.*?</table>", html_text, re.S):
        heads = [
            html.unescape(re.sub(r"<[^>]+>", "", h)).strip()
            for h in re.findall(r"<th\b[^>]*scope=\"col\"[^>]*>(.*?)</th>", table, re.S)
        ]
        heads = [h for h in heads if h]
        if heads:
            out.append(_squash(re.split(r"[(（]", heads[-1])[0]))
    return out


@pytest.mark.parametrize("kind", list(PDFS))
def test_pdf_pages_headers_footers_and_last_columns(reports_dir, kind):
    reader = _pdf(reports_dir / PDFS[kind])
    n = len(reader.pages)
    assert n >= 1
    html_text = (reports_dir / PAGES[kind]).read_text(encoding="utf-8")
    title = html.unescape(re.search(r"<title>(.*?)</title>", html_text, re.S).group(1))
    texts, landscape = [], 0
    for k, page in enumerate(reader.pages, start=1):
        w, h = float(page.mediabox.width), float(page.mediabox.height)
        assert sorted((round(w), round(h))) == [round(A4_PT[0]), round(A4_PT[1])], f"page {k} is {w}x{h} pt, not A4"
        landscape += w > h
        text = page.extract_text()
        texts.append(text)
        assert BANNER_WORD in text, f"{PDFS[kind]} page {k}: no {BANNER_WORD} note"
        assert re.search(rf"(?<!\d){k}\s*/\s*{n}(?!\d)", text), f"{PDFS[kind]} page {k}: no 'page {k} / {n}' footer"
        assert _squash(title) in _squash(text), f"{PDFS[kind]} page {k}: the title 「{title}」 is not in the header"
    everything = _squash("".join(texts))
    missing = [w for w in _last_header_words(html_text) if w not in everything]
    assert not missing, f"{PDFS[kind]}: the last column of these tables is not printed: {missing}"
    if kind == "fiscal_year":
        assert landscape >= 1, "the association table (16 columns) should print on an A4 landscape page"
        assert "分析方法の詳細" in everything and "Chan" in everything, "「分析方法の詳細」 is not printed open"
    if kind == "summary":
        assert n == 1 and landscape == 1, f"the one-page summary printed on {n} page(s), {landscape} landscape"


def test_summary_slide_image_is_1600_by_900(reports_dir):
    data = (reports_dir / "FY2025" / "summary.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1600, 900)


def test_pdfs_hold_no_local_path_and_print_alike_in_another_browser(reports_dir, tmp_path):
    """Links to the site's own pages are not file:// links into this computer's folder, and a
    chromium process of its own prints the same bytes (structure ids renumbered)."""
    written = sorted(reports_dir.rglob("*.pdf"))
    assert len(written) >= len(PDFS)
    leaking = [str(p.relative_to(reports_dir)) for p in written if b"file:" in p.read_bytes()]
    assert not leaking, f"PDFs with file: links: {leaking}"
    out, slide = tmp_path / "reprinted.pdf", tmp_path / "reprinted.png"
    script = (
        "import sys; from pathlib import Path; from analysis.pdf import Printer\n"
        "with Printer() as p:\n"
        "    p.pdf(Path(sys.argv[1]), Path(sys.argv[2]), synthetic=True)\n"
        "    p.png(Path(sys.argv[3]), Path(sys.argv[4]))"
    )
    args = [reports_dir / PAGES["fiscal_year"], out, reports_dir / PAGES["summary"], slide]
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.read_bytes() == (reports_dir / PDFS["fiscal_year"]).read_bytes()
    assert slide.read_bytes() == (reports_dir / "FY2025" / "summary.png").read_bytes()


def test_printing_again_gives_the_same_bytes(browser, reports_dir):
    from analysis.pdf import Printer

    with Printer(browser=browser) as printer:
        for name in ("FY2025/summary", "quality/FY2025/report"):
            again = printer.pdf_bytes(reports_dir / f"{name}.html", synthetic=True)
            assert again == (reports_dir / f"{name}.pdf").read_bytes(), f"{name}.pdf differs when printed again"
    dates = re.findall(rb"/(?:CreationDate|ModDate)\s*\(D:(\d{14})", again)
    assert dates and set(dates) == {b"20000101000000"}, dates


def test_profiles_swapped_into_one_page_print_as_if_each_were_loaded(browser, reports_dir):
    """The run prints the 市町別カルテ by putting each one's title and body into the page already
    on screen; the PDFs are the bytes of each page loaded and printed on a page of its own."""
    from analysis.pdf import Printer

    latest = sorted((reports_dir / "profiles").glob("FY*"))[-1]
    pages = sorted(latest.glob("*.html"))[:4]
    assert len(pages) == 4 and all(p.with_suffix(".pdf").is_file() for p in pages)
    with Printer(browser=browser) as printer:
        swapped = [printer.pdf_bytes(p, synthetic=True) for p in pages]
        assert printer.loads == 1  # the first was loaded, the other three swapped in
    for page, data in zip(pages, swapped, strict=True):
        with Printer(browser=browser) as alone:
            assert alone.pdf_bytes(page, synthetic=True) == data, f"{page.name}: swapped print differs"
        assert data == page.with_suffix(".pdf").read_bytes(), f"{page.name}: differs from the run's PDF"
    title = html.unescape(re.search(r"<title>(.*?)</title>", pages[-1].read_text(encoding="utf-8"), re.S).group(1))
    from pypdf import PdfReader

    text = PdfReader(io.BytesIO(swapped[-1])).pages[0].extract_text()
    assert _squash(title) in _squash(text), f"the header should name the last profile 「{title}」"


@pytest.mark.full
def test_two_browsers_print_the_same_bytes_as_one(reports_dir, tmp_path):
    """publish(lanes=2) shares the pages between two browsers; every PDF is the one a single
    browser prints, and is the run's own."""
    import shutil

    from analysis.pdf import publish

    profiles = sorted(sorted((reports_dir / "profiles").glob("FY*"))[-1].glob("*.html"))[:6]
    printed = {}
    for lanes in (1, 2):
        base = tmp_path / f"lanes{lanes}"
        shutil.copytree(reports_dir / "quality", base / "quality", ignore=shutil.ignore_patterns("*.pdf"))
        (base / "profiles" / profiles[0].parent.name).mkdir(parents=True)
        for page in profiles:
            shutil.copy2(page, base / "profiles" / page.parent.name / page.name)
        notes = publish(base, label_ja="サンプル", synthetic=True, lanes=lanes)
        assert notes == []
        printed[lanes] = {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*.pdf"))}
    assert len(printed[1]) == len(profiles) + len(list((reports_dir / "quality").glob("FY*/report.pdf"))) == 11
    assert printed[2] == printed[1]
    for name, data in printed[2].items():
        assert data == (reports_dir / name).read_bytes(), f"{name} differs from the run's"


def test_summary_agrees_with_the_report(reports_dir):
    """The summary's headline and sentences come from the same numbers as the report."""
    import json

    summary = json.loads((reports_dir / "FY2025" / "summary.json").read_text(encoding="utf-8"))
    before = json.loads((reports_dir / "FY2024" / "summary.json").read_text(encoding="utf-8"))
    page = (reports_dir / "FY2025" / "summary.html").read_text(encoding="utf-8")
    report = html.unescape((reports_dir / "FY2025" / "report.html").read_text(encoding="utf-8"))
    n, total = summary["n_jusou"], summary["n_municipalities"]
    assert f'<span class="n">{n}</span><span class="of"> / {total}市町</span>' in page
    change = summary["n_full"] - before["n_full"]
    assert f"令和6年度から {'+' if change > 0 else '±' if change == 0 else '−'}{abs(change)}市町" in page
    sentences = re.findall(r"<li><strong>([^<]*)：</strong>([^<]*)</li>", page)
    assert [h for h, _ in sentences][:1] == ["実施状況"] and len(sentences) == 3, sentences
    measure = html.unescape(sentences[1][1])
    assert measure in report, f"the summary's sentence is not the report's own: {measure}"
    assert page.count('<img src="data:image/png;base64,') == 2


# --- accessibility ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def axe_results(browser, reports_dir):
    pytest.importorskip("axe_playwright_python", reason="axe-playwright-python (test extra) is not installed")
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    out = {}
    for label, viewport in (("1280", {"width": 1280, "height": 800}), ("390", PHONE)):
        context = browser.new_context(
            viewport=viewport, bypass_csp=True, locale="ja-JP", is_mobile=label == "390", has_touch=label == "390"
        )
        page = context.new_page()
        try:
            for kind, name in PAGES.items():
                page.goto(_url(reports_dir, name), wait_until="load")
                out[(kind, label)] = axe.run(page).response
        finally:
            context.close()
    return out


@pytest.mark.parametrize("kind", list(PAGES))
def test_no_serious_accessibility_violation(axe_results, kind):
    problems = []
    for width in ("1280", "390"):
        response = axe_results[(kind, width)]
        assert response["passes"], f"axe ran no check on {PAGES[kind]}"
        for v in response["violations"]:
            if v["impact"] in ("serious", "critical"):
                where = ", ".join(str(n["target"]) for n in v["nodes"][:3])
                problems.append(f"{PAGES[kind]} ({width}px): {v['impact']} {v['id']}: {v['help']} — {where}")
    assert not problems, "axe-core violations:\n  " + "\n  ".join(problems)


# --- phones -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phone_page(browser):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="ja-JP")
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.mark.parametrize("kind", ["fiscal_year", "trends", "quality", "assumptions"])
def test_first_column_stays_in_view_when_a_table_scrolls(phone_page, reports_dir, kind):
    phone_page.goto(_url(reports_dir, PAGES[kind]), wait_until="load")
    tables = phone_page.evaluate(STICKY_JS)
    if kind in ("fiscal_year", "trends"):
        assert tables, f"{PAGES[kind]}: no table scrolls at 390px (the wide ones should)"
    problems = [
        f"{t['caption']}: first column {t['position']}, {t['gap']}px from the left edge after scrolling "
        f"{t['scrolled']}px"
        for t in tables
        if t["position"] != "sticky" or abs(t["gap"]) > 2
    ]
    assert not problems, f"{PAGES[kind]} at 390px:\n  " + "\n  ".join(problems)


def test_every_index_link_is_on_a_phone_screen(phone_page, reports_dir):
    phone_page.goto(_url(reports_dir, "index.html"), wait_until="load")
    facts = phone_page.evaluate(LINKS_ON_SCREEN_JS)
    assert facts["scrollWidth"] <= facts["vw"], "the index scrolls sideways on a phone"
    links = facts["links"]
    assert sum(ln["href"].endswith("report.html") for ln in links) >= 11  # 5 years, trends, 5 quality reports
    off = [
        f"{ln['href']}: {ln['left']}..{ln['right']}px"
        for ln in links
        if ln["width"] == 0 or ln["left"] < 0 or ln["right"] > facts["vw"]
    ]
    assert not off, f"links not on a {facts['vw']}px screen without scrolling sideways:\n  " + "\n  ".join(off)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    phone_page.screenshot(path=str(SCREENSHOT_DIR / "index_phone_links.png"), full_page=True, scale="css")
