"""Print the published pages to A4 PDF, and the one-page summary to a PNG for slides.

After a run, :func:`publish` writes each fiscal year's one-page summary (analysis.summary_page)
and then, with a headless chromium for the whole run (two side by side when there are many pages,
:func:`print_lanes`; Playwright driving the system's chromium: nothing is downloaded), prints

* ``report.pdf`` of every fiscal-year, trends and quality report,
* ``summary.pdf`` (one A4 landscape page) and ``summary.png`` (1600×900, for a slide) of every
  fiscal year,

each time the PDF is missing or older than its HTML. The page's print stylesheet does the
layout (A4 portrait; tables of many columns on landscape pages); the PDF gets a header (the
page title, which names the report, fiscal year and dataset, and the 架空データ note for
synthetic data) and a footer (page X / Y), and every ``<details>`` (「分析方法の詳細」) is opened
first. Without chromium (or the playwright package) nothing is printed and the run summary
says so; the HTML reports are complete without the PDFs.

Files are written atomically; the PDF's creation and modification dates, the only bytes that
change between two prints of the same page, are fixed, so a re-run is byte-identical.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
from dataclasses import dataclass
from html import escape, unescape
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import AnalysisError
from .export import write_bytes
from .htmlexport import PRINT_BANNER_JA

if TYPE_CHECKING:
    from playwright.sync_api import Playwright

__all__ = [
    "CHROMIUM_ENV",
    "LAUNCH_ARGS",
    "SLIDE_SIZE",
    "PageParts",
    "PdfUnavailable",
    "PrintJob",
    "Printer",
    "find_chromium",
    "fix_pdf_dates",
    "footer_template",
    "header_template",
    "pdf_unavailable",
    "print_jobs",
    "print_lanes",
    "publish",
    "swappable_parts",
]

#: Environment variable naming the chromium executable ("" or a missing file: no PDFs).
CHROMIUM_ENV = "ANALYSIS_CHROMIUM"
_CANDIDATES = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
)
#: Flags for a headless chromium that never talks to the network on its own.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # rasterise whole tiles, in sRGB: otherwise the antialiasing of a rounded corner differed
    # between two chromium processes, and so did the bytes of the slide image
    "--disable-partial-raster",
    "--force-color-profile=srgb",
]
#: Profiles of the latest year get a PDF each up to this many pages (the largest prefecture, 北海道,
#: has 179 municipalities); a national dataset keeps its 1,741 profiles as printable HTML only.
PROFILE_PDF_LIMIT = 300
#: Size (CSS px) of the summary's slide image.
SLIDE_SIZE = (1600, 900)
#: Creation/modification date written into every PDF (the same as the workbooks' document time).
FIXED_PDF_DATE = b"20000101000000"
_PDF_DATE_RE = re.compile(rb"(/(?:CreationDate|ModDate)\s*\(D:)\d{14}")
_GOTO_TIMEOUT_MS = 120_000

# Page-margin text of the print stylesheets (htmlexport.print_page_css) is replaced by the PDF's
# own header and footer, which also work in chromium older than 131 (no CSS margin boxes there).
_NO_MARGIN_BOXES = (
    "@page { @top-left { content: none } @top-center { content: none } "
    "@top-right { content: none } @bottom-center { content: none } }"
)
# A slide has no links to follow: the page's navigation line is left out of the image.
_NO_NAVIGATION = "nav { display: none !important; }"
_PREPARE_JS = """async () => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  // links to the site's own files would become file:// links to this computer's folder in the PDF
  document.querySelectorAll('a[href]').forEach(a => {
    const h = a.getAttribute('href');
    if (!/^(https?:|mailto:|#)/i.test(h)) a.removeAttribute('href');
  });
  await document.fonts.ready;
  await Promise.all([...document.images].map(i => i.complete ? null : i.decode().catch(() => null)));
}"""
_FONTS = "'IPAexGothic','Noto Sans CJK JP','Hiragino Sans','Yu Gothic','Meiryo',sans-serif"
_BAR = (
    f"font-family:{_FONTS};font-size:8px;color:#333;width:100%;margin:0 12mm;display:flex;"
    "-webkit-print-color-adjust:exact;print-color-adjust:exact;"
)


# Another page of the same shell put in place of the one on screen (analysis.pdf.Printer._open)
_SWAP_JS = """([title, body]) => { document.title = title; document.body.innerHTML = body; }"""
# A style added once per loaded page (a swapped-in page keeps the head, and so the style)
_STYLE_JS = """([id, css]) => {
  if (document.getElementById(id)) return;
  const style = document.createElement('style');
  style.id = id;
  style.textContent = css;
  document.head.appendChild(style);
}"""
_PAGE_RE = re.compile(r"(?s)\A(.*?<title>)(.*?)(</title>.*?<body\b[^>]*>)(.*)(</body>\s*</html>\s*)\Z")


@dataclass(frozen=True)
class PageParts:
    """A page split for swapping: everything but title and body (with its folder), title, body."""

    shell: str
    title: str
    body: str


def swappable_parts(html: Path) -> PageParts | None:
    """`html` split into shell, title and body; None if it cannot be swapped in (a script, or no
    plain <title> and <body>): such a page is always loaded."""
    try:
        text = Path(html).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    m = _PAGE_RE.match(text)
    if m is None or "<script" in text.lower() or "<" in m.group(2):
        return None
    folder = str(Path(html).resolve().parent)
    return PageParts(f"{folder}\0{m.group(1)}\0{m.group(3)}\0{m.group(5)}", unescape(m.group(2)), m.group(4))


class PdfUnavailable(AnalysisError):
    """PDFs cannot be printed on this machine (no chromium, or no playwright package)."""


def find_chromium() -> Path | None:
    """The chromium to print with: $ANALYSIS_CHROMIUM if set, else the system's; None if absent."""
    env = os.environ.get(CHROMIUM_ENV)
    if env is not None:
        path = Path(env)
        return path if env and path.is_file() and os.access(path, os.X_OK) else None
    for candidate in _CANDIDATES:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def pdf_unavailable() -> PdfUnavailable | None:
    """Why PDFs cannot be printed here (a bilingual error, not raised), or None when they can."""
    if find_chromium() is None:
        where = os.environ.get(CHROMIUM_ENV)
        named = f"（{CHROMIUM_ENV}={where}）" if where is not None else ""
        named_en = f" ({CHROMIUM_ENV}={where})" if where is not None else ""
        return PdfUnavailable(
            f"chromium が見つからないため PDF は作成しませんでした{named}。HTML のレポートはそのまま使えます。"
            "PDF も作るには chromium をインストールしてください（Debian/Ubuntu: sudo apt-get install chromium "
            "fonts-ipaexfont-gothic）",
            f"PDFs not written: no chromium found{named_en}; the HTML reports are complete. Install chromium "
            "(Debian/Ubuntu: sudo apt-get install chromium fonts-ipaexfont-gothic) to get PDFs",
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return PdfUnavailable(
            "playwright パッケージがないため PDF は作成しませんでした（pip install playwright、または make setup）",
            "PDFs not written: the playwright package is not installed (pip install playwright, or make setup)",
        )
    return None


def fix_pdf_dates(data: bytes) -> bytes:
    """The PDF with its CreationDate/ModDate set to 2000-01-01 (same length: offsets stay valid)."""
    return _PDF_DATE_RE.sub(lambda m: m.group(1) + FIXED_PDF_DATE, data)


_NODE_ID_RE = re.compile(rb"\(node(\d{8})\)")


def renumber_structure_ids(data: bytes) -> bytes:
    """Tagged-PDF structure ids renumbered in order of first appearance.

    chromium numbers them with a per-process counter, so the same page printed by two browser
    processes would differ only there; the new ids have the same length (offsets stay valid).
    """
    seen: dict[bytes, bytes] = {}

    def new_id(m: re.Match) -> bytes:
        return b"(node" + seen.setdefault(m.group(1), b"%08d" % len(seen)) + b")"

    return _NODE_ID_RE.sub(new_id, data)


_NAMES_LEAF_RE = re.compile(rb"/Limits \[\(node\d{8}\) \(node\d{8}\)\]\n/Names \[((?:\(node\d{8}\) \d+ 0 R ?)+)\]")
_NAMES_ENTRY_RE = re.compile(rb"\(node\d{8}\) \d+ 0 R")


def sort_structure_names(data: bytes) -> bytes:
    """The structure-id name tree's entries in the order of their (renumbered) ids, and its limits.

    chromium sorts the tree by its own ids, whose order between two elements can differ from one
    browser process to another (seen once in 12 prints: two entries swapped); after renumbering,
    sorting by the new ids makes the tree the same. Same length: offsets stay valid.
    """

    def leaf(m: re.Match) -> bytes:
        entries = sorted(_NAMES_ENTRY_RE.findall(m.group(1)))
        body = b" ".join(entries)
        if len(body) != len(m.group(1).rstrip()):
            return m.group(0)  # not the layout this expects: left as printed
        limits = entries[0].split(b" ", 1)[0] + b" " + entries[-1].split(b" ", 1)[0]
        return b"/Limits [" + limits + b"]\n/Names [" + body + m.group(1)[len(body) :] + b"]"

    return _NAMES_LEAF_RE.sub(leaf, data)


def deterministic_pdf(data: bytes) -> bytes:
    """The bytes of a printed PDF that do not depend on when or by which browser process it was printed."""
    return sort_structure_names(renumber_structure_ids(fix_pdf_dates(data)))


def header_template(title: str, synthetic: bool) -> str:
    """Header of every PDF page: the page title (report, fiscal year, dataset) and the 架空データ note."""
    note = (
        f'<span style="color:#A63D00;font-weight:bold;white-space:nowrap;margin-left:4mm">'
        f"{escape(PRINT_BANNER_JA)}</span>"
        if synthetic
        else ""
    )
    return (
        f'<div style="{_BAR}justify-content:space-between;align-items:baseline">'
        f"<span>{escape(title)}</span>{note}</div>"
    )


def footer_template() -> str:
    """Footer of every PDF page: page X / Y."""
    return (
        f'<div style="{_BAR}justify-content:center">'
        '<span class="pageNumber"></span>&nbsp;/&nbsp;<span class="totalPages"></span></div>'
    )


@dataclass(frozen=True)
class PrintJob:
    """One page to print: its HTML, the PDF to write and, for a summary, the slide PNG."""

    html: Path
    pdf: Path
    png: Path | None = None

    def stale(self) -> bool:
        """True when an output is missing or older than the HTML."""
        made = self.html.stat().st_mtime_ns
        return any(not p.is_file() or p.stat().st_mtime_ns < made for p in (self.pdf, self.png) if p is not None)


class Printer:
    """One headless chromium (Playwright + the system's executable) for every page of a run.

    One browser page per kind of output (PDF, slide image) is kept and navigated from page to
    page: a new browser context per page started a renderer process each time, ~0.3 CPU-seconds
    of a run's ~0.4 per PDF, and printed the same bytes (tests/test_print.py compares them). A
    page of the same shell as the one on screen (the next 市町別カルテ) is swapped in rather than
    loaded (:func:`swappable_parts`). A page that fails is discarded, so the next one starts from
    a new context.

    >>> with Printer() as printer:                                  # doctest: +SKIP
    ...     printer.pdf(Path("FY2025/report.html"), Path("FY2025/report.pdf"), synthetic=True)
    """

    def __init__(self, chromium: Path | None = None, *, browser=None):
        self.chromium = chromium or find_chromium()
        self._playwright: Playwright | None = None
        self._browser = browser  # a Playwright Browser to use (and leave open), e.g. a test's
        self._own = browser is None
        self._pages: dict[str, tuple] = {}  # context options -> (context, page, shell shown), reused
        self.loads = 0  # pages loaded by navigation (the others were swapped in)

    def __enter__(self) -> Printer:
        if not self._own:
            return self
        problem = pdf_unavailable() if self.chromium is None else None
        if problem is not None:
            raise problem
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=str(self.chromium), args=LAUNCH_ARGS, headless=True
            )
        except BaseException:
            self._playwright.stop()
            raise
        return self

    def close_pages(self) -> None:
        """Close the kept browser contexts (their pages with them)."""
        pages, self._pages = self._pages, {}
        for context, *_page in pages.values():
            with contextlib.suppress(Exception):
                context.close()

    def __exit__(self, *exc) -> None:
        self.close_pages()
        if not self._own:
            return
        try:
            if self._browser is not None:
                self._browser.close()
        finally:
            if self._playwright is not None:
                self._playwright.stop()
            self._browser = self._playwright = None

    @contextlib.contextmanager
    def _open(self, html: Path, **context):
        """The kept page for these context options, showing `html` prepared for print; discarded on error.

        A page built like the one on screen (same folder, same head and body tag, only the title
        differs, no script), e.g. the next 市町別カルテ, has its title and body put in place of
        the current ones instead of being loaded: ~40 % less time per profile, and the same PDF
        bytes (tests/test_print.py compares them with pages loaded one by one).
        """
        key = repr(sorted(context.items()))
        if key not in self._pages:
            context_ = self._browser.new_context(locale="ja-JP", **context)
            self._pages[key] = (context_, context_.new_page(), None)
        context_, page, shown = self._pages[key]
        try:
            parts = swappable_parts(Path(html))
            if parts is not None and shown is not None and parts.shell == shown:
                page.evaluate(_SWAP_JS, [parts.title, parts.body])
            else:
                page.goto(Path(html).resolve().as_uri(), wait_until="load", timeout=_GOTO_TIMEOUT_MS)
                self.loads += 1
                self._pages[key] = (context_, page, parts.shell if parts is not None else None)
            page.evaluate(_PREPARE_JS)
            yield page
        except BaseException:
            del self._pages[key]
            with contextlib.suppress(Exception):
                context_.close()
            raise

    def pdf_bytes(self, html: Path, *, synthetic: bool, title: str | None = None) -> bytes:
        """The page printed to PDF (A4 per its print stylesheet), with header, footer and fixed dates."""
        with self._open(html) as page:
            page.evaluate(_STYLE_JS, ["analysis-no-margin-boxes", _NO_MARGIN_BOXES])
            data = page.pdf(
                prefer_css_page_size=True,
                print_background=True,
                display_header_footer=True,
                header_template=header_template(title or page.title(), synthetic),
                footer_template=footer_template(),
                tagged=True,
                outline=True,
            )
        return deterministic_pdf(data)

    def pdf(self, html: Path, out: Path, *, synthetic: bool, title: str | None = None) -> Path:
        """Print html to out (atomically)."""
        return write_bytes(out, self.pdf_bytes(html, synthetic=synthetic, title=title))

    def png(self, html: Path, out: Path, size: tuple[int, int] = SLIDE_SIZE) -> Path:
        """A screenshot of the page's first screen at size (CSS px, scale 1), e.g. for a slide."""
        width, height = size
        with self._open(html, viewport={"width": width, "height": height}, device_scale_factor=1) as page:
            page.evaluate(_STYLE_JS, ["analysis-no-navigation", _NO_NAVIGATION])
            data = page.screenshot(type="png", full_page=False, animations="disabled", caret="initial")
        return write_bytes(out, data)


def _ok(directory: Path) -> bool:
    """A report folder whose manifest says ok and that has its report.html."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("status") == "ok" and (directory / "report.html").is_file()


def _fy_dirs(parent: Path) -> list[Path]:
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.is_dir() and re.fullmatch(r"FY\d{4}", p.name))


def report_dirs(base: Path) -> list[Path]:
    """Every published report folder under reports/<dataset>/: fiscal years, trends, quality."""
    dirs = [*_fy_dirs(base), base / "trends", *_fy_dirs(base / "quality")]
    return [d for d in dirs if _ok(d)]


def print_jobs(base: Path, *, all_jobs: bool = False) -> list[PrintJob]:
    """What to print under reports/<dataset>/: stale PDFs/PNGs only, unless all_jobs."""
    jobs = []
    for d in report_dirs(base):
        jobs.append(PrintJob(d / "report.html", d / "report.pdf"))
        if (d / "summary.html").is_file() and d.parent == base:
            jobs.append(PrintJob(d / "summary.html", d / "summary.pdf", d / "summary.png"))
    # 市町別カルテ of the latest fiscal year (what an adviser takes on a visit): one A4 page each;
    # earlier years' profiles print from the browser with the same print stylesheet
    for d in _fy_dirs(base / "profiles")[-1:]:
        pages = sorted(d.glob("*.html"))
        if len(pages) <= PROFILE_PDF_LIMIT:  # national data (1,741 pages): HTML only, printable from the browser
            jobs += [PrintJob(html, html.with_suffix(".pdf")) for html in pages]
    return jobs if all_jobs else [j for j in jobs if j.stale()]


def _problem_text(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, AnalysisError):
        return exc.ja, exc.en
    first = " ".join(str(exc).split())[:300]
    return first, first


def publish(
    base: Path,
    *,
    label_ja: str,
    synthetic: bool,
    banner_ja: str | None = None,
    pdfs: bool = True,
    lanes: int | None = None,
) -> list[str]:
    """After a run: the one-page summaries, then the PDFs and slide images that are missing or stale.

    Returns notes for the run summary (Japanese / English): PDFs skipped for lack of chromium,
    or a page that could not be printed. Never raises for those: the HTML reports stand alone.
    `pdfs=False` (`run --no-pdf`): summaries only, and a PDF or slide image older than its page is
    removed rather than left beside it (the index links what is there; the next run prints them).
    `lanes`: browsers printing at once (default :func:`print_lanes`); the bytes do not depend on it.
    """
    from .summary_page import build_summary_page

    notes: list[str] = []
    base = Path(base)
    for d in _fy_dirs(base):
        if not _ok(d):
            continue
        try:
            build_summary_page(d, label_ja=label_ja, synthetic=synthetic, banner_ja=banner_ja)
        except (OSError, ValueError) as exc:
            ja, en = _problem_text(exc)
            notes.append(
                f"1枚の要約を作成できませんでした（{d.name}）: {ja} / could not write the one-page summary "
                f"of {d.name}: {en}"
            )
    jobs = print_jobs(base)
    if not pdfs:
        for out in (o for job in jobs for o in (job.pdf, job.png) if o is not None and o.exists()):
            try:
                out.unlink()
            except OSError as exc:
                ja, en = _problem_text(exc)
                name = out.relative_to(base).as_posix()
                notes.append(f"古い {name} を削除できませんでした: {ja} / could not remove the outdated {name}: {en}")
        return notes
    if not jobs:
        return notes
    problem = pdf_unavailable()
    if problem is not None:
        return [*notes, str(problem)]
    n = print_lanes(len(jobs)) if lanes is None else max(1, min(int(lanes), len(jobs)))
    numbered = list(enumerate(jobs))
    from concurrent.futures import ThreadPoolExecutor

    # each lane in a thread of its own, also a single one: Playwright's sync API refuses a thread
    # with a running asyncio loop (a Jupyter kernel's, or a caller's own Playwright)
    stop = threading.Event()
    with ThreadPoolExecutor(n, thread_name_prefix="print") as pool:
        try:
            futures = [pool.submit(_print_lane, numbered[i::n], base, synthetic, stop) for i in range(n)]
            found = [note for f in futures for note in f.result()]
        except BaseException:  # e.g. Ctrl-C: each lane ends after its current page
            stop.set()
            raise
    for _order, note in sorted(set(found)):  # in the order of the pages; one note per chromium failure
        notes.append(note)
    return notes


#: Pages printed by one browser below this many per lane; above, two lanes (browsers) share them.
PAGES_PER_LANE = 8


def print_lanes(n_pages: int) -> int:
    """How many browsers print `n_pages` at once: two on a machine of two or more cores when there
    are enough pages, else one; one in a worker process (the runner's finishing steps of several
    datasets already run side by side there).

    Printing is partly latency-bound (page loads, the print compositor): two browsers printed the
    sample's 51 PDFs and 5 slide images in 11.2 s against 14.0 s for one (2 cores, medians of 2).
    """
    import multiprocessing

    if multiprocessing.parent_process() is not None or (os.cpu_count() or 1) < 2:
        return 1
    return 2 if n_pages >= 2 * PAGES_PER_LANE else 1


def _print_lane(
    jobs: list[tuple[int, PrintJob]], base: Path, synthetic: bool, stop: threading.Event
) -> list[tuple[int, str]]:
    """Print `jobs` (numbered in the run's order) with one browser; (number, note) of each problem."""
    from playwright.sync_api import Error as PlaywrightError

    notes: list[tuple[int, str]] = []
    try:
        with Printer() as printer:
            for i, job in jobs:
                if stop.is_set():
                    break
                name = job.pdf.relative_to(base).as_posix()
                try:
                    printer.pdf(job.html, job.pdf, synthetic=synthetic)
                    if job.png is not None:
                        printer.png(job.html, job.png)
                except (PlaywrightError, OSError) as exc:
                    ja, en = _problem_text(exc)
                    notes.append((i, f"PDF を作成できませんでした（{name}）: {ja} / could not print {name}: {en}"))
    except (PlaywrightError, OSError) as exc:
        ja, en = _problem_text(exc)
        notes.append(
            (
                -1,
                f"chromium を起動できなかったため PDF は作成しませんでした: {ja} / "
                f"PDFs not written: chromium could not be started: {en}",
            )
        )
    return notes
