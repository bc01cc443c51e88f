"""The published reports in a real headless browser (Debian's chromium driven by Playwright).

Starting from ``reports/sample/index.html`` of one full run (the session fixture ``sample_run``),
every linked HTML page is opened from ``file://`` at desktop width (1280) and at phone width
(390, mobile emulation) and checked: no console errors, page errors or failed requests, every
image loaded and has alt text, ``<html lang="ja">``, Japanese text in the DOM, tables with
``<caption>`` and ``<th>``, the 架空データ banner, no horizontal page overflow on the phone
(wide tables scroll inside their own wrapper) and, when a Japanese font is installed, kanji that
render as glyphs rather than tofu. Full-page screenshots are saved under
``<repo>/reports/screenshots/`` (git-ignored) for a human to look at, one image pixel per CSS
pixel (``scale="css"``: a phone page at device scale 2 would be four times the pixels to encode).

Needs /usr/bin/chromium (``make test`` installs it as root); otherwise the tests are skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import pytest
from browser_support import PYTESTMARK, SCREENSHOT_DIR

from analysis.wareki import wareki_fy

ROOT = Path(__file__).resolve().parents[1]

pytestmark = PYTESTMARK

YEARS = range(2021, 2026)
EXPECTED_PAGES = [
    "index.html",
    *(f"FY{y}/report.html" for y in YEARS),
    *(f"FY{y}/summary.html" for y in YEARS),
    "trends/report.html",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
BANNER_WORD = "架空データ"
JUSOU = "重層的支援体制整備事業"

# One evaluate() per page and viewport: everything the checks below need.
PAGE_FACTS_JS = r"""
() => {
  const vw = window.innerWidth;
  const scrollsX = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const scroller = el => {
    for (let p = el.parentElement; p && p !== document.body && p !== document.documentElement; p = p.parentElement)
      if (scrollsX(p)) return p;
    return null;
  };
  const describe = el => el.tagName.toLowerCase()
      + (el.id ? '#' + el.id : '')
      + (typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\s+/).join('.') : '');
  // A wide table must scroll inside its own wrapper: scroll every user-scrollable ancestor
  // (overflow-x auto/scroll) fully to the right, then the table's right edge has to be visible,
  // i.e. not cut off by an ancestor that clips (overflow-x hidden/clip/auto/scroll) or by the
  // viewport. (overflow: hidden can be scrolled from script but not by the reader, so it is not
  // scrolled here.)
  const tables = [...document.querySelectorAll('table')].map(t => {
    const cap = t.querySelector(':scope > caption');
    const clips = [];
    for (let p = t.parentElement; p && p !== document.body && p !== document.documentElement; p = p.parentElement)
      if (getComputedStyle(p).overflowX !== 'visible') clips.push(p);
    const scrollers = clips.filter(scrollsX);
    const saved = scrollers.map(p => p.scrollLeft);
    scrollers.forEach(p => { p.scrollLeft = p.scrollWidth; });
    const right = t.getBoundingClientRect().right;
    let limit = vw, limiter = 'the viewport';
    for (const p of clips) {
      const edge = p.getBoundingClientRect().left + p.clientLeft + p.clientWidth;
      if (edge < limit) { limit = edge; limiter = describe(p) + ' (overflow-x: ' + getComputedStyle(p).overflowX + ')'; }
    }
    scrollers.forEach((p, k) => { p.scrollLeft = saved[k]; });
    return {
      // textContent too: a caption inside a closed <details> (the analyst appendix) has no rendered text
      caption: cap ? (cap.innerText.trim() || cap.textContent.trim()) : null,
      th: t.querySelectorAll('th').length,
      width: Math.round(t.getBoundingClientRect().width),
      hiddenPx: Math.max(0, Math.round(right - limit)),
      limiter,
    };
  });
  const images = [...document.images].map(i => ({
    src: (i.currentSrc || i.src).slice(0, 60),
    complete: i.complete,
    naturalWidth: i.naturalWidth,
    alt: i.getAttribute('alt'),
  }));
  const links = [...document.querySelectorAll('a[href]')].map(a => ({href: a.getAttribute('href'), abs: a.href}));
  const missingAnchors = links
    .filter(l => l.href.startsWith('#') && l.href.length > 1)
    // as in the HTML spec: the fragment as written first, then percent-decoded
    .filter(l => !document.getElementById(l.href.slice(1)) && !document.getElementById(decodeURIComponent(l.href.slice(1))))
    .map(l => l.href);
  // elements sticking out to the right of the viewport that are not inside a scrolling wrapper
  const overflowing = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > vw + 1 && !scroller(el)) {
      overflowing.push(describe(el) + ' right=' + Math.round(r.right));
      if (overflowing.length >= 10) break;
    }
  }
  const banner = [...document.querySelectorAll('[role=note]')].find(e => e.innerText.includes('架空データ'));
  return {
    lang: document.documentElement.lang,
    title: document.title,
    text: document.body.innerText,
    innerWidth: vw,
    clientWidth: document.documentElement.clientWidth,
    scrollWidth: document.scrollingElement.scrollWidth,
    tables, images, links, missingAnchors, overflowing,
    bannerTop: banner ? banner.getBoundingClientRect().top : null,
    scripts: document.scripts.length,
  };
}
"""

# Draw strings on a canvas in the page's own font: tofu (the .notdef box) looks the same for
# every missing character, so two different kanji drawn identically, or a kanji drawn like the
# noncharacter U+FFFF, means no font has the glyph. (Widths alone do not tell: Noto Sans CJK's
# .notdef box is 1em wide, exactly like a kanji.)
TOFU_JS = r"""
(family) => {
  const draw = s => {
    const c = document.createElement('canvas');
    c.width = 220; c.height = 64;
    const g = c.getContext('2d');
    g.fillStyle = '#fff'; g.fillRect(0, 0, c.width, c.height);
    g.fillStyle = '#000'; g.font = '40px ' + family; g.textBaseline = 'top';
    g.fillText(s, 4, 8);
    const px = g.getImageData(0, 0, c.width, c.height).data;
    let ink = 0;
    for (let k = 0; k < px.length; k += 4) if (px[k] < 128) ink++;
    return {width: g.measureText(s).width, data: c.toDataURL(), ink};
  };
  const kanji = draw('重層'), tofu = draw('\uFFFF\uFFFF'), a = draw('重'), b = draw('層');
  return {
    family,
    kanjiWidth: kanji.width, tofuWidth: tofu.width, kanjiInk: kanji.ink, tofuInk: tofu.ink,
    kanjiLooksLikeTofu: kanji.data === tofu.data,
    twoKanjiIdentical: a.data === b.data,
  };
}
"""


@dataclass(repr=False)
class Visit:
    """What one HTML page showed at desktop and phone width."""

    name: str  # path relative to reports/<dataset>/
    url: str
    desktop: dict = field(default_factory=dict)
    phone: dict = field(default_factory=dict)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)


@dataclass(repr=False)
class Crawl:
    reports_dir: Path
    visits: dict[str, Visit]
    files: dict[str, Path]  # non-HTML link targets (xlsx, csv), by relative name
    broken_links: list[str]
    external_links: list[str]
    tofu: dict | None
    platform_fonts: list[str]

    def __repr__(self) -> str:  # keeps pytest's failure output short
        return f"Crawl({len(self.visits)} pages, {len(self.files)} files under {self.reports_dir})"


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reports_dir(sample_run) -> Path:
    project, proc = sample_run
    assert proc.returncode == 0, f"sample run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    out = project / "reports" / "sample"
    assert (out / "index.html").is_file(), f"no index.html in {out}"
    return out


def _rel(reports_dir: Path, url: str) -> str | None:
    """Path of a file:// URL relative to reports_dir (None when outside it or not a file URL)."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    path = Path(unquote(parts.path)).resolve()
    try:
        return path.relative_to(reports_dir.resolve()).as_posix()
    except ValueError:
        return None


def _slug(name: str) -> str:
    return name.removesuffix(".html").replace("/", "_")


def _watch(page, current: dict) -> None:
    """Record the page's events into the Visit in current["visit"] (the page being visited)."""

    def on_console(msg):
        if msg.type == "error":
            current["visit"].console_errors.append(f"{msg.type}: {msg.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda e: current["visit"].page_errors.append(str(e)))
    page.on("requestfailed", lambda r: current["visit"].failed_requests.append(f"{r.url[:120]} ({r.failure})"))
    page.on("request", lambda r: current["visit"].requests.append(r.url[:120]))


def _japanese_families() -> set[str]:
    """Font families fontconfig says cover Japanese (empty when none or no fc-list)."""
    if not shutil.which("fc-list"):
        return set()
    out = subprocess.run(["fc-list", ":lang=ja", "family"], capture_output=True, text=True, timeout=30).stdout
    return {name.strip() for line in out.splitlines() for name in line.split(",") if name.strip()}


@pytest.fixture(scope="module")
def crawl(chromium_browser, reports_dir) -> Crawl:
    """Open index.html, follow every link to an HTML page (recursively), record everything."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    desktop = chromium_browser.new_context(viewport=DESKTOP, locale="ja-JP")
    phone = chromium_browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="ja-JP"
    )
    pages = {"desktop": desktop.new_page(), "phone": phone.new_page()}
    current: dict = {"visit": None}
    for page in pages.values():
        _watch(page, current)
    visits: dict[str, Visit] = {}
    files: dict[str, Path] = {}
    broken: list[str] = []
    external: list[str] = []
    queue = deque(["index.html"])
    seen = {"index.html"}
    try:
        while queue:
            name = queue.popleft()
            url = (reports_dir / name).resolve().as_uri()
            visit = current["visit"] = Visit(name, url)
            for kind, page in pages.items():
                page.goto(url, wait_until="load")
                facts = page.evaluate(PAGE_FACTS_JS)
                setattr(visit, kind, facts)
                shot = SCREENSHOT_DIR / f"{_slug(name)}_{kind}.png"
                page.screenshot(path=str(shot), full_page=True, scale="css")
                visit.screenshots.append(shot)
            visits[name] = visit
            for link in visit.desktop["links"]:
                href, absolute = link["href"], link["abs"]
                if href.startswith("#"):
                    continue  # checked in the page (missingAnchors)
                target, _ = urldefrag(absolute)
                rel = _rel(reports_dir, target)
                if rel is None:
                    if urlsplit(target).scheme == "file":
                        broken.append(f"{name}: {href} points outside the reports folder")
                    else:
                        external.append(f"{name}: {href}")
                    continue
                path = reports_dir / rel
                if not path.is_file():
                    broken.append(f"{name}: {href} -> {path} does not exist")
                elif rel.endswith(".html"):
                    # 175 profile pages share one template: every link is checked above, but
                    # only the first profile of each fiscal year is opened (tests/test_browser_profiles.py
                    # covers the template at both widths and in print)
                    year = re.match(r"profiles/(FY\d{4})/[^/]+\.html$", rel)
                    if year and year[1] in seen:
                        continue
                    if rel not in seen:
                        seen.add(rel)
                        seen.add(year[1]) if year else None
                        queue.append(rel)
                else:
                    files[rel] = path

        # fonts: which platform font renders the kanji of the index heading, and tofu or not
        current["visit"] = Visit("fonts", "")  # events of the font check are not asserted on
        index_page = pages["desktop"]
        index_page.goto((reports_dir / "index.html").resolve().as_uri(), wait_until="load")
        family = index_page.evaluate("() => getComputedStyle(document.body).fontFamily")
        tofu = index_page.evaluate(TOFU_JS, family)
        cdp = desktop.new_cdp_session(index_page)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root_id = cdp.send("DOM.getDocument")["root"]["nodeId"]
        h1 = cdp.send("DOM.querySelector", {"nodeId": root_id, "selector": "h1"})["nodeId"]
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": h1})["fonts"]
        cdp.detach()
    finally:
        desktop.close()
        phone.close()
    return Crawl(reports_dir, visits, files, broken, external, tofu, [f["familyName"] for f in fonts])


# --- checks ------------------------------------------------------------------------------------


def _fail_if(problems: list[str], what: str) -> None:
    assert not problems, f"{what}:\n  " + "\n  ".join(problems)


def test_index_links_every_report_and_file(crawl):
    assert set(EXPECTED_PAGES) <= set(crawl.visits), (
        f"pages reached from index.html: {sorted(crawl.visits)}; expected at least {EXPECTED_PAGES}"
    )
    _fail_if(crawl.broken_links, "broken links")
    # the index links each report's Excel workbook, CSV tables and PDF, and each year's one-page summary
    for d in [f"FY{y}" for y in YEARS] + ["trends"]:
        assert f"{d}/tables.xlsx" in crawl.files, f"index.html does not link {d}/tables.xlsx"
        assert any(n.startswith(f"{d}/tables/") and n.endswith(".csv") for n in crawl.files), (
            f"index.html links no CSV of {d}"
        )
        assert f"{d}/report.pdf" in crawl.files, f"index.html does not link {d}/report.pdf"
    for y in YEARS:
        assert f"FY{y}/summary.html" in crawl.visits, f"index.html does not link FY{y}/summary.html"
        assert {f"FY{y}/summary.pdf", f"FY{y}/summary.png", f"quality/FY{y}/report.pdf"} <= set(crawl.files)
    # the fiscal-year report links its summary, the summary links back to its report
    for y in YEARS:
        assert any(ln["href"] == "summary.html" for ln in crawl.visits[f"FY{y}/report.html"].desktop["links"])
        assert any(ln["href"] == "report.html" for ln in crawl.visits[f"FY{y}/summary.html"].desktop["links"])


def test_linked_files_exist_and_are_not_empty(crawl):
    problems = []
    for name, path in sorted(crawl.files.items()):
        data = path.read_bytes() if path.is_file() else b""
        if not data:
            problems.append(f"{name}: missing or empty")
        elif name.endswith(".xlsx"):
            if not zipfile.is_zipfile(path):
                problems.append(f"{name}: not an xlsx (zip) file")
        elif name.endswith(".pdf"):
            if not data.startswith(b"%PDF-"):
                problems.append(f"{name}: not a PDF file")
        elif name.endswith(".png"):
            if not data.startswith(b"\x89PNG\r\n\x1a\n"):
                problems.append(f"{name}: not a PNG file")
        elif name.endswith(".csv"):
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                problems.append(f"{name}: not UTF-8")
                continue
            if len(text.strip().splitlines()) < 2:
                problems.append(f"{name}: header only")
        else:
            problems.append(f"{name}: unexpected kind of link target")
    _fail_if(problems, "linked files")


def test_no_console_errors_page_errors_or_failed_requests(crawl):
    problems = []
    for v in crawl.visits.values():
        problems += [f"{v.name}: console {m}" for m in v.console_errors]
        problems += [f"{v.name}: page error {m}" for m in v.page_errors]
        problems += [f"{v.name}: request failed {m}" for m in v.failed_requests]
        # the reports work offline: nothing but the page itself (and data: URIs) is loaded
        problems += [f"{v.name}: loads {u}" for u in v.requests if not (u.startswith("data:") or u == v.url[:120])]
    _fail_if(problems, "errors while loading the pages")


def test_every_image_loaded_and_has_alt(crawl):
    problems = []
    n_images = 0
    for v in crawl.visits.values():
        for kind in ("desktop", "phone"):
            for img in getattr(v, kind)["images"]:
                n_images += kind == "desktop"
                if not img["complete"] or img["naturalWidth"] <= 0:
                    problems.append(f"{v.name} ({kind}): image not loaded: {img['src']}")
                if not (img["alt"] or "").strip():
                    problems.append(f"{v.name} ({kind}): image without alt text: {img['src']}")
    _fail_if(problems, "images")
    # 3 figures per fiscal year and 1 in the trends report
    assert n_images >= 3 * len(YEARS) + 1, f"only {n_images} images in the reports"


def test_html_lang_is_ja(crawl):
    _fail_if(
        [f"{v.name}: lang={v.desktop['lang']!r}" for v in crawl.visits.values() if v.desktop["lang"] != "ja"],
        "<html lang> is not ja",
    )


def test_japanese_text_in_dom(crawl):
    problems = []
    for v in crawl.visits.values():
        text = v.desktop["text"]
        year = next((y for y in YEARS if v.name.startswith(f"FY{y}/")), None)
        if year is not None and wareki_fy(year) not in text:
            problems.append(f"{v.name}: the year's label {wareki_fy(year)} is not in the page text")
        if JUSOU not in text and not any(wareki_fy(y) in text for y in YEARS):
            problems.append(f"{v.name}: neither {JUSOU} nor a 和暦 year label in the page text")
    _fail_if(problems, "Japanese text")


def test_tables_have_caption_and_header_cells(crawl):
    problems = []
    n_tables = 0
    for v in crawl.visits.values():
        for k, t in enumerate(v.desktop["tables"], start=1):
            n_tables += 1
            if not t["caption"]:
                problems.append(f"{v.name}: table {k} has no (non-empty) <caption>")
            if t["th"] == 0:
                problems.append(f"{v.name}: table {k} ({t['caption']}) has no <th>")
    _fail_if(problems, "tables")
    assert n_tables >= len(crawl.visits), f"only {n_tables} tables on {len(crawl.visits)} pages"


def test_fictional_data_banner_on_every_page(crawl):
    problems = []
    for v in crawl.visits.values():
        for kind in ("desktop", "phone"):
            facts = getattr(v, kind)
            if BANNER_WORD not in facts["text"]:
                problems.append(f"{v.name} ({kind}): no {BANNER_WORD} banner text")
            elif facts["bannerTop"] is None or facts["bannerTop"] > (DESKTOP if kind == "desktop" else PHONE)["height"]:
                problems.append(
                    f"{v.name} ({kind}): the {BANNER_WORD} banner is not on the first screen (top={facts['bannerTop']})"
                )
    _fail_if(problems, "架空データ banner")


def test_no_horizontal_overflow_at_phone_width(crawl):
    problems = []
    for v in crawl.visits.values():
        p = v.phone
        if p["innerWidth"] != PHONE["width"]:
            # with a working <meta name=viewport> the layout viewport is the phone's width
            problems.append(
                f"{v.name}: innerWidth is {p['innerWidth']} at a {PHONE['width']}px phone "
                "(viewport meta missing or ineffective)"
            )
        if p["scrollWidth"] > p["innerWidth"] + 1:
            problems.append(
                f"{v.name}: page is {p['scrollWidth']}px wide at innerWidth {p['innerWidth']}; "
                f"sticking out: {p['overflowing']}"
            )
    _fail_if(problems, "horizontal overflow at 390px")


def test_wide_tables_scroll_inside_their_wrapper(crawl):
    """Every column of every table can be reached (scrolling its wrapper), at both widths.

    Known failure (product bug, not fixed here): nbconvert's lab CSS makes
    ``.jp-OutputArea-output`` a table cell (a table row under 760px) inside
    ``.jp-OutputArea-child { overflow: hidden }``, so the output grows to the table's width, the
    ``.table-scroll`` / ``.table-wrap`` wrappers never scroll and the right part of every wide
    table is cut off. Proposed fix in templates/analysis_ja_report/report.css:
    ``.jp-OutputArea-output, .jp-OutputArea-child .jp-OutputArea-output { display: block; min-width: 0; }``
    """
    problems = []
    for v in crawl.visits.values():
        for kind in ("desktop", "phone"):
            for k, t in enumerate(getattr(v, kind)["tables"], start=1):
                if t["hiddenPx"] > 1:
                    problems.append(
                        f"{v.name} ({kind}): table {k} 「{t['caption']}」 ({t['width']}px): its last "
                        f"{t['hiddenPx']}px cannot be scrolled into view; cut off by {t['limiter']}"
                    )
    _fail_if(problems, "tables cut off instead of scrolling (wide tables must scroll inside their wrapper)")


def test_in_page_anchors_resolve(crawl):
    _fail_if(
        [f"{v.name}: no element for {a}" for v in crawl.visits.values() for a in v.desktop["missingAnchors"]],
        "in-page links without a target",
    )


def test_pages_run_no_script(crawl):
    _fail_if(
        [f"{v.name}: {v.desktop['scripts']} <script> elements" for v in crawl.visits.values() if v.desktop["scripts"]],
        "scripts in the reports",
    )


def test_screenshots_saved(crawl):
    for v in crawl.visits.values():
        assert len(v.screenshots) == 2
        for shot in v.screenshots:
            assert shot.is_file() and shot.stat().st_size > 1000, shot
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot


def test_kanji_are_not_tofu(crawl):
    families = _japanese_families()
    if not families:
        pytest.skip(
            "no font with Japanese glyphs installed (fc-list :lang=ja is empty); "
            "install fonts-ipaexfont-gothic or fonts-noto-cjk to check for tofu"
        )
    t = crawl.tofu
    assert t["kanjiInk"] > 0, f"'重層' drew nothing: {t}"
    assert not t["twoKanjiIdentical"], f"'重' and '層' draw the same box (tofu): {t}"
    assert not t["kanjiLooksLikeTofu"], f"'重層' draws like two missing-glyph boxes (tofu): {t}"
    # a kanji is full-width (1em) in every Japanese font
    assert 0.9 * 80 <= t["kanjiWidth"] <= 1.1 * 80, f"'重層' at 40px is {t['kanjiWidth']}px wide: {t}"
    assert crawl.platform_fonts, "chromium reports no platform font for the index heading"
    assert set(crawl.platform_fonts) <= families, (
        f"the index heading is rendered with {crawl.platform_fonts}, not with a Japanese font "
        f"(installed: {sorted(families)})"
    )
