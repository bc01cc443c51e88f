"""Export executed notebooks to self-contained, offline Japanese HTML reports.

The reports are opened from a file share (``file://``) or any static host,
often on PCs and phones without internet access, so the HTML must not load
anything from the network.  :func:`notebook_to_html` renders an executed
notebook with nbconvert's :class:`~nbconvert.HTMLExporter` and the template
``templates/analysis_ja_report`` (which extends nbconvert's ``lab`` template):

* code input and In/Out prompts are hidden;
* ``<html lang>``, ``<meta charset>``, a phone viewport and an escaped
  ``<title>``;
* no scripts and no external resources: CSS is inlined, images are embedded as
  ``data:`` URIs, JavaScript/widget outputs are dropped and a
  Content-Security-Policy forbids everything else;
* wide tables scroll horizontally (their first column stays in view), a
  Japanese font stack is used and an optional prominent banner is shown at
  the top;
* printed, the page is A4 portrait; tables of :data:`WIDE_TABLE_COLUMNS` or
  more columns go on A4 landscape pages (CSS named page ``wide``) and the page
  margins carry the title, page X / Y and, with a banner, the 架空データ note
  (:func:`print_page_css`);
* ``stderr`` stream outputs (warnings quoting source lines) and cells tagged
  ``remove-cell`` / outputs of cells tagged ``remove-output`` are left out;
* the output is deterministic (no timestamps, cell ids or random ids) and
  written atomically.

After rendering, the HTML is checked by :func:`find_offline_violations`;
if anything would execute script or load a resource from outside the file
(e.g. a notebook output containing ``<script src="https://...">`` or an
image that could not be embedded), :class:`OfflineHTMLError` is raised and no
file is written.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import tempfile
import threading
from html import escape as html_escape
from html import unescape as html_unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

__all__ = [
    "FICTIONAL_DATA_BANNER_JA",
    "PRINT_BANNER_JA",
    "TEMPLATE_DIR",
    "TEMPLATE_NAME",
    "WIDE_TABLE_COLUMNS",
    "OfflineHTMLError",
    "css_string",
    "find_offline_violations",
    "notebook_to_html",
    "print_page_css",
    "wrap_tables",
    "write_text_atomic",
    "write_text_if_changed",
]

#: Directory holding this package's templates (nbconvert and site templates).
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
#: Name of the nbconvert template directory under :data:`TEMPLATE_DIR`.
TEMPLATE_NAME = "analysis_ja_report"

#: Standard banner text for reports built from synthetic (fictional) data.
FICTIONAL_DATA_BANNER_JA = (
    "架空データ：このレポートは架空の県のデータから作成したもので、実在の自治体とは関係ありません。"
)

#: Short form of the banner printed at the top of every printed page of synthetic-data reports.
PRINT_BANNER_JA = "架空データ（実在の自治体とは関係ありません）"

#: Alt text for output images that carry no ``alt`` metadata.
DEFAULT_IMAGE_ALT = "図"

#: Output mime types in order of preference.  JavaScript, widget views and
#: mermaid (which all need scripts) are absent, so outputs that offer them
#: fall back to their HTML / image / text representation.
DISPLAY_DATA_PRIORITY = [
    "text/html",
    "text/markdown",
    "image/svg+xml",
    "image/png",
    "image/jpeg",
    "text/latex",
    "text/plain",
]

#: Cells (or their outputs) with these tags are left out of the report.
REMOVE_CELL_TAGS = ("remove-cell", "remove_cell")
REMOVE_OUTPUT_TAGS = ("remove-output", "remove_output")

_LANG_RE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")

_exporter: Any = None
_exporter_lock = threading.Lock()


class OfflineHTMLError(ValueError):
    """The rendered HTML would run script or load an external resource."""

    def __init__(self, violations: list[str]):
        self.violations = list(violations)
        shown = "\n  ".join(self.violations[:20])
        more = "" if len(self.violations) <= 20 else f"\n  … and {len(self.violations) - 20} more"
        super().__init__("report HTML is not self-contained / script-free:\n  " + shown + more)


# ---------------------------------------------------------------------------
# helpers shared with analysis.site
# ---------------------------------------------------------------------------


def write_text_atomic(path: str | os.PathLike[str], text: str, *, mode: int = 0o644) -> Path:
    """Write ``text`` as UTF-8 (LF newlines) to ``path`` atomically.

    The text goes to a temporary file in the same directory, which is
    flushed, fsynced and then moved over ``path`` with :func:`os.replace`, so
    readers never see a half-written file.  The file gets ``mode`` (readable
    by everybody by default, since the reports are served from a share)
    unless ``path`` already exists, in which case its mode is kept.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        mode = path.stat().st_mode & 0o7777
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return path


def write_text_if_changed(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`write_text_atomic`, skipped when ``path`` already holds exactly ``text``.

    An unchanged page keeps its modification time, which is how the printing step and the
    finishing step's record tell that nothing about it changed.
    """
    path = Path(path)
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except (OSError, UnicodeDecodeError):
        pass
    return write_text_atomic(path, text)


_TABLE_OPEN_RE = re.compile(r"<table\b", re.IGNORECASE)
_TABLE_CLOSE_RE = re.compile(r"</table\s*>", re.IGNORECASE)
_CAPTION_RE = re.compile(r"<caption\b[^>]*>(.*?)</caption\s*>", re.IGNORECASE | re.DOTALL)
_FIRST_ROW_RE = re.compile(r"<tr\b[^>]*>(.*?)</tr\s*>", re.IGNORECASE | re.DOTALL)
_HEADER_CELL_RE = re.compile(r"<th\b([^>]*)>", re.IGNORECASE)
_COLSPAN_RE = re.compile(r"""colspan\s*=\s*["']?(\d+)""", re.IGNORECASE)
_TAG_RE = re.compile(r"<[^>]*>")

#: Tables with at least this many header columns are "wide": printed on an A4 landscape page
#: (CSS named page ``wide``) with a smaller font.  The association table has 16, the
#: municipality table 12, the hazard table 11; everything else (≤ 9) reflows on A4 portrait.
WIDE_TABLE_COLUMNS = 10


def _header_columns(table_html: str) -> int:
    """Number of columns in the first row of a table that has header cells (colspans counted)."""
    for m in _FIRST_ROW_RE.finditer(table_html):
        cells = _HEADER_CELL_RE.findall(m.group(1))
        if cells:
            return sum(int(c.group(1)) if (c := _COLSPAN_RE.search(a)) else 1 for a in cells)
    return 0


def _wrapper_open(table_html: str) -> str:
    """The scrolling wrapper of one table: wide or not, labelled by the table's caption.

    A scrollable region needs a name, and a unique one (axe: landmark-unique), so the caption
    text is used; the label says it scrolls sideways.
    """
    columns = _header_columns(table_html)
    cls = "table-scroll table-wide" if columns >= WIDE_TABLE_COLUMNS else "table-scroll"
    cap = _CAPTION_RE.search(table_html)
    caption = " ".join(html_unescape(_TAG_RE.sub("", cap.group(1))).split()) if cap else ""
    label = f"表「{caption}」（横にスクロールできます）" if caption else "表（横にスクロールできます）"
    return (
        f'<div class="{cls}" role="region" tabindex="0" aria-label="{html_escape(label, quote=True)}"'
        f' data-columns="{columns}">'
    )


def wrap_tables(html: str) -> str:
    """Wrap every ``<table>`` in a horizontally scrolling, labelled ``div``.

    Only real tags are matched: table markup that appears as escaped text
    (``&lt;table&gt;``) is left alone.  Tables with at least
    :data:`WIDE_TABLE_COLUMNS` header columns get the class ``table-wide``,
    which the print stylesheet puts on A4 landscape pages.
    """
    if not html:
        return html
    html = str(html)
    out: list[str] = []
    pos = 0
    for m in _TABLE_OPEN_RE.finditer(html):
        end = _TABLE_CLOSE_RE.search(html, m.end())
        out.append(html[pos : m.start()])
        out.append(_wrapper_open(html[m.start() : end.end() if end else len(html)]))
        pos = m.start()
    out.append(html[pos:])
    return _TABLE_CLOSE_RE.sub(lambda m: m.group(0) + "</div>", "".join(out))


def css_string(text: str) -> str:
    """``text`` as a quoted CSS string that cannot end the string, the rule or the <style>.

    Everything but letters, digits, spaces and non-ASCII characters is written as a CSS hex
    escape (``\\22 `` for a double quote), so ``"``, ``\\``, ``<`` and newlines are harmless.
    """
    out = []
    for ch in str(text):
        safe = (
            (ch.isascii() and ch.isalnum()) or ch == " " or (ord(ch) > 0x7F and ch.isprintable() and not ch.isspace())
        )
        out.append(ch if safe else f"\\{ord(ch):x} ")
    return '"' + "".join(out) + '"'


def print_page_css(title: str, synthetic: bool = False) -> str:
    """``@page`` rules for printing from the browser: title, page X / Y and the 架空データ note.

    Printed in the page margins (CSS margin boxes, Chromium 131+) on every page, portrait and
    landscape (named page ``wide``).  :mod:`analysis.pdf` replaces them by its own
    header/footer when it writes report.pdf.
    """
    note = ""
    if synthetic:
        note = (
            f"  @top-right {{ content: {css_string(PRINT_BANNER_JA)}; color: #A63D00; font-weight: bold;"
            " font-size: 8pt; }\n"
        )
    return (
        "@page {\n"
        f"  @top-left {{ content: {css_string(title)}; font-size: 8pt; color: #333; }}\n"
        f"{note}"
        '  @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; color: #333; }\n'
        "}\n"
    )


# ---------------------------------------------------------------------------
# offline / script-free check
# ---------------------------------------------------------------------------

# Elements whose src/href/data/poster/srcset attribute makes the browser fetch
# something while loading the page (as opposed to <a href>, a plain link).
_FETCHING_ATTRS = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "image": ("href", "xlink:href"),
    "iframe": ("src",),
    "frame": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "source": ("src", "srcset"),
    "track": ("src",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "input": ("src",),
    "use": ("href", "xlink:href"),
    "feimage": ("href", "xlink:href"),
}
_CSS_URL_RE = re.compile(r"url\(\s*(['\"]?)\s*([^'\")\s]*)", re.IGNORECASE)
_CSS_IMPORT_RE = re.compile(r"@import\b", re.IGNORECASE)
_JS_URL_RE = re.compile(r"^\s*(?:javascript|vbscript)\s*:", re.IGNORECASE)


def _is_embedded_or_local_fragment(url: str) -> bool:
    url = url.strip()
    return url == "" or url.startswith("#") or url.lower().startswith("data:")


class _OfflineChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.violations: list[str] = []
        self._in_style = False

    def _add(self, msg: str) -> None:
        self.violations.append(msg[:300])

    def _check_css(self, css: str, where: str) -> None:
        if _CSS_IMPORT_RE.search(css):
            self._add(f"{where}: CSS @import")
        for m in _CSS_URL_RE.finditer(css):
            if not _is_embedded_or_local_fragment(m.group(2)):
                self._add(f"{where}: CSS url({m.group(2)})")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        if tag == "script":
            self._add(f"<script> element {dict(attrs)!r}")
        if tag == "style":
            self._in_style = True
        if tag == "base":
            self._add("<base> element")
        if tag == "meta":
            d = {k.lower(): (v or "") for k, v in attrs}
            if d.get("http-equiv", "").lower() == "refresh":
                self._add("<meta http-equiv=refresh>")
        fetching = _FETCHING_ATTRS.get(tag, ())
        for name, value in attrs:
            name = name.lower()
            value = value or ""
            if name.startswith("on"):
                self._add(f"<{tag}> event handler attribute {name}=")
            elif name == "style":
                self._check_css(value, f"<{tag} style>")
            elif name in ("href", "src", "action", "formaction", "xlink:href") and _JS_URL_RE.match(value):
                self._add(f"<{tag} {name}> javascript: URL")
            if name in fetching:
                urls = [u.strip().split()[0] for u in value.split(",") if u.strip()] if name == "srcset" else [value]
                for url in urls:
                    if not _is_embedded_or_local_fragment(url):
                        self._add(f"<{tag} {name}={url[:120]!r}> is not embedded")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag.lower() == "style":
            self._in_style = False

    def handle_endtag(self, tag: str) -> None:
        if tag.lower() == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._check_css(data, "<style>")


def find_offline_violations(html: str) -> list[str]:
    """Return reasons why ``html`` is not a script-free, self-contained page.

    Flags ``<script>`` elements, inline event handlers, ``javascript:`` URLs,
    ``<base>``/meta refresh, and any resource the browser would fetch while
    loading the page (``<img src>``, ``<link href>``, ``<iframe src>``, CSS
    ``url()``/``@import``…) unless it is a ``data:`` URI or a ``#fragment``.
    Plain hyperlinks (``<a href="https://...">``) are fine.  An empty list
    means the page is OK.
    """
    checker = _OfflineChecker()
    checker.feed(html)
    checker.close()
    return checker.violations


# ---------------------------------------------------------------------------
# exporter
# ---------------------------------------------------------------------------


def _exporter_settings(**overrides: Any) -> tuple[Any, dict[str, Any]]:
    """The traitlets ``Config`` and keyword options of the report exporter (``overrides`` replace options)."""
    from traitlets.config import Config

    config = Config()
    config.NbConvertBase.display_data_priority = list(DISPLAY_DATA_PRIORITY)
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = set(REMOVE_CELL_TAGS)
    config.TagRemovePreprocessor.remove_all_outputs_tags = set(REMOVE_OUTPUT_TAGS)
    options: dict[str, Any] = {
        "extra_template_basedirs": [str(TEMPLATE_DIR)],
        "template_name": TEMPLATE_NAME,
        "exclude_input": True,
        "exclude_input_prompt": True,
        "exclude_output_prompt": True,
        "embed_images": True,
        "sanitize_html": False,
        **overrides,
    }
    return config, options


def _new_exporter(**overrides: Any) -> Any:
    """nbconvert's :class:`HTMLExporter` with :func:`_exporter_settings` and the report's filters."""
    from nbconvert import HTMLExporter

    config, options = _exporter_settings(**overrides)
    exporter = HTMLExporter(config=config, **options)
    exporter.register_filter("wrap_tables", wrap_tables)
    # nbconvert validates the notebook after each of its 12 preprocessors, 8 of them disabled (they
    # return it unchanged): after the enabled ones is the same check, a third of the work.
    if isinstance(getattr(exporter, "_preprocessors", None), list):
        exporter._preprocessors = [p for p in exporter._preprocessors if getattr(p, "enabled", True)]
    return exporter


def _get_exporter() -> Any:
    """Return the module's single, lazily created report exporter (:func:`_new_exporter`)."""
    global _exporter
    if _exporter is None:
        _exporter = _new_exporter()
    return _exporter


def _load_notebook(nb: NotebookNode | str | os.PathLike[str]) -> tuple[NotebookNode, Path | None]:
    if isinstance(nb, NotebookNode):
        return nb, None
    if isinstance(nb, (str, os.PathLike)):
        path = Path(nb)
        with path.open(encoding="utf-8") as fh:
            return nbformat.read(fh, as_version=4), path.resolve().parent
    raise TypeError(f"nb must be a NotebookNode or a path to an .ipynb file, not {type(nb).__name__}")


def _without_stderr(nb: NotebookNode, *, in_place: bool = False) -> NotebookNode:
    """``nb`` without ``stderr`` stream outputs: a copy (``nb`` is untouched) unless ``in_place``."""
    if not in_place:
        nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.get("cell_type") == "code" and cell.get("outputs"):
            cell.outputs = [
                o for o in cell.outputs if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]
    return nb


def notebook_to_html(
    nb: NotebookNode | str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    title: str,
    lang: str = "ja",
    banner_ja: str | None = None,
    resources_dir: str | os.PathLike[str] | None = None,
    include_stderr: bool = False,
    index_href: str | None = None,
    nav_links: list[tuple[str, str]] | tuple = (),
) -> Path:
    """Render an executed notebook to a self-contained HTML report.

    Parameters
    ----------
    nb:
        An executed notebook (:class:`nbformat.NotebookNode`) or the path of
        an executed ``.ipynb`` file.  It is not modified.
    out_path:
        Where to write the HTML (parent directories are created).  Written
        atomically (temporary file in the same directory + :func:`os.replace`).
    title:
        Text of ``<title>`` (HTML-escaped).
    lang:
        Value of ``<html lang>`` (a BCP 47 tag such as ``"ja"``).
    banner_ja:
        If given, shown as a prominent banner at the top of the page
        (HTML-escaped), e.g. the 架空データ notice.
    resources_dir:
        Directory against which relative image paths in markdown cells
        (``![](figures/a.png)``) are resolved before being embedded.
        Defaults to the notebook's directory when ``nb`` is a path, else to
        the directory of ``out_path``.
    include_stderr:
        Keep ``stderr`` stream outputs (warnings, log messages).  They are
        dropped by default: Python warnings quote source lines and temporary
        paths, which do not belong in a published report (and would make the
        HTML differ between runs).  Error outputs are always kept.
    index_href:
        Relative URL of the site's index page (e.g. ``"../index.html"``); when
        given, the page starts with a 「レポート一覧に戻る」 link to it.
    nav_links:
        More ``(relative URL, Japanese label)`` links for that navigation line,
        e.g. ``[("summary.html", "1枚の要約")]``.

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    OfflineHTMLError
        If the rendered page would run script or fetch anything (see
        :func:`find_offline_violations`); nothing is written then.
    """
    if not isinstance(title, str):
        raise TypeError("title must be a str")
    if not _LANG_RE.match(lang or ""):
        raise ValueError(f"invalid language tag: {lang!r}")
    if banner_ja is not None and not isinstance(banner_ja, str):
        raise TypeError("banner_ja must be a str or None")

    out_path = Path(out_path)
    notebook, nb_dir = _load_notebook(nb)
    if not include_stderr:
        notebook = _without_stderr(notebook, in_place=nb_dir is not None)  # read from a file here: ours
    if resources_dir is not None:
        base_dir = Path(resources_dir).resolve()
    elif nb_dir is not None:
        base_dir = nb_dir
    else:
        base_dir = out_path.resolve().parent

    resources = {
        "metadata": {"name": title, "path": str(base_dir)},
        "report_title": title,
        "report_lang": lang,
        "banner_ja": banner_ja or "",
        "index_href": index_href or "",
        "nav_links": [(str(href), str(label)) for href, label in nav_links],
        "print_css": print_page_css(title, synthetic=bool(banner_ja)),
        "image_alt_default": DEFAULT_IMAGE_ALT,
    }
    with _exporter_lock:
        body, _ = _get_exporter().from_notebook_node(notebook, resources=resources)

    violations = find_offline_violations(body)
    if violations:
        raise OfflineHTMLError(violations)
    if not body.endswith("\n"):
        body += "\n"
    return write_text_atomic(out_path, body)
