"""What the notebooks call: one object per report, an ordered sequence of frozen sections.

Notebooks stay thin: they set parameters, call `fiscal_year_report(...)` or `trends_report(...)`,
show sections with Japanese narrative around them (a cell ``rep["status"]`` shows the section:
its words, table and figure in the section's layout), and call `.save(output_dir)` when the
runner gives them an output folder. A `Section` holds a key, a Japanese title, a numeric table
(formatted only when shown), an optional `Figure` with alt text, and narrative or sentences;
`Report.save` writes every section's table (CSV, one XLSX sheet) and figure in one loop, in
order. All computation is here (and in tables/plots/models), under test.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from html import escape as html_escape
from pathlib import Path
from typing import Any

import pandas as pd

from . import association, plots, quality, tables, targets
from .codebook import Codebook, load_codebook
from .datasets import Dataset, load_dataset
from .display import display_frame
from .errors import AnalysisError
from .export import write_bytes, write_csv, write_text, write_xlsx
from .panel import build_panel, cross_section
from .paths import data_dir
from .wareki import wareki_fy

#: Japanese sheet names of tables.xlsx (with the table's number; at most 31 characters).
SHEET_NAMES_JA = {
    "status": "実施状況",
    "progress": "数値目標の達成状況",
    "main_items": "主要項目の実施状況",
    "support": "支援施策の活用状況",
    "challenges": "課題認識",
    "support_by_full": "支援施策と全項目実施",
    "association": "支援施策と全項目実施の関連",
    "municipality_items": "市町別の実施状況",
    "items_distribution": "主要項目数の分布",
    "by_prefecture": "都道府県別",
    "trend": "年度別の推移",
    "transitions": "重層の実施状況の推移",
    "hazard": "前年度の支援と到達の関連",
    "response": "回答状況",
    "missing_by_question": "設問ごとの無回答",
    "issues": "読み込み時の問題",
}
LARGE_N = 80  # above this, reports show distributions and by-prefecture summaries, not one row per municipality


def banner_html(text: str) -> str:
    import html

    return (
        '<div style="border:3px solid #D55E00;background:#FFF4E5;color:#000;padding:0.6em 1em;'
        f'font-weight:bold;font-size:1.1em" role="note">{html.escape(text)}</div>'
    )


def table_html(frame: pd.DataFrame, caption: str, links: dict[str, list[str]] | None = None) -> str:
    """DataFrame -> escaped <table> with caption, <th scope="col">, numbers right-aligned.

    Numbers are formatted here, at display (analysis.display): the frame itself stays numeric,
    interval bounds become one 「下限〜上限」 column. Written by hand rather than with
    DataFrame.to_html so that Japanese text reads left-aligned while numbers align right, with
    deterministic markup.
    """
    import html

    shown, numeric = display_frame(frame)
    num = ' class="num"'
    head = "".join(
        f'<th scope="col"{num if n else ""}>{html.escape(str(c))}</th>'
        for c, n in zip(shown.columns, numeric, strict=False)
    )
    links = links or {}
    rows = []
    for i, rec in enumerate(shown.itertuples(index=False)):
        cells = []
        for col, v, n in zip(shown.columns, rec, numeric, strict=False):
            text = html.escape(v)
            if col in links:  # e.g. a municipality's name links to its profile
                text = f'<a href="{html.escape(links[col][i])}">{text}</a>'
            cells.append(f"<td{num if n else ''}>{text}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<div class="table-wrap" style="overflow-x:auto"><table class="report-table">'
        f"<caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


_PART_NAMES = ("text", "sentences", "see_also", "table", "figure")


class SectionNotFound(AnalysisError, KeyError):
    """A report has no section of that key (a KeyError too, so `key in rep` style code keeps working)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self._text()


@dataclass(frozen=True, eq=False)
class Figure:
    """A section's figure: figures/<name>.png, its Japanese alt text, and PNG bytes or a spec drawing it.

    A spec (a function returning a matplotlib figure) is drawn once, on first use, so the notebook
    and figures/<name>.png carry the same bytes.
    """

    name: str
    alt: str
    spec: Callable[[], Any] | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        if (self.spec is None) == (self.data is None):
            raise AnalysisError(
                f"図「{self.name}」には PNG データか描画関数のどちらか一方を指定してください",
                f"figure {self.name!r} needs exactly one of PNG bytes or a spec",
                where="analysis.report.Figure",
            )

    @cached_property
    def png(self) -> bytes:
        """The figure as PNG (150 dpi, no software stamp, so the bytes are deterministic)."""
        if self.data is not None:
            return self.data
        import io

        assert self.spec is not None
        fig = self.spec()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=150, bbox_inches="tight", metadata={"Software": None})
        plots.close(fig)
        return buf.getvalue()

    def html(self) -> str:
        data = base64.b64encode(self.png).decode("ascii")
        return f'<img src="data:image/png;base64,{data}" alt="{html_escape(self.alt)}">'


@dataclass(frozen=True, eq=False)
class Section:
    """One part of a report: a key, its Japanese title, a numeric table and/or figure and/or words.

    `layout` is the order in which the parts are shown: "text" (narrative paragraphs separated by
    blank lines), "sentences" (results in words, a list), "see_also" (a link to a related
    report), "table" (or `empty_text` when the table has no rows) and "figure". Parts without
    content are skipped, except a "text" named in an explicit layout, which keeps its (empty)
    place as the notebooks always had it; the default layout is that order, text only when given. In a notebook, ``rep["status"]`` as a cell's last line
    shows the section; `_repr_mimebundle_` gives the same content as one HTML + plain-text bundle.
    """

    key: str
    title: str
    table: pd.DataFrame | None = None
    figure: Figure | None = None
    text: str = ""
    sentences: tuple[str, ...] = ()
    layout: tuple[str, ...] | None = None
    links: Mapping[str, list[str]] | None = None  # column -> one href per row (e.g. municipality profiles)
    see_also: str = ""  # href of the related report (the data-quality report)
    empty_text: str = ""  # shown instead of a table without rows

    def __post_init__(self) -> None:
        object.__setattr__(self, "sentences", tuple(self.sentences))
        if self.layout is None:
            default = _PART_NAMES if self.text else _PART_NAMES[1:]
            object.__setattr__(self, "layout", default)
        unknown = [p for p in self.order if p not in _PART_NAMES]
        if unknown:
            raise AnalysisError(
                f"節「{self.key}」の表示順に不明な要素があります: {unknown}",
                f"section {self.key!r}: unknown layout parts {unknown}; use {list(_PART_NAMES)}",
                where="analysis.report.Section",
            )

    @property
    def order(self) -> tuple[str, ...]:
        """The layout actually used (the default one when none was given)."""
        return self.layout or ()

    def table_html(self) -> str:
        """The table as escaped HTML with its title as <caption> (deterministic markup)."""
        if self.table is None:
            raise SectionNotFound(
                f"節「{self.key}」には表がありません", f"section {self.key!r} has no table", where="analysis.report"
            )
        return table_html(self.table, self.title, dict(self.links) if self.links else None)

    def parts(self) -> list[tuple[str, str]]:
        """The shown parts in order, as (kind, HTML); kind "figure" for the figure, else "html"."""
        out: list[tuple[str, str]] = []
        for part in self.order:
            if part == "text":
                out.append(("html", narrative_html(self.text)))
            elif part == "sentences" and self.sentences:
                items = "".join(f"<li>{html_escape(t)}</li>" for t in self.sentences)
                out.append(("html", f'<ul class="results-in-words">{items}</ul>'))
            elif part == "see_also" and self.see_also:
                out.append(
                    (
                        "html",
                        f'<p class="narrative">詳しくは<a href="{html_escape(self.see_also)}">'
                        "データ品質レポート</a>を参照してください。</p>",
                    )
                )
            elif part == "table" and self.table is not None:
                empty = self.table.empty and self.empty_text
                out.append(("html", narrative_html(self.empty_text) if empty else self.table_html()))
            elif part == "figure" and self.figure is not None:
                out.append(("figure", self.figure.html()))
        return out

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """The whole section as one bundle: HTML (figures embedded) and plain text (for consoles, nbval)."""
        html = "".join(h for _, h in self.parts())
        lines = [f"[{self.key}] {self.title}"]
        for part in self.order:
            if part == "text" and self.text:
                lines.append(self.text)
            elif part == "sentences":
                lines += [f"・{t}" for t in self.sentences]
            elif part == "table" and self.table is not None:
                lines.append(self.empty_text if self.table.empty and self.empty_text else self.table.to_string())
            elif part == "figure" and self.figure is not None:
                lines.append(f"[図] {self.figure.alt}")
        return {
            "text/html": f'<section class="report-section" data-key="{html_escape(self.key)}">{html}</section>',
            "text/plain": "\n".join(lines),
        }

    def _ipython_display_(self) -> None:
        """Shown by IPython one output per part, the outputs the HTML export has always received.

        (One bundle per part rather than `_repr_mimebundle_`'s single bundle keeps report.html,
        built from these outputs, byte-identical to what `Report.show_*` produced.)
        """
        from IPython.display import HTML, display

        for kind, html in self.parts():
            if kind == "figure":
                assert self.figure is not None
                show_figure(self.figure)
            else:
                display(HTML(html))


def narrative_html(text: str) -> str:
    """Reader-facing Japanese text (escaped) as paragraphs, split at blank lines."""
    paras = "".join(f"<p>{html_escape(p)}</p>" for p in text.split("\n\n") if p.strip())
    return f'<div class="narrative">{paras}</div>'


def show_figure(figure: Figure) -> None:
    """Display a figure as PNG with Japanese alt text (the same bytes as figures/<name>.png).

    Displayed explicitly rather than through the inline backend, so that the text part that
    nbval compares is the alt text, identical in every kernel.
    """
    from IPython.display import display

    data = base64.b64encode(figure.png).decode("ascii")
    display(
        {"image/png": data, "text/plain": f"[図] {figure.alt}"}, raw=True, metadata={"image/png": {"alt": figure.alt}}
    )


@dataclass
class Report:
    """An ordered sequence of sections, and a summary for the manifest.

    ``rep["status"]`` is a section, ``for s in rep`` goes through them in order, ``"status" in rep``
    asks for one; `save` writes every table and figure in that order. `tables`, `titles`,
    `figures` and the text properties are read-only views of the sections for older callers.
    """

    dataset: Dataset
    title: str
    sections: list[Section] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    covariates_ja: str = ""
    hazard_size: dict = field(default_factory=dict)
    analyses: dict = field(default_factory=dict, repr=False)
    period_ja: str = ""  # the fiscal year(s) the report covers, e.g. 令和7年度（FY2025）

    # -- the sequence ---------------------------------------------------------------------------

    def add(self, section: Section, *, first: bool = False) -> Section:
        """Append a section (or put it first); keys are unique."""
        if section.key in self:
            raise AnalysisError(
                f"節「{section.key}」は既にあります", f"duplicate section {section.key!r}", where="analysis.report"
            )
        self.sections.insert(0 if first else len(self.sections), section)
        return section

    def __getitem__(self, key: str) -> Section:
        for s in self.sections:
            if s.key == key:
                return s
        raise SectionNotFound(
            f"レポートに節「{key}」はありません（あるのは {', '.join(self.keys())}）",
            f"report has no section {key!r} (it has {', '.join(self.keys())})",
            where="analysis.report",
        )

    def __iter__(self) -> Iterator[Section]:
        return iter(tuple(self.sections))

    def __len__(self) -> int:
        return len(self.sections)

    def __contains__(self, key: object) -> bool:
        return any(s.key == key for s in self.sections)

    def keys(self) -> list[str]:
        return [s.key for s in self.sections]

    def get(self, key: str, default: Section | None = None) -> Section | None:
        """The section of that key, or `default` (a notebook cell ending in ``rep.get(key)`` shows it if present)."""
        return next((s for s in self.sections if s.key == key), default)

    # -- read-only views for callers of the former dict attributes --------------------------

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """{key: table} of the sections that have a table, in order."""
        return {s.key: s.table for s in self.sections if s.table is not None}

    @property
    def titles(self) -> dict[str, str]:
        return {s.key: s.title for s in self.sections if s.table is not None}

    @property
    def figures(self) -> dict[str, Callable[[], Any]]:
        """{figure name: function drawing it} (a figure given as bytes has no spec and is left out)."""
        return {s.figure.name: s.figure.spec for s in self.sections if s.figure is not None and s.figure.spec}

    @property
    def figure_alts(self) -> dict[str, str]:
        return {f.name: f.alt for f in self._figures()}

    def _text_of(self, key: str) -> str:
        s = self.get(key)
        return s.text if s is not None else ""

    @property
    def association_text(self) -> str:
        return self._text_of("association")

    @property
    def association_sentences(self) -> list[str]:
        s = self.get("association")
        return list(s.sentences) if s is not None else []

    @property
    def hazard_text(self) -> str:
        return self._text_of("hazard")

    @property
    def hazard_sentences(self) -> list[str]:
        s = self.get("hazard")
        return list(s.sentences) if s is not None else []

    @property
    def progress_text(self) -> str:
        return self._text_of("progress")

    @property
    def quality_text(self) -> str:
        return self._text_of("quality")

    @property
    def large(self) -> bool:
        """More municipalities than a readable per-municipality table holds (national data)."""
        return self.summary.get("n_municipalities", 0) > LARGE_N

    @property
    def banner(self) -> str | None:
        return self.dataset.banner_ja

    # -- notebook display --------------------------------------------------------------------

    def show_heading(self) -> None:
        """Which fiscal year(s) and which dataset the report is about, right under its title."""
        from IPython.display import HTML, display

        parts = [f"対象年度：{self.period_ja}"] if self.period_ja else []
        parts.append(f"データ：{self.dataset.label_ja}")
        display(HTML(f'<p class="report-period">{html_escape("　／　".join(parts))}</p>'))

    def show_banner(self) -> None:
        from IPython.display import HTML, display

        if self.banner:
            display(HTML(banner_html(self.banner)))

    def table_html(self, key: str) -> str:
        """The table as escaped HTML with a <caption> and header cells (deterministic markup)."""
        return self[key].table_html()

    def show(self, key: str) -> None:
        """Display only the table of a section (HTML with caption; no index column)."""
        from IPython.display import HTML, display

        display(HTML(self.table_html(key)))

    def _display(self, key: str) -> None:
        from IPython.display import display

        if key in self:
            display(self[key])

    def show_text(self, text: str) -> None:
        """Display reader-facing Japanese text (escaped) as paragraphs."""
        from IPython.display import HTML, display

        display(HTML(narrative_html(text)))

    def show_association(self) -> None:
        """The association section: results in words, the forest plot, the reading, the full table."""
        self._display("association")

    def show_progress(self) -> None:
        """The progress section: targets vs actual (sentence, table, chart), or how to add targets."""
        self._display("progress")

    def show_support(self) -> None:
        """The support section: table and chart, or why they cannot be shown (no previous-year survey)."""
        self._display("support")

    def show_hazard(self) -> None:
        """The hazard section: who is in the model, results in words and the table, or why it is empty."""
        self._display("hazard")

    def show_quality(self) -> None:
        """The data-quality sentence (and, in a quality report, its tables)."""
        for key in ("quality", "response", "missing_by_question", "issues"):
            self._display(key)

    def show_methods(self, plain: str, detail: list[str]) -> None:
        """Methods for a non-statistician in the body; the technical description folded away."""
        from IPython.display import HTML, display

        items = "".join(f"<li>{html_escape(t)}</li>" for t in detail)
        display(
            HTML(
                f'<div class="narrative"><p>{html_escape(plain)}</p></div>'
                f'<details class="methods"><summary>分析方法の詳細</summary><ul>{items}</ul>'
                '<p>分析の前提は<a href="../assumptions.html">「分析の前提」</a>にまとめています。</p></details>'
            )
        )

    def show_appendix(self) -> None:
        """A collapsible appendix for analysts: numeric results, separation, convergence, events, seeds."""
        if not self.analyses:
            return
        from IPython.display import HTML, display

        body = "".join(a._repr_html_() for a in self.analyses.values())
        display(
            HTML(
                '<details class="appendix"><summary>分析者向けの付録（数値の結果・分離・収束・乱数の種）</summary>'
                f'<div class="table-wrap" style="overflow-x:auto">{body}</div></details>'
            )
        )

    def show_detail(self) -> None:
        """Municipality-level detail: heat map + table, or (national scale) distributions."""
        keys = ["items_distribution", "by_prefecture"] if self.large else ["municipality_items"]
        figs = ["by_prefecture"] if self.large else ["items_heatmap"]
        for f in figs:
            self.figure(f)
        for k in keys:
            self.show(k)

    # -- figures ---------------------------------------------------------------------------------

    def _figures(self) -> list[Figure]:
        return [s.figure for s in self.sections if s.figure is not None]

    def _figure(self, name: str) -> Figure:
        for f in self._figures():
            if f.name == name:
                return f
        raise SectionNotFound(
            f"レポートに図「{name}」はありません", f"report has no figure {name!r}", where="analysis.report"
        )

    def figure_png(self, name: str) -> bytes:
        """The figure as PNG bytes (drawn once, then cached, so notebook and files agree)."""
        return self._figure(name).png

    def figure(self, name: str) -> None:
        """Display one figure (PNG with its Japanese alt text as the plain-text part)."""
        show_figure(self._figure(name))

    # -- files -----------------------------------------------------------------------------------

    def save(self, output_dir: str | Path) -> Path:
        """Write tables/NN_<key>.csv (UTF-8 BOM), tables.xlsx, figures/<name>.png and summary.json.

        One loop over the sections, in order: the n-th section with a table is table NN (file
        name and sheet name), its figure goes to figures/.
        """
        out = Path(output_dir)
        (out / "tables").mkdir(parents=True, exist_ok=True)
        (out / "figures").mkdir(parents=True, exist_ok=True)
        sheets: dict[str, pd.DataFrame] = {}
        sheet_titles: dict[str, str] = {}
        for s in self.sections:
            if s.table is not None:
                n = len(sheets) + 1
                write_csv(s.table, out / "tables" / f"{n:02d}_{s.key}.csv")
                sheet = f"{n:02d} {SHEET_NAMES_JA.get(s.key, s.key)}"
                sheets[sheet], sheet_titles[sheet] = s.table, s.title
            if s.figure is not None:
                write_bytes(out / "figures" / f"{s.figure.name}.png", s.figure.png)
        note = self.dataset.banner_ja
        write_xlsx(sheets, out / "tables.xlsx", titles=sheet_titles, note=note)
        write_text(out / "summary.json", json.dumps(self.summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
        return out


def _context(dataset: str, book: Codebook | None):
    plots.setup()
    return load_dataset(dataset), book or load_codebook()


def fiscal_year_report(
    dataset: str,
    fiscal_year: int,
    exposure_lag: int = 0,
    book: Codebook | None = None,
    covariates: list[str] | None = None,
) -> Report:
    """Tables and figures of one fiscal year (reads the dataset, then `build_fiscal_year_report`).

    Parameters
    ----------
    dataset : str
        Name of a dataset under data/raw/ (``"sample"`` is the bundled fictional prefecture).
    fiscal_year : int
        Fiscal year (the calendar year it starts in, e.g. 2025 for 令和7年度).
    exposure_lag : int, default 0
        Support measured in the same fiscal year (0) or in the previous one (1).
    book : Codebook, optional
        The codebook; by default data/codebook/survey.yaml.
    covariates : list of str, optional
        Covariates of the adjusted models; by default the codebook's ``analysis.covariates``.

    Returns
    -------
    Report
        Ordered sections (``rep["status"]``, ``list(rep)``); ``rep.save(folder)`` writes the files.

    Examples
    --------
    >>> rep = fiscal_year_report("sample", 2025)
    >>> rep.keys()[:4]
    ['quality', 'status', 'progress', 'main_items']
    >>> row = rep["status"].table.iloc[0]  # the fictional prefecture's 35 市町 all answered
    >>> row["区分"], int(row["市町数"])
    ('回答市町数', 35)
    """
    ds, book = _context(dataset, book)
    if fiscal_year not in ds.years:
        ds.survey_path(fiscal_year)  # raises the bilingual DatasetError
    years = ds.report_years(fiscal_year, exposure_lag)
    q = quality.check(ds, fiscal_year, book)
    panel = build_panel(ds, book, years, preread={fiscal_year: q.result} if q.result is not None else None)
    rep = build_fiscal_year_report(ds, panel, book, fiscal_year, exposure_lag, covariates=covariates)
    text = quality.summary_sentence(q, ds)
    vintage = panel.attrs.get("fiscal_strength_notes", {}).get(fiscal_year)
    if vintage:  # 財政力指数 taken from the bundled 総務省 workbooks: say which year's accounts
        text += "\n\n" + vintage
    label = f"{wareki_fy(fiscal_year)}（FY{fiscal_year}）"
    rep.add(
        Section(
            "quality",
            f"調査ファイルのデータ品質（{label}）",
            text=text,
            layout=("text", "see_also"),
            see_also=f"../quality/FY{fiscal_year}/report.html",
        ),
        first=True,
    )
    return rep


def _progress(
    rep: Report, ds: Dataset, panel: pd.DataFrame, book: Codebook, fiscal_year: int, *, chart: bool = False
) -> None:
    """Targets of the prefecture's plan vs actual counts (a table and a sentence, or how to add targets).

    With `chart`, and targets present, the section also has the chart of actuals, projection and targets.
    """
    goals = targets.parse_targets(ds.meta.get("targets"), where=f"data/raw/{ds.name}/dataset.yaml")
    thresholds = targets.rating_thresholds(book)
    counts = {int(y): tables.summary_counts(g) for y, g in panel.groupby("fiscal_year") if int(y) <= fiscal_year}
    table = targets.progress_table(goals, counts, fiscal_year, thresholds) if goals else pd.DataFrame()
    title = f"計画の数値目標の達成状況（{wareki_fy(fiscal_year)}（FY{fiscal_year}）時点）"
    figure = None
    if chart and goals:
        figure = Figure(
            "targets",
            "数値目標のある指標の実績（実線）、これまでの傾向を延ばした見通し（破線）と目標値（星印）の図。"
            f"数値は表「{title}」と同じです。",
            spec=lambda: plots.targets_chart(counts, goals),
        )
    rep.add(
        Section(
            "progress",
            title,
            table=None if table.empty else table,
            figure=figure,
            text=targets.progress_sentence_ja(table, fiscal_year, thresholds),
            layout=("text", "table", "figure"),
        )
    )


def build_fiscal_year_report(
    ds: Dataset,
    panel: pd.DataFrame,
    book: Codebook,
    fiscal_year: int,
    exposure_lag: int = 0,
    *,
    covariates: list[str] | None = None,
) -> Report:
    """The fiscal-year report from a panel already in memory (also used by the invariant tests).

    Every table that speaks of support uses the same exposure: support in the same fiscal year
    (`exposure_lag=0`) or in the previous one (`exposure_lag=1`), and its title says which.
    """
    year = cross_section(panel, fiscal_year, 0)
    exposed = cross_section(panel, fiscal_year, exposure_lag, book.support_measures)
    label = f"{wareki_fy(fiscal_year)}（FY{fiscal_year}）"
    prev_label = f"{wareki_fy(fiscal_year - 1)}（FY{fiscal_year - 1}）"
    timing = "同じ年度" if exposure_lag == 0 else "前年度"
    support_when = label if exposure_lag == 0 else f"前年度＝{prev_label}の活用"
    covariates = association.covariates_of(book, covariates)
    rep = Report(dataset=ds, title=f"{label} 包括的な支援体制の整備状況と県の市町支援", period_ja=label)
    rep.covariates_ja = association.covariate_labels(book, covariates)
    rep.summary = {
        "fiscal_year": fiscal_year,
        **tables.summary_counts(year),
        "exposure_lag": exposure_lag,
        "covariates": list(covariates),
    }
    rep.add(Section("status", f"県内市町の実施状況（{label}）", tables.status_table(year, book)))
    _progress(rep, ds, panel, book, fiscal_year)
    items_t = tables.main_items_table(year, book)
    items_title = f"指針の主要項目の実施状況（{label}）"
    rep.add(
        Section(
            "main_items",
            items_title,
            items_t,
            Figure(
                "main_items",
                f"指針の主要項目ごとの実施率の横棒グラフ（{label}）。数値は表「{items_title}」と同じです。",
                spec=lambda: plots.main_items_bar(items_t, wareki_fy(fiscal_year)),
            ),
        )
    )
    no_previous = exposure_lag == 1 and fiscal_year - 1 not in set(panel["fiscal_year"].astype(int))
    support_title = f"県の支援施策の活用状況（施策の視点別、{support_when}）"
    association_title = f"支援施策（{timing}の活用）と全項目実施の関連（{label}）"
    if no_previous:
        why = f"{prev_label}の調査がないため、前年度の支援の活用状況と、それと全項目実施との関連は示せません。"
        rep.add(Section("support", support_title, text=why, layout=("text",)))
    else:
        support_t = tables.support_table(exposed, book)
        rep.add(
            Section(
                "support",
                support_title,
                support_t,
                Figure(
                    "support",
                    f"県の支援施策ごとの活用率の横棒グラフ（{support_when}）。数値は表「{support_title}」と同じです。",
                    spec=lambda: plots.support_bar(support_t, support_when),
                ),
                layout=("table", "figure"),
            )
        )
    rep.add(Section("challenges", f"市町の課題認識（{label}）", tables.challenges_table(year, book)))
    if no_previous:
        rep.add(Section("association", association_title, text=why, layout=("sentences", "figure", "text", "table")))
    else:
        rep.add(
            Section(
                "support_by_full",
                f"支援施策（{timing}の活用）と指針の主要項目の全項目実施（{label}）",
                tables.measure_by_full_table(exposed, book),
            )
        )
        analysis = association.analyse_year(exposed, book, covariates, exposure_lag)
        rep.analyses["association"] = analysis
        assoc = analysis.table
        assoc_t = association.association_table_ja(assoc, book)
        forest_title = f"支援施策（{timing}の活用）と全項目実施：差と調整オッズ比（95%信頼区間、{label}）"
        rep.add(
            Section(
                "association",
                association_title,
                assoc_t,
                Figure(
                    "forest",
                    f"支援施策ごとの全項目実施率の差（ポイント）と調整オッズ比を、95%信頼区間とともに示した図"
                    f"（{label}）。数値は表「{association_title}」と同じです。",
                    spec=lambda: plots.forest(assoc_t, forest_title),
                ),
                text=association.association_narrative_ja(assoc, len(exposed), timing, rep.covariates_ja),
                sentences=tuple(association.measure_sentences_ja(assoc, timing)),
                layout=("sentences", "figure", "text", "table"),
            )
        )
    if rep.large:
        # national scale: no municipality-level table in the report; distributions and by prefecture
        rep.add(
            Section(
                "items_distribution",
                f"実施している主要項目の数の分布（{label}）",
                tables.items_count_distribution(year, book),
            )
        )
        pref_t = tables.by_prefecture_table(year)
        pref_title = f"都道府県別の実施状況（{label}）"
        rep.add(
            Section(
                "by_prefecture",
                pref_title,
                pref_t,
                Figure(
                    "by_prefecture",
                    f"都道府県別の重層実施割合と全項目実施割合の横棒グラフ（{label}）。"
                    f"数値は表「{pref_title}」と同じです。",
                    spec=lambda: plots.prefecture_bar(pref_t, wareki_fy(fiscal_year)),
                ),
                layout=("figure", "table"),
            )
        )
    else:
        from .profiles import profile_href

        muni_t = tables.municipality_items_table(year, book)
        muni_title = f"市町別の主要項目の実施状況（{label}）"
        rep.add(
            Section(
                "municipality_items",
                muni_title,
                muni_t,
                Figure(
                    "items_heatmap",
                    f"市町別・主要項目別の実施状況の図（{label}）。内容は表「{muni_title}」と同じです。",
                    spec=lambda: plots.items_heatmap(year, book, wareki_fy(fiscal_year)),
                ),
                layout=("figure", "table"),
                links={"市町村名": [f"../{profile_href(c, fiscal_year)}" for c in muni_t["市町村コード"]]},
            )
        )
    return rep


def quality_report(dataset: str, fiscal_year: int, book: Codebook | None = None) -> Report:
    """Data quality of one fiscal year's survey file (works even when the file has errors)."""
    ds, book = _context(dataset, book)
    ds.survey_path(fiscal_year)  # unknown year: the bilingual DatasetError
    label = f"{wareki_fy(fiscal_year)}（FY{fiscal_year}）"
    rep = Report(dataset=ds, title=f"{label} 調査ファイルのデータ品質", period_ja=label)
    q = quality.check(ds, fiscal_year, book)
    rep.add(Section("quality", rep.title, text=quality.summary_sentence(q, ds), layout=("text", "see_also")))
    rep.add(Section("response", f"回答状況（{label}）", quality.response_table(q, ds)))
    rep.add(Section("missing_by_question", f"設問ごとの無回答（{label}）", quality.missing_by_question(q, book)))
    rep.add(
        Section(
            "issues",
            f"読み込み時に見つかった問題・読み飛ばした行（{label}）",
            quality.issues_table(q),
            empty_text="読み込み時の問題・読み飛ばした行・無視した列はありませんでした。",
        )
    )
    rep.summary = {
        "fiscal_year": fiscal_year,
        "readable": q.readable,
        "n_errors": q.n_errors,
        "n_municipalities": len(q.result.tidy) if q.result is not None else 0,
    }
    return rep


def national_counts() -> pd.DataFrame:
    return pd.read_csv(data_dir() / "external" / "national_jusou_counts.csv", encoding="utf-8")


def trends_report(dataset: str, book: Codebook | None = None, covariates: list[str] | None = None) -> Report:
    """Tables and figures across all fiscal years of the dataset (reads it, then `build_trends_report`).

    Parameters
    ----------
    dataset : str
        Name of a dataset under data/raw/ (``"sample"`` is the bundled fictional prefecture).
    book : Codebook, optional
        The codebook; by default data/codebook/survey.yaml.
    covariates : list of str, optional
        Covariates of the hazard model; by default the codebook's ``analysis.covariates``.

    Returns
    -------
    Report
        Sections ``trend``, ``transitions``, ``hazard`` and ``progress``, in that order.

    Examples
    --------
    The hazard model's wild bootstrap makes the full report take a few seconds:

    >>> rep = trends_report("sample")
    >>> rep.keys()
    ['trend', 'transitions', 'hazard', 'progress']
    >>> len(rep["trend"].table), rep["trend"].table["年度"].iloc[-1]
    (5, 'FY2025（令和7年度）')
    """
    ds, book = _context(dataset, book)
    return build_trends_report(ds, build_panel(ds, book), book, covariates=covariates)


def build_trends_report(
    ds: Dataset,
    panel: pd.DataFrame,
    book: Codebook,
    *,
    n_boot: int = association.N_BOOT,
    covariates: list[str] | None = None,
) -> Report:
    """The trends report from a panel already in memory (also used by the invariant tests)."""
    years = sorted(int(y) for y in panel["fiscal_year"].unique())
    rep = Report(
        dataset=ds,
        title="年度横断の推移：包括的な支援体制の整備と重層的支援体制整備事業",
        period_ja=f"{wareki_fy(years[0])}〜{wareki_fy(years[-1])}（FY{years[0]}〜FY{years[-1]}）" if years else "",
    )
    trend = tables.trend_table(panel, national_counts())
    trend_title = "年度別の実施状況（県内と全国）"
    rep.add(
        Section(
            "trend",
            trend_title,
            trend,
            Figure(
                "share_trend",
                "重層的支援体制整備事業の実施割合（県内と全国）と全項目実施割合の年度別の折れ線グラフ。"
                f"数値は表「{trend_title}」と同じです。",
                spec=lambda: plots.share_trend(trend),
            ),
        )
    )
    rep.add(
        Section(
            "transitions",
            "重層的支援体制整備事業の実施状況の推移（前年度→翌年度）",
            tables.transition_table(panel, book),
        )
    )
    covariates = association.covariates_of(book, covariates)
    rep.covariates_ja = association.covariate_labels(book, covariates)
    n_years = int(panel["fiscal_year"].nunique())
    counts: dict = {}
    texts = []
    hazard_t: pd.DataFrame | None = None
    sentences: list[str] = []
    why = association.hazard_unavailable_ja(n_years)
    if why is None:
        pp = association.hazard_frame(panel, book, counts=counts, covariates=covariates)
        why = association.hazard_unavailable_ja(n_years, int(pp["event"].sum()))
        texts.append(association.hazard_sample_ja(counts, n_years))
        if why is None:
            analysis = association.analyse_hazard(panel, book, covariates, n_boot=n_boot)
            rep.analyses["hazard"] = analysis
            hazard = analysis.table
            hazard_t = association.hazard_table_ja(hazard)
            sentences = [association.hazard_sentence_ja(r) for _, r in hazard.iterrows()]
            rep.hazard_size = {"n_municipalities": int(panel["code"].nunique()), "n_events": int(pp["event"].sum())}
    if why:
        texts.insert(0, why)
    rep.add(
        Section(
            "hazard",
            "前年度の支援の活用と、翌年度に初めて全項目実施に到達することの関連（離散時間ハザードモデル）",
            hazard_t,
            text="\n\n".join(t for t in texts if t),
            sentences=tuple(sentences),
            layout=("text", "sentences", "table"),
        )
    )
    rep.summary = {
        "years": sorted(int(y) for y in panel["fiscal_year"].unique()),
        "hazard_sample": counts,
        "covariates": list(covariates),
    }
    _progress(rep, ds, panel, book, int(panel["fiscal_year"].max()), chart=True)
    return rep


__all__ = [
    "LARGE_N",
    "SHEET_NAMES_JA",
    "Figure",
    "Report",
    "Section",
    "SectionNotFound",
    "banner_html",
    "build_fiscal_year_report",
    "build_trends_report",
    "fiscal_year_report",
    "narrative_html",
    "national_counts",
    "quality_report",
    "show_figure",
    "table_html",
    "trends_report",
]
