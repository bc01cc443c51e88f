"""Municipality profiles (市町別カルテ) in a real headless browser (Debian chromium via Playwright).

The profiles are written straight from the sample's panel (no notebook run needed). For each
fiscal year the profile with the most text is printed with ``page.pdf(format="A4")`` and must be
exactly one page; so is a profile with a long published free-text answer. Each of those pages
and the 市町一覧 page are opened from ``file://`` at 1280 px and at 390 px (mobile emulation):
no horizontal page overflow, no console or page errors, nothing loaded but the page itself, the
架空データ banner on the first screen, tables with captions. Screenshots go to
``<repo>/reports/screenshots/`` (git-ignored) for a human to look at.

Needs /usr/bin/chromium (``make test`` installs it as root); otherwise skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from browser_support import PYTESTMARK, SCREENSHOT_DIR

from analysis import profiles
from analysis.codebook import load_codebook
from analysis.panel import build_panel

ROOT = Path(__file__).resolve().parents[1]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LONG_NOTE = (
    "来年度は庁内の連携会議を月1回に増やし、社会福祉協議会と地区ごとの相談会を開く予定です。"
    "人員の確保が難しく、研修の開催時期についても相談したいと考えています。"
) * 3

pytestmark = PYTESTMARK

FACTS_JS = r"""
() => {
  const vw = window.innerWidth;
  const banner = [...document.querySelectorAll('[role=note]')].find(e => e.innerText.includes('架空データ'));
  const tables = [...document.querySelectorAll('table')].map(t => {
    const c = t.querySelector(':scope > caption');
    return {caption: c ? c.innerText.trim() : '', th: t.querySelectorAll('th').length};
  });
  return {
    lang: document.documentElement.lang,
    innerWidth: vw,
    scrollWidth: document.scrollingElement.scrollWidth,
    bannerTop: banner ? banner.getBoundingClientRect().top : null,
    tables,
    scripts: document.scripts.length,
  };
}
"""


def pdf_page_count(pdf: bytes) -> int:
    """Page objects in a PDF (chromium writes them uncompressed: '/Type /Page', not '/Pages')."""
    assert pdf.startswith(b"%PDF-"), pdf[:20]
    return len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", pdf))


@pytest.fixture(scope="module")
def written(sample, book, tmp_path_factory) -> dict:
    """Every profile of the sample, the 市町一覧, and one profile with a long published note."""
    panel = build_panel(sample, book)
    reports = tmp_path_factory.mktemp("reports") / "sample"
    longest = {}
    for fy in sample.years:
        paths = profiles.write_profiles(sample, panel, book, fy, reports / "profiles" / f"FY{fy}")
        longest[fy] = max(paths, key=lambda p: (len(p.read_text(encoding="utf-8")), p.name))
    index = profiles.write_profile_index(sample, panel, book, sample.years, reports)
    # the longest page of the latest year again, with its notes published and long
    raw = yaml.safe_load(Path(book.path).read_text(encoding="utf-8"))
    for q in raw["questions"]:
        if q["variable"] == "notes":
            q["publishable"] = True
    (reports.parent / "codebook.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    open_book = load_codebook(reports.parent / "codebook.yaml")
    code = longest[max(sample.years)].stem
    noted = panel.copy()
    noted.loc[noted["code"] == code, "notes"] = LONG_NOTE
    html = profiles.render_profile(sample, noted, open_book, code, max(sample.years))
    assert LONG_NOTE in html
    note_page = reports / "profiles" / f"FY{max(sample.years)}" / "with_note" / f"{code}.html"
    note_page.parent.mkdir()
    note_page.write_text(html, encoding="utf-8")
    return {"reports": reports, "longest": longest, "index": index, "note_page": note_page}


def _pages_to_print(written) -> list[tuple[str, Path]]:
    out = [(f"FY{fy}_{p.stem}", p) for fy, p in sorted(written["longest"].items())]
    return [*out, ("with_note", written["note_page"])]


def test_profile_prints_on_exactly_one_a4_page(chromium_browser, written):
    page = chromium_browser.new_page()
    counts = {}
    try:
        for name, path in _pages_to_print(written):
            page.goto(path.resolve().as_uri(), wait_until="load")
            pdf = page.pdf(format="A4", print_background=True)
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            (SCREENSHOT_DIR / f"profile_{name}.pdf").write_bytes(pdf)
            counts[name] = pdf_page_count(pdf)
    finally:
        page.close()
    assert counts and all(n == 1 for n in counts.values()), f"PDF pages per profile: {counts}"


def test_page_counter_counts_pages(chromium_browser):
    """The counter used above sees a second page when there is one."""
    page = chromium_browser.new_page()
    try:
        page.set_content('<html><body><p>1</p><p style="break-before: page">2</p></body></html>')
        assert pdf_page_count(page.pdf(format="A4")) == 2
    finally:
        page.close()


@pytest.mark.parametrize("width", [DESKTOP, PHONE], ids=["1280", "390"])
def test_profiles_and_index_fit_the_screen(chromium_browser, written, width):
    phone = width is PHONE
    context = chromium_browser.new_context(
        viewport=width, locale="ja-JP", device_scale_factor=2 if phone else 1, is_mobile=phone, has_touch=phone
    )
    page = context.new_page()
    events: list[str] = []
    page.on("console", lambda m: m.type == "error" and events.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: events.append(f"page error: {e}"))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    problems = []
    try:
        for name, path in [*_pages_to_print(written), ("index", written["index"])]:
            url = path.resolve().as_uri()
            requests.clear()
            page.goto(url, wait_until="load")
            facts = page.evaluate(FACTS_JS)
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            # scale="css": one image pixel per CSS pixel also at device_scale_factor 2 (a quarter of the
            # pixels to encode); what is checked above and below is measured in the page, not the image
            page.screenshot(
                path=str(SCREENSHOT_DIR / f"profile_{name}_{width['width']}.png"), full_page=True, scale="css"
            )
            if facts["innerWidth"] != width["width"]:
                problems.append(f"{name}: innerWidth {facts['innerWidth']} (viewport meta?)")
            if facts["scrollWidth"] > facts["innerWidth"] + 1:
                problems.append(f"{name}: page is {facts['scrollWidth']}px wide at {facts['innerWidth']}px")
            if facts["bannerTop"] is None or facts["bannerTop"] > width["height"]:
                problems.append(f"{name}: 架空データ banner not on the first screen ({facts['bannerTop']})")
            if facts["lang"] != "ja" or facts["scripts"]:
                problems.append(f"{name}: lang={facts['lang']!r}, {facts['scripts']} scripts")
            problems += [
                f"{name}: table without caption or <th>: {t}"
                for t in facts["tables"]
                if not t["caption"] or not t["th"]
            ]
            problems += [f"{name}: loads {u[:100]}" for u in requests if u != url and not u.startswith("data:")]
            if not facts["tables"]:
                problems.append(f"{name}: no tables")
    finally:
        context.close()
    assert not problems and not events, "\n".join(problems + events)
