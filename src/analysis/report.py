"""What the notebooks call: one object per report that computes tables/figures and saves them.

Notebooks stay thin: they set parameters, call `fiscal_year_report(...)` or `trends_report(...)`,
show the tables and figures with Japanese narrative, and call `.save(output_dir)` when the runner
gives them an output folder. All computation is here (and in tables/plots/models), under test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape as html_escape
from pathlib import Path

import pandas as pd

from . import association, plots, quality, tables, targets
from .codebook import Codebook, load_codebook
from .datasets import Dataset, load_dataset
from .display import display_frame
from .export import write_bytes, write_csv, write_text, write_xlsx
from .panel import build_panel, cross_section
from .paths import data_dir
from .texts import SYNTHETIC_BANNER_JA
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


@dataclass
class Report:
    """Tables (ordered), their titles, figure makers and a summary for the manifest."""

    dataset: Dataset
    title: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    figures: dict[str, Callable] = field(default_factory=dict)
    figure_alts: dict[str, str] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    association_text: str = ""
    association_sentences: list[str] = field(default_factory=list)
    quality_text: str = ""
    quality_href: str = ""
    hazard_text: str = ""
    progress_text: str = ""
    progress_counts: dict = field(default_factory=dict, repr=False)
    progress_targets: list = field(default_factory=list, repr=False)
    hazard_sentences: list[str] = field(default_factory=list)
    covariates_ja: str = ""
    hazard_size: dict = field(default_factory=dict)
    analyses: dict = field(default_factory=dict, repr=False)
    links: dict = field(default_factory=dict, repr=False)
    _png: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def large(self) -> bool:
        """More municipalities than a readable per-municipality table holds (national data)."""
        return self.summary.get("n_municipalities", 0) > LARGE_N

    @property
    def banner(self) -> str | None:
        return SYNTHETIC_BANNER_JA if self.dataset.synthetic else None

    def show_banner(self):
        from IPython.display import HTML, display

        if self.banner:
            display(HTML(banner_html(self.banner)))

    def table_html(self, key: str) -> str:
        """The table as escaped HTML with a <caption> and header cells (deterministic markup)."""
        return table_html(self.tables[key], self.titles.get(key, key), self.links.get(key))

    def show(self, key: str):
        """Display one table in the notebook (HTML with caption; no index column)."""
        from IPython.display import HTML, display

        display(HTML(self.table_html(key)))

    def show_text(self, text: str) -> None:
        """Display reader-facing Japanese text (escaped) as paragraphs."""
        import html

        from IPython.display import HTML, display

        paras = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n") if p.strip())
        display(HTML(f'<div class="narrative">{paras}</div>'))

    def show_association(self) -> None:
        """Results in words and a picture first, then the reading, then the full table for specialists."""
        self._show_list(self.association_sentences)
        if "forest" in self.figures:
            self.figure("forest")
        self.show_text(self.association_text)
        if "association" in self.tables:
            self.show("association")

    def show_progress(self) -> None:
        """Targets vs actual (table, sentence and chart), or how to add targets."""
        self.show_text(self.progress_text)
        if "progress" in self.tables:
            self.show("progress")
        if "targets" in self.figures:
            self.figure("targets")

    def show_support(self) -> None:
        """The support table and its chart, or why they cannot be shown (no previous-year survey)."""
        if "support" in self.tables:
            self.show("support")
            self.figure("support")
        else:
            self.show_text(self.association_text)

    def show_methods(self, plain: str, detail: list[str]) -> None:
        """Methods for a non-statistician in the body; the technical description folded away."""
        import html

        from IPython.display import HTML, display

        items = "".join(f"<li>{html.escape(t)}</li>" for t in detail)
        display(
            HTML(
                f'<div class="narrative"><p>{html.escape(plain)}</p></div>'
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

    def show_hazard(self) -> None:
        """Who is in the hazard model, the table (when it could be fitted), or why it is empty."""
        self.show_text(self.hazard_text)
        self._show_list(self.hazard_sentences)
        if "hazard" in self.tables:
            self.show("hazard")

    def _show_list(self, sentences: list[str]) -> None:
        """Results in words: one escaped list item per sentence."""
        if not sentences:
            return
        import html

        from IPython.display import HTML, display

        items = "".join(f"<li>{html.escape(t)}</li>" for t in sentences)
        display(HTML(f'<ul class="results-in-words">{items}</ul>'))

    def show_quality(self) -> None:
        """The data-quality sentence (and, in a quality report, its tables)."""
        self.show_text(self.quality_text)
        if self.quality_href:
            from IPython.display import HTML, display

            display(
                HTML(
                    f'<p class="narrative">詳しくは<a href="{html_escape(self.quality_href)}">'
                    "データ品質レポート</a>を参照してください。</p>"
                )
            )
        for key in ("response", "missing_by_question", "issues"):
            if key in self.tables:
                if key == "issues" and self.tables[key].empty:
                    self.show_text("読み込み時の問題・読み飛ばした行・無視した列はありませんでした。")
                else:
                    self.show(key)

    def show_detail(self) -> None:
        """Municipality-level detail: heat map + table, or (national scale) distributions."""
        keys = ["items_distribution", "by_prefecture"] if self.large else ["municipality_items"]
        figs = ["by_prefecture"] if self.large else ["items_heatmap"]
        for f in figs:
            self.figure(f)
        for k in keys:
            self.show(k)

    def figure_png(self, key: str) -> bytes:
        """The figure as PNG bytes (drawn once, then cached, so notebook and files agree)."""
        if key not in self._png:
            import io

            fig = self.figures[key]()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=150, bbox_inches="tight", metadata={"Software": None})
            plots.close(fig)
            self._png[key] = buf.getvalue()
        return self._png[key]

    def figure(self, key: str) -> None:
        """Display a figure as PNG with Japanese alt text (the same bytes as figures/<key>.png).

        Displayed explicitly rather than through the inline backend, so that the text part that
        nbval compares is the alt text, identical in every kernel.
        """
        import base64

        from IPython.display import display

        alt = self.figure_alts.get(key, key)
        data = base64.b64encode(self.figure_png(key)).decode("ascii")
        display({"image/png": data, "text/plain": f"[図] {alt}"}, raw=True, metadata={"image/png": {"alt": alt}})

    def save(self, output_dir: str | Path) -> Path:
        """Write tables/*.csv (UTF-8 BOM), tables.xlsx, figures/*.png and summary.json."""
        out = Path(output_dir)
        (out / "tables").mkdir(parents=True, exist_ok=True)
        (out / "figures").mkdir(parents=True, exist_ok=True)
        for i, (key, frame) in enumerate(self.tables.items(), start=1):
            write_csv(frame, out / "tables" / f"{i:02d}_{key}.csv")
        note = SYNTHETIC_BANNER_JA if self.dataset.synthetic else None
        sheets = {k: f"{i:02d} {SHEET_NAMES_JA.get(k, k)}" for i, k in enumerate(self.tables, start=1)}
        write_xlsx(
            {sheets[k]: v for k, v in self.tables.items()},
            out / "tables.xlsx",
            titles={sheets[k]: self.titles.get(k, k) for k in self.tables},
            note=note,
        )
        for key in self.figures:
            write_bytes(out / "figures" / f"{key}.png", self.figure_png(key))
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
    """Tables and figures of one fiscal year (reads the dataset, then `build_fiscal_year_report`)."""
    ds, book = _context(dataset, book)
    if fiscal_year not in ds.years:
        ds.survey_path(fiscal_year)  # raises the bilingual DatasetError
    years = ds.report_years(fiscal_year, exposure_lag)
    q = quality.check(ds, fiscal_year, book)
    panel = build_panel(ds, book, years, preread={fiscal_year: q.result} if q.result is not None else None)
    rep = build_fiscal_year_report(ds, panel, book, fiscal_year, exposure_lag, covariates=covariates)
    rep.quality_text = quality.summary_sentence(q, ds)
    rep.quality_href = f"../quality/FY{fiscal_year}/report.html"
    vintage = panel.attrs.get("fiscal_strength_notes", {}).get(fiscal_year)
    if vintage:  # 財政力指数 taken from the bundled 総務省 workbooks: say which year's accounts
        rep.quality_text += "\n\n" + vintage
    return rep


def _progress(rep: Report, ds: Dataset, panel: pd.DataFrame, book: Codebook, fiscal_year: int) -> None:
    """Targets of the prefecture's plan vs actual counts (a table and a sentence, or how to add targets)."""
    goals = targets.parse_targets(ds.meta.get("targets"), where=f"data/raw/{ds.name}/dataset.yaml")
    thresholds = targets.rating_thresholds(book)
    counts = {int(y): tables.summary_counts(g) for y, g in panel.groupby("fiscal_year") if int(y) <= fiscal_year}
    table = targets.progress_table(goals, counts, fiscal_year, thresholds) if goals else pd.DataFrame()
    if not table.empty:
        rep.tables["progress"] = table
        rep.titles["progress"] = f"計画の数値目標の達成状況（{wareki_fy(fiscal_year)}（FY{fiscal_year}）時点）"
    rep.progress_text = targets.progress_sentence_ja(table, fiscal_year, thresholds)
    rep.progress_counts = counts
    rep.progress_targets = goals


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
    rep = Report(dataset=ds, title=f"{label} 包括的な支援体制の整備状況と県の市町支援")
    rep.covariates_ja = association.covariate_labels(book, covariates)
    rep.summary = {
        "fiscal_year": fiscal_year,
        **tables.summary_counts(year),
        "exposure_lag": exposure_lag,
        "covariates": list(covariates),
    }
    add = _adder(rep)
    add("status", tables.status_table(year, book), f"県内市町の実施状況（{label}）")
    _progress(rep, ds, panel, book, fiscal_year)
    add("main_items", tables.main_items_table(year, book), f"指針の主要項目の実施状況（{label}）")
    no_previous = exposure_lag == 1 and fiscal_year - 1 not in set(panel["fiscal_year"].astype(int))
    if no_previous:
        rep.association_text = (
            f"{prev_label}の調査がないため、前年度の支援の活用状況と、それと全項目実施との関連は示せません。"
        )
    else:
        add("support", tables.support_table(exposed, book), f"県の支援施策の活用状況（施策の視点別、{support_when}）")
    add("challenges", tables.challenges_table(year, book), f"市町の課題認識（{label}）")
    if not no_previous:
        add(
            "support_by_full",
            tables.measure_by_full_table(exposed, book),
            f"支援施策（{timing}の活用）と指針の主要項目の全項目実施（{label}）",
        )
        analysis = association.analyse_year(exposed, book, covariates, exposure_lag)
        rep.analyses["association"] = analysis
        assoc = analysis.table
        add(
            "association",
            association.association_table_ja(assoc, book),
            f"支援施策（{timing}の活用）と全項目実施の関連（{label}）",
        )
        rep.association_text = association.association_narrative_ja(assoc, len(exposed), timing, rep.covariates_ja)
        rep.association_sentences = association.measure_sentences_ja(assoc, timing)
    items_t = rep.tables["main_items"]
    rep.figures = {"main_items": lambda: plots.main_items_bar(items_t, wareki_fy(fiscal_year))}
    rep.figure_alts = {
        "main_items": f"指針の主要項目ごとの実施率の横棒グラフ（{label}）。数値は表「{rep.titles['main_items']}」と同じです。",
    }
    if "association" in rep.tables:
        assoc_t = rep.tables["association"]
        forest_title = f"支援施策（{timing}の活用）と全項目実施：差と調整オッズ比（95%信頼区間、{label}）"
        rep.figures["forest"] = lambda: plots.forest(assoc_t, forest_title)
        rep.figure_alts["forest"] = (
            f"支援施策ごとの全項目実施率の差（ポイント）と調整オッズ比を、95%信頼区間とともに示した図"
            f"（{label}）。数値は表「{rep.titles['association']}」と同じです。"
        )
    if "support" in rep.tables:
        support_t = rep.tables["support"]
        rep.figures["support"] = lambda: plots.support_bar(support_t, support_when)
        rep.figure_alts["support"] = (
            f"県の支援施策ごとの活用率の横棒グラフ（{support_when}）。数値は表「{rep.titles['support']}」と同じです。"
        )
    if rep.large:
        # national scale: no municipality-level table in the report; distributions and by prefecture
        add(
            "items_distribution",
            tables.items_count_distribution(year, book),
            f"実施している主要項目の数の分布（{label}）",
        )
        add("by_prefecture", tables.by_prefecture_table(year), f"都道府県別の実施状況（{label}）")
        pref_t = rep.tables["by_prefecture"]
        rep.figures["by_prefecture"] = lambda: plots.prefecture_bar(pref_t, wareki_fy(fiscal_year))
        rep.figure_alts["by_prefecture"] = (
            f"都道府県別の重層実施割合と全項目実施割合の横棒グラフ（{label}）。"
            f"数値は表「{rep.titles['by_prefecture']}」と同じです。"
        )
    else:
        add("municipality_items", tables.municipality_items_table(year, book), f"市町別の主要項目の実施状況（{label}）")
        from .profiles import profile_href

        rep.links["municipality_items"] = {
            "市町村名": [f"../{profile_href(c, fiscal_year)}" for c in rep.tables["municipality_items"]["市町村コード"]]
        }
        rep.figures["items_heatmap"] = lambda: plots.items_heatmap(year, book, wareki_fy(fiscal_year))
        rep.figure_alts["items_heatmap"] = (
            f"市町別・主要項目別の実施状況の図（{label}）。内容は表「{rep.titles['municipality_items']}」と同じです。"
        )
    return rep


def quality_report(dataset: str, fiscal_year: int, book: Codebook | None = None) -> Report:
    """Data quality of one fiscal year's survey file (works even when the file has errors)."""
    ds, book = _context(dataset, book)
    ds.survey_path(fiscal_year)  # unknown year: the bilingual DatasetError
    label = f"{wareki_fy(fiscal_year)}（FY{fiscal_year}）"
    rep = Report(dataset=ds, title=f"{label} 調査ファイルのデータ品質")
    q = quality.check(ds, fiscal_year, book)
    add = _adder(rep)
    add("response", quality.response_table(q, ds), f"回答状況（{label}）")
    add("missing_by_question", quality.missing_by_question(q, book), f"設問ごとの無回答（{label}）")
    add("issues", quality.issues_table(q), f"読み込み時に見つかった問題・読み飛ばした行（{label}）")
    rep.quality_text = quality.summary_sentence(q, ds)
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
    """Tables and figures across all fiscal years of the dataset."""
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
    rep = Report(dataset=ds, title="年度横断の推移：包括的な支援体制の整備と重層的支援体制整備事業")
    add = _adder(rep)
    trend = tables.trend_table(panel, national_counts())
    add("trend", trend, "年度別の実施状況（県内と全国）")
    add("transitions", tables.transition_table(panel, book), "重層的支援体制整備事業の実施状況の推移（前年度→翌年度）")
    covariates = association.covariates_of(book, covariates)
    rep.covariates_ja = association.covariate_labels(book, covariates)
    n_years = int(panel["fiscal_year"].nunique())
    counts: dict = {}
    texts = []
    why = association.hazard_unavailable_ja(n_years)
    if why is None:
        pp = association.hazard_frame(panel, book, counts=counts, covariates=covariates)
        why = association.hazard_unavailable_ja(n_years, int(pp["event"].sum()))
        texts.append(association.hazard_sample_ja(counts, n_years))
        if why is None:
            analysis = association.analyse_hazard(panel, book, covariates, n_boot=n_boot)
            rep.analyses["hazard"] = analysis
            hazard = analysis.table
            add(
                "hazard",
                association.hazard_table_ja(hazard),
                "前年度の支援の活用と、翌年度に初めて全項目実施に到達することの関連（離散時間ハザードモデル）",
            )
            rep.hazard_sentences = [association.hazard_sentence_ja(r) for _, r in hazard.iterrows()]
            rep.hazard_size = {"n_municipalities": int(panel["code"].nunique()), "n_events": int(pp["event"].sum())}
    if why:
        texts.insert(0, why)
    rep.hazard_text = "\n\n".join(t for t in texts if t)
    rep.summary = {
        "years": sorted(int(y) for y in panel["fiscal_year"].unique()),
        "hazard_sample": counts,
        "covariates": list(covariates),
    }
    latest = int(panel["fiscal_year"].max())
    _progress(rep, ds, panel, book, latest)
    rep.figures = {"share_trend": lambda: plots.share_trend(trend)}
    rep.figure_alts = {
        "share_trend": "重層的支援体制整備事業の実施割合（県内と全国）と全項目実施割合の年度別の折れ線グラフ。"
        "数値は表「年度別の実施状況（県内と全国）」と同じです。"
    }
    if rep.progress_targets:
        goals, prog_counts = rep.progress_targets, rep.progress_counts
        rep.figures["targets"] = lambda: plots.targets_chart(prog_counts, goals)
        rep.figure_alts["targets"] = (
            "数値目標のある指標の実績（実線）、これまでの傾向を延ばした見通し（破線）と目標値（星印）の図。"
            f"数値は表「{rep.titles['progress']}」と同じです。"
        )
    return rep


def _adder(rep: Report):
    def add(key: str, frame: pd.DataFrame, title: str):
        rep.tables[key] = frame
        rep.titles[key] = title

    return add
