"""Build the static index page of a dataset's published reports.

Layout read by :func:`build_index`::

    reports/<dataset>/FY2021/ … FY2025/   report.html, tables.xlsx, tables/*.csv,
                                          figures/*.png, manifest.json; optional report.pdf
                                          and the one-page summary summary.html/.pdf/.png
    reports/<dataset>/trends/             report.html, tables.xlsx, tables/*.csv,
                                          figures/*.png, manifest.json; optional report.pdf
    reports/<dataset>/quality/FY<yyyy>/   (optional) report.html, manifest.json, report.pdf

The PDFs and the summaries are linked when present (analysis.pdf writes them after a run).
On a phone the years table becomes one card per year, so every link is on screen; printed, the
page margins carry the title, page X / Y and, for synthetic data, the 架空データ note.

The page (``reports/<dataset>/index.html``) is Japanese, self-contained
(inline CSS, no scripts, no external resources), uses only relative links so
it works from ``file://``, HTML-escapes everything that comes from the dataset
description or the manifests (jinja2 autoescape), and is deterministic: its
"generated" date is the newest manifest ``finished`` time, never the clock,
so rebuilding from the same manifests gives byte-identical output.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from html import escape as html_escape
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import jinja2

from analysis.htmlexport import (
    FICTIONAL_DATA_BANNER_JA,
    TEMPLATE_DIR,
    find_offline_violations,
    print_page_css,
    wrap_tables,
    write_text_atomic,
)
from analysis.wareki import wareki_fy  # re-exported for the templates and tests

__all__ = ["INDEX_TITLE_JA", "build_index", "wareki_fy"]

#: Main title of the index page; the dataset's label_ja is appended.
INDEX_TITLE_JA = "包括的な支援体制の整備に関する市町支援の評価"

_FY_DIR_RE = re.compile(r"^FY(\d{4})$")
#: The one-page summary of a fiscal year (analysis.summary_page, analysis.pdf) and its labels.
_SUMMARY_FILES = (("summary.html", "1枚の要約"), ("summary.pdf", "PDF"), ("summary.png", "PNG画像"))
_JST = timezone(timedelta(hours=9), "JST")
_HASH_SHORT = 12


# ---------------------------------------------------------------------------
# reading the reports tree
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Link:
    href: str
    label: str


@dataclass
class _Manifest:
    """Result of reading one manifest.json."""

    path: Path
    data: dict[str, Any] | None  # None: missing or unreadable
    error: str | None = None  # why it could not be used (Japanese)

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    @property
    def ok(self) -> bool:
        return self.data is not None and self.error is None and self.data.get("status") == "ok"


_EntryState = Literal["ok", "failed", "missing"]


@dataclass
class _Entry:
    """One report directory (a fiscal year, the trends or a quality report)."""

    state: _EntryState
    note: str = ""  # shown instead of links when not ok
    detail: str = ""
    report: _Link | None = None
    pdf: _Link | None = None  # report.pdf (written by analysis.pdf when chromium is present)
    summary_page: list[_Link] = field(default_factory=list)  # 1枚の要約: HTML, PDF, PNG
    excel: _Link | None = None
    csvs: list[_Link] = field(default_factory=list)
    summary: dict[str, str] = field(default_factory=dict)
    stale: str = ""  # the latest run failed and an older report is shown: this notice
    reason: str = ""  # one-line reason of that failure


@dataclass
class _YearRow:
    year: int
    fy_label: str
    wareki: str
    main: _Entry
    quality: _Entry | None


def _href(reports_dir: Path, target: Path) -> str:
    """Relative URL (percent-encoded per segment) from the index to target."""
    rel = target.relative_to(reports_dir)
    return "/".join(quote(part, safe="") for part in rel.parts)


def _read_manifest(path: Path, *, dataset_name: str | None, fiscal_year: int | None) -> _Manifest:
    if not path.is_file():
        return _Manifest(path, None, None)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return _Manifest(path, None, "manifest.json を読み込めません")
    if not isinstance(data, dict):
        return _Manifest(path, None, "manifest.json の形式が不正です")
    if dataset_name is not None and "dataset" in data and data["dataset"] != dataset_name:
        return _Manifest(path, data, "manifest.json のデータセット名が一致しません")
    if fiscal_year is not None and "fiscal_year" in data and data["fiscal_year"] != fiscal_year:
        return _Manifest(path, data, "manifest.json の年度がディレクトリ名と一致しません")
    return _Manifest(path, data, None)


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _format_summary(summary: Any) -> dict[str, str]:
    """Display strings for the three summary columns ("—" when unknown)."""
    if not isinstance(summary, dict):
        summary = {}

    def show(key: str) -> str:
        value = summary.get(key)
        if value is None:
            return "—"
        n = _count(value)
        return f"{n:,}" if n is not None else str(value)

    out = {"n_municipalities": show("n_municipalities")}
    total = _count(summary.get("n_municipalities"))
    for key in ("n_jusou", "n_full"):
        n = _count(summary.get(key))
        if n is not None and total:
            out[key] = f"{n:,}（{100.0 * n / total:.1f}%）"
        else:
            out[key] = show(key)
    return out


def _failure_record(reports_dir: Path, directory: Path) -> dict[str, Any] | None:
    """The runner's .failed/<name>.json for this report (it exists while the latest run failed)."""
    try:
        name = "_".join(directory.relative_to(reports_dir).parts)
    except ValueError:
        return None
    path = reports_dir / ".failed" / f"{name}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {"reason_ja": "失敗の記録を読み込めません"}
    return data if isinstance(data, dict) else {"reason_ja": "失敗の記録の形式が不正です"}


def _reason_text(record: dict[str, Any], project: Path | None = None) -> str:
    """The failure's reason for the page: one line, at most 400 characters, with the paths inside
    `project` made relative to it (a published page does not show the analyst's folders)."""
    text = " ".join(str(record.get("reason_ja") or "").split())
    en = " ".join(str(record.get("reason_en") or "").split())
    if en and en not in text:
        text = f"{text} / {en}" if text else en
    if project is not None:
        text = text.replace(f"{project}/", "")
    return text[:400] + ("…" if len(text) > 400 else "")


def _when_ja(value: Any) -> str:
    t = _parse_time(value)
    return t.astimezone(_JST).strftime("%Y年%m月%d日 %H:%M") if t else "日時不明"


def _entry(reports_dir: Path, directory: Path, manifest: _Manifest, *, with_tables: bool) -> _Entry:
    entry = _entry_from_manifest(reports_dir, directory, manifest, with_tables=with_tables)
    record = _failure_record(reports_dir, directory)
    if record is not None:
        reason = _reason_text(record, reports_dir.resolve().parent.parent)
        if entry.state == "ok":
            assert manifest.data is not None
            entry.stale = (
                f"最新の実行で失敗：前回（{_when_ja(manifest.data.get('finished'))}）のレポートを表示しています"
            )
            entry.reason = reason
            return entry
        return _Entry("failed", "失敗", f"最新の実行で失敗しました：{reason}" if reason else "最新の実行で失敗しました")
    if entry.state == "missing":
        # analysis.runner keeps the previous report on failure and leaves a
        # log in reports/<dataset>/.failed/<name>.log; with no report to show,
        # that log means the year failed rather than was never built.
        log = reports_dir / ".failed" / f"{directory.name}.log"
        if directory.parent == reports_dir and log.is_file():
            return _Entry("failed", "失敗", f"作成に失敗しました（ログ: .failed/{log.name}）")
    return entry


def _entry_from_manifest(reports_dir: Path, directory: Path, manifest: _Manifest, *, with_tables: bool) -> _Entry:
    if not directory.is_dir():
        return _Entry("missing", "未作成")
    if not manifest.exists:
        return _Entry("missing", "未作成", "manifest.json がありません")
    if manifest.error is not None:
        return _Entry("failed", "失敗", manifest.error)
    assert manifest.data is not None
    status = manifest.data.get("status")
    if status != "ok":
        return _Entry("failed", "失敗", f"status: {status}")
    report = directory / "report.html"
    if not report.is_file():
        return _Entry("missing", "未作成", "report.html がありません")
    entry = _Entry("ok", report=_Link(_href(reports_dir, report), "レポート"))
    entry.summary = _format_summary(manifest.data.get("summary"))
    if (directory / "report.pdf").is_file():
        entry.pdf = _Link(_href(reports_dir, directory / "report.pdf"), "PDF")
    entry.summary_page = [
        _Link(_href(reports_dir, directory / name), label)
        for name, label in _SUMMARY_FILES
        if (directory / name).is_file()
    ]
    if with_tables:
        xlsx = directory / "tables.xlsx"
        if xlsx.is_file():
            entry.excel = _Link(_href(reports_dir, xlsx), "Excel")
        tables = directory / "tables"
        if tables.is_dir():
            entry.csvs = [
                _Link(_href(reports_dir, p), p.name)
                for p in sorted(tables.glob("*.csv"), key=lambda p: p.name)
                if p.is_file()
            ]
    return entry


def _fy_dirs(parent: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    if parent.is_dir():
        for child in parent.iterdir():
            m = _FY_DIR_RE.match(child.name)
            if m and child.is_dir():
                out[int(m.group(1))] = child
    return out


# ---------------------------------------------------------------------------
# provenance
# ---------------------------------------------------------------------------


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t


def _short_hash(value: Any) -> str:
    s = str(value)
    return s[:_HASH_SHORT] if re.fullmatch(r"[0-9a-fA-F]{13,}", s) else s


def _provenance(manifests: list[_Manifest]) -> dict[str, Any]:
    readable = [m.data for m in manifests if m.data is not None]
    used = [m.data for m in manifests if m.data is not None and m.ok] or readable

    times = [t for t in (_parse_time(d.get("finished")) for d in readable) if t is not None]
    newest = max(times) if times else None

    commits = sorted({str(d["git_commit"]) for d in used if d.get("git_commit")})
    code_hashes = sorted({_short_hash(d["code_hash"]) for d in used if d.get("code_hash")})

    inputs: dict[str, set[str]] = {}
    for d in used:
        if isinstance(d.get("inputs"), dict):
            for path, digest in d["inputs"].items():
                inputs.setdefault(str(path), set()).add(_short_hash(digest))
    input_rows = [(path, sorted(digests)) for path, digests in sorted(inputs.items())]

    return {
        "generated_iso": newest.astimezone(UTC).isoformat() if newest else None,
        "generated_ja": (newest.astimezone(_JST).strftime("%Y年%m月%d日 %H:%M（日本時間）") if newest else None),
        "commits": commits,
        "code_hashes": code_hashes,
        "inputs": input_rows,
    }


# ---------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR / "site")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _paragraphs(text: Any) -> list[str]:
    if not text:
        return []
    return [p.strip() for p in re.split(r"\n\s*\n", str(text)) if p.strip()]


def build_index(reports_dir: Path, dataset: dict) -> Path:
    """Write ``reports_dir/index.html`` (atomically) and return its path.

    ``reports_dir`` is ``reports/<dataset>/``; ``dataset`` is the dataset
    description, e.g. ``{"name": "sample", "label_ja": "架空県（サンプル）",
    "label_en": "Fictional prefecture (sample)", "synthetic": True,
    "description_ja": "..."}``.  An optional ``"fiscal_years"`` list names
    years that should appear even when their directory is absent (shown as
    未作成) and an optional ``"banner_ja"`` replaces the default 架空データ
    banner text (shown only when ``"synthetic"`` is true).

    Fiscal years whose manifest is missing, unreadable, for another
    dataset/year, or whose status is not ``"ok"`` are listed with a
    「未作成」/「失敗」 note and no links; a year with no report but a
    ``.failed/FY<yyyy>.log`` (left by :mod:`analysis.runner`) is 「失敗」.
    A report with a failure record ``.failed/<name>.json`` (the runner keeps
    it while the latest run of that report failed; ``<name>`` is e.g.
    ``FY2025``, ``trends`` or ``quality_FY2025``) keeps its links and says
    「最新の実行で失敗：前回（日時）のレポートを表示しています」 with the reason.
    Directories other than ``FY<yyyy>``, ``trends`` and ``quality`` (e.g.
    ``.staging``, ``.failed``) are ignored.
    """
    reports_dir = Path(reports_dir)
    if not reports_dir.is_dir():
        raise FileNotFoundError(f"reports directory not found: {reports_dir}")
    name = dataset.get("name")
    dataset_name = str(name) if name is not None else None

    year_dirs = _fy_dirs(reports_dir)
    quality_dirs = _fy_dirs(reports_dir / "quality")
    years = set(year_dirs) | set(quality_dirs)
    failed_dir = reports_dir / ".failed"
    if failed_dir.is_dir():
        for log in [*failed_dir.glob("FY*.log"), *failed_dir.glob("FY*.json")]:
            m = _FY_DIR_RE.match(log.stem)
            if m:
                years.add(int(m.group(1)))
    for y in dataset.get("fiscal_years") or ():
        if _count(y) is not None:
            years.add(int(y))

    manifests: list[_Manifest] = []
    rows: list[_YearRow] = []
    for year in sorted(years, reverse=True):
        directory = reports_dir / f"FY{year}"
        manifest = _read_manifest(directory / "manifest.json", dataset_name=dataset_name, fiscal_year=year)
        manifests.append(manifest)
        quality = None
        if year in quality_dirs:
            qdir = quality_dirs[year]
            qman = _read_manifest(qdir / "manifest.json", dataset_name=dataset_name, fiscal_year=year)
            manifests.append(qman)
            quality = _entry(reports_dir, qdir, qman, with_tables=False)
            if quality.state == "missing" and (qdir / "report.html").is_file() and not qman.exists:
                # a quality report without a manifest is still worth linking
                quality = _Entry("ok", report=_Link(_href(reports_dir, qdir / "report.html"), "データ品質"))
            elif quality.report is not None:
                quality.report = _Link(quality.report.href, "データ品質")
        rows.append(
            _YearRow(
                year=year,
                fy_label=f"FY{year}",
                wareki=wareki_fy(year),
                main=_entry(reports_dir, directory, manifest, with_tables=True),
                quality=quality,
            )
        )

    trends_dir = reports_dir / "trends"
    trends_manifest = _read_manifest(trends_dir / "manifest.json", dataset_name=dataset_name, fiscal_year=None)
    manifests.append(trends_manifest)
    trends = _entry(reports_dir, trends_dir, trends_manifest, with_tables=True)
    if trends.report is not None:
        trends.report = _Link(trends.report.href, "年度横断の推移")

    # reports shown without their PDF (run --no-pdf, or printing failed): the page says so, and how to print
    shown = [r.main for r in rows] + [r.quality for r in rows if r.quality is not None] + [trends]
    unprinted = sum(1 for e in shown if e.state == "ok" and e.report is not None and e.pdf is None)

    label_ja = str(dataset.get("label_ja") or dataset_name or "")
    context = {
        "unprinted": unprinted,
        "title": f"{INDEX_TITLE_JA} — {label_ja}" if label_ja else INDEX_TITLE_JA,
        "heading": INDEX_TITLE_JA,
        "label_ja": label_ja,
        "label_en": str(dataset.get("label_en") or ""),
        "dataset_name": dataset_name or "",
        "synthetic": bool(dataset.get("synthetic")),
        "banner": str(dataset.get("banner_ja") or FICTIONAL_DATA_BANNER_JA),
        "description": _paragraphs(dataset.get("description_ja")),
        "rows": rows,
        "has_quality": bool(quality_dirs),
        "trends": trends,
        "provenance": _provenance(manifests),
        "assumptions": (reports_dir / "assumptions.html").is_file(),
        "profiles": (reports_dir / "profiles" / "index.html").is_file(),
        "has_summary_pages": any(r.main.summary_page for r in rows),
        "print_css": print_page_css(
            f"{INDEX_TITLE_JA} — {label_ja}" if label_ja else INDEX_TITLE_JA, synthetic=bool(dataset.get("synthetic"))
        ),
    }
    html = _environment().get_template("index.html.j2").render(context)
    violations = find_offline_violations(html)
    if violations:  # pragma: no cover - guards future template edits
        raise ValueError("index.html is not self-contained: " + "; ".join(violations))
    return write_text_atomic(reports_dir / "index.html", html)


def _caption_from_headers(m: re.Match) -> str:
    """<table> of the assumptions log with a caption that names its own columns (never a stale list)."""
    heads = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th\b[^>]*>(.*?)</th>", m.group(1), re.S)]
    caption = "前提の一覧（" + "・".join(h for h in heads if h) + "）" if heads else "前提の一覧"
    return f"<table><caption>{caption}</caption>{m.group(1)}</table>"


def write_assumptions(markdown_path: Path, reports_dir: Path, banner_ja: str | None = None) -> Path | None:
    """Render the assumptions log (docs/assumptions.md) to reports_dir/assumptions.html.

    Reports link to it as ../assumptions.html, so the published site explains its own premises.
    mistune (nbconvert's Markdown renderer) escapes raw HTML in the log.
    """
    import mistune

    if not markdown_path.is_file():
        return None
    md = mistune.create_markdown(escape=True, plugins=["table"])
    body = md(markdown_path.read_text(encoding="utf-8"))
    assert isinstance(body, str)  # the HTML renderer gives text (mistune's type also allows an AST renderer's list)
    body = re.sub(r"<table>(.*?)</table>", _caption_from_headers, body, flags=re.S)
    banner = f'<div class="banner" role="note"><strong>{html_escape(banner_ja)}</strong></div>\n' if banner_ja else ""
    css = (TEMPLATE_DIR / "site" / "site.css").read_text(encoding="utf-8")
    css += print_page_css("前提の記録（分析の前提）", synthetic=bool(banner_ja))
    html = (
        '<!DOCTYPE html>\n<html lang="ja">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>前提の記録（assumptions log）</title>\n"
        f"<style>\n{css}\n.table-wrap{{overflow-x:auto}}</style>\n</head>\n<body>\n<main>\n"
        '<p><a href="index.html">レポート一覧に戻る</a></p>\n'
        f"{banner}{wrap_tables(body)}\n</main>\n</body>\n</html>\n"
    )
    violations = find_offline_violations(html)
    if violations:  # pragma: no cover
        raise ValueError("assumptions.html is not self-contained: " + "; ".join(violations))
    return write_text_atomic(reports_dir / "assumptions.html", html)
