"""The one-page summary of a fiscal year: what the expert meeting's slide needs.

``reports/<dataset>/FY<yyyy>/summary.html`` holds the headline figures (重層 実施 n/N and
全項目実施 n/N, each with the change from the previous fiscal year and, when the plan has
targets, the rating), the two key charts (the forest plot of the support measures and the
main-items bar chart) and three sentences: the status with its change, the support measure
whose difference is least compatible with chance (smallest Fisher p-value), and the caution
that these are associations that a small number of municipalities can only detect when large.

Everything is read from the files the fiscal-year report saved (summary.json of this and the
previous year, tables/*.csv, figures/*.png), so the page agrees with the report by
construction. The page is self-contained (images as data: URIs, inline CSS, no script),
deterministic (no clock) and fits one A4 landscape page when printed and a 1600×900 screen for
the slide image (analysis.pdf prints and photographs it).

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from .htmlexport import TEMPLATE_DIR, find_offline_violations, print_page_css, write_text_if_changed
from .site import _count  # a whole count from summary.json (site reads the same files)
from .wareki import wareki_fy

__all__ = ["SUMMARY_FILE", "build_summary_page", "key_sentences", "summary_title"]

SUMMARY_FILE = "summary.html"

#: Columns of the association table (tables/NN_association.csv, association.association_table_ja)
#: that the sentences are made from.
_ASSOC_COLUMNS = {
    "label": "支援施策",
    "n_exposed": "活用あり(市町数)",
    "rate_exposed": "全項目実施率・あり(%)",
    "n_unexposed": "活用なし(市町数)",
    "rate_unexposed": "全項目実施率・なし(%)",
    "rd": "差(ポイント)",
    "rd_lower": "差・下限(ポイント)",
    "rd_upper": "差・上限(ポイント)",
}
_P_COLUMN = "Fisher正確検定p値"
_MDD_COLUMN = "検出できる最小の差(ポイント)"
#: The two key charts, in order of preference for the first slot.
_CHARTS = (
    ("forest", "支援施策ごとの全項目実施率の差（ポイント）と調整オッズ比を、95%信頼区間とともに示した図"),
    ("support", "県の支援施策ごとの活用率の横棒グラフ"),
    ("main_items", "指針の主要項目ごとの実施率の横棒グラフ"),
)


@dataclass(frozen=True)
class Headline:
    """One big number of the page: n of N municipalities, the change and the plan's rating."""

    key: str  # "jusou" | "full"
    label: str
    n: int
    total: int
    change: int | None  # from the previous fiscal year; None when there is none
    prev_label: str
    target: str = ""  # e.g. 「2027年度の目標 20市町・評価 概ね順調」

    @property
    def percent(self) -> str:
        return f"{100.0 * self.n / self.total:.1f}" if self.total else "—"

    @property
    def change_text(self) -> str:
        if self.change is None:
            return "前年度の調査なし"
        sign = "+" if self.change > 0 else ("±" if self.change == 0 else "−")
        return f"{self.prev_label}から {sign}{abs(self.change)}市町"


def summary_title(fiscal_year: int, label_ja: str) -> str:
    return f"{wareki_fy(fiscal_year)}（FY{fiscal_year}）1枚の要約 — {label_ja}"


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _table(fy_dir: Path, key: str):
    """tables/NN_<key>.csv as a DataFrame (None when absent or unreadable)."""
    import pandas as pd

    found = sorted((fy_dir / "tables").glob(f"[0-9][0-9]_{key}.csv"))
    if not found:
        return None
    try:
        return pd.read_csv(found[0], encoding="utf-8-sig", keep_default_na=False, na_values=[""])
    except (OSError, ValueError):
        return None


def _targets(fy_dir: Path) -> dict[str, str]:
    """{"jusou"|"full": 「2027年度の目標 20市町・評価 概ね順調」} from tables/NN_progress.csv."""
    table = _table(fy_dir, "progress")
    out: dict[str, str] = {}
    if table is None or not {"指標", "目標年度", "目標値(市町数)", "評価"} <= set(table.columns):
        return out
    for _, row in table.iterrows():
        name = str(row["指標"])
        key = "jusou" if "重層" in name else ("full" if "主要項目" in name or "全項目" in name else None)
        year, goal = _count(row["目標年度"]), _count(row["目標値(市町数)"])
        if key and key not in out and year and goal is not None:
            out[key] = f"{year}年度の目標 {goal}市町・評価「{row['評価']}」"
    return out


def headlines(fy_dir: Path, summary: dict, previous: dict | None) -> list[Headline]:
    fy = int(summary["fiscal_year"])
    total = _count(summary.get("n_municipalities")) or 0
    targets = _targets(fy_dir)
    out = []
    for key, label in (("jusou", "重層的支援体制整備事業を実施済"), ("full", "指針の主要項目を全て実施")):
        n = _count(summary.get(f"n_{key}"))
        if n is None:
            continue
        before = _count(previous.get(f"n_{key}")) if previous else None
        out.append(
            Headline(
                key, label, n, total, None if before is None else n - before, wareki_fy(fy - 1), targets.get(key, "")
            )
        )
    return out


def _status_sentence(fy: int, heads: list[Headline]) -> str:
    """「令和7年度は、回答した35市町のうち13市町（37.1%）が…。前年度と比べ、…増えました。」"""
    if not heads:
        return ""
    said = {h.key: f"{h.n}市町（{h.percent}%）が{h.label}" for h in heads}
    if "jusou" in said and "full" in said:
        text = f"{said['jusou']}で、{said['full']}していました。"
    elif "jusou" in said:
        text = f"{said['jusou']}でした。"
    else:
        text = f"{said['full']}していました。"
    text = f"{wareki_fy(fy)}は、回答した{heads[0].total}市町のうち、{text}"
    clauses = []
    for h in heads:
        if h.change is None:
            continue
        what = "重層的支援体制整備事業の実施" if h.key == "jusou" else "全項目実施"
        if h.change == 0:
            clauses.append((f"{what}は前年度と同じで", f"{what}は前年度と同じでした"))
        else:
            verb = ("増え", "増えました") if h.change > 0 else ("減り", "減りました")
            clauses.append((f"{what}は{abs(h.change)}市町{verb[0]}", f"{what}は{abs(h.change)}市町{verb[1]}"))
    if clauses:
        text += (
            f"前年度（{wareki_fy(fy - 1)}）と比べ、"
            + "、".join(c[0] for c in clauses[:-1])
            + ("、" if len(clauses) > 1 else "")
            + clauses[-1][1]
            + "。"
        )
    return text


def _association_rows(fy_dir: Path):
    table = _table(fy_dir, "association")
    if table is None or not (set(_ASSOC_COLUMNS.values()) | {_P_COLUMN}) <= set(table.columns):
        return None
    return table


def _measure_sentence(row, timing: str) -> str:
    """The report's own sentence for this measure (analysis.association), from the saved row."""
    from .sentences import measure_sentence_ja

    values = {k: row[col] for k, col in _ASSOC_COLUMNS.items()}
    for k in ("rate_exposed", "rate_unexposed", "rd", "rd_lower", "rd_upper"):
        v = values[k]
        values[k] = float(v) / 100.0 if v is not None and v == v else math.nan
    for k in ("n_exposed", "n_unexposed"):
        values[k] = int(values[k])
    return measure_sentence_ja(values, timing)


def key_sentences(fy_dir: Path, summary: dict, previous: dict | None) -> list[tuple[str, str]]:
    """The three sentences of the page as (heading, sentence): status, strongest measure, caution."""
    fy = int(summary["fiscal_year"])
    out = []
    status = _status_sentence(fy, headlines(fy_dir, summary, previous))
    if status:
        out.append(("実施状況", status))
    table = _association_rows(fy_dir)
    timing = "前年度" if summary.get("exposure_lag") == 1 else "同じ年度"
    if table is not None and not table.empty:
        p = table[_P_COLUMN].astype(float)
        if p.notna().any():
            best = int(p.fillna(math.inf).to_numpy().argmin())
            sentences = summary.get("association_sentences")
            if isinstance(sentences, list) and len(sentences) == len(table):
                sentence = str(sentences[best])
            else:
                sentence = _measure_sentence(table.iloc[best], timing)
            out.append(("支援施策との関連（p値が最も小さい施策）", sentence))
        caution = "これらは関連であり、県の支援施策の効果を示すものではありません。"
        if _MDD_COLUMN in table.columns:
            mdd = table[_MDD_COLUMN].astype(float).dropna()
            if not mdd.empty:
                lo, hi = int(round(mdd.min())), int(round(mdd.max()))
                span = f"約{lo}ポイント" if lo == hi else f"約{lo}〜{hi}ポイント"
                caution += (
                    f"市町の数が少ないため、{span}より小さい差は、実際にあっても見つけられる確率（検出力）が"
                    "80%未満です。差が「有意でない」ことは、差がないことを意味しません。"
                )
        out.append(("読み方の注意", caution))
    return out


def _data_uri(path: Path) -> str | None:
    try:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return None


def _charts(fy_dir: Path, label: str) -> list[dict]:
    """The two key charts (forest plot, or the support chart without one; then the main items)."""
    available = [(k, alt) for k, alt in _CHARTS if (fy_dir / "figures" / f"{k}.png").is_file()]
    first = [c for c in available if c[0] in ("forest", "support")][:1]
    chosen = first + [c for c in available if c[0] == "main_items"]
    out = []
    for key, alt in chosen:
        uri = _data_uri(fy_dir / "figures" / f"{key}.png")
        if uri:
            out.append({"key": key, "src": uri, "alt": f"{alt}（{label}）。数値は年度別レポートの表と同じです。"})
    return out


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR / "summary")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_summary_page(
    fy_dir: Path, *, label_ja: str, synthetic: bool, banner_ja: str | None = None, index_href: str = "../index.html"
) -> str | None:
    """The summary page's HTML for reports/<dataset>/FY<yyyy>/ (None without a summary.json)."""
    fy_dir = Path(fy_dir)
    summary = _read_json(fy_dir / "summary.json")
    if summary is None or _count(summary.get("fiscal_year")) is None:
        return None
    fy = int(summary["fiscal_year"])
    previous = _read_json(fy_dir.parent / f"FY{fy - 1}" / "summary.json")
    label = f"{wareki_fy(fy)}（FY{fy}）"
    title = summary_title(fy, label_ja)
    context = {
        "title": title,
        "heading": f"{label} 包括的な支援体制の整備状況と県の市町支援",
        "label_ja": label_ja,
        "synthetic": synthetic,
        "banner": banner_ja or "",
        "headlines": headlines(fy_dir, summary, previous),
        "sentences": key_sentences(fy_dir, summary, previous),
        "charts": _charts(fy_dir, label),
        "index_href": index_href,
        "report_href": "report.html" if (fy_dir / "report.html").is_file() else "",
        "print_css": print_page_css(title, synthetic=synthetic),
    }
    html = _environment().get_template("summary.html.j2").render(context)
    violations = find_offline_violations(html)
    if violations:  # pragma: no cover - guards future template edits
        raise ValueError("summary.html is not self-contained: " + "; ".join(violations))
    return html


def build_summary_page(fy_dir: Path, *, label_ja: str, synthetic: bool, banner_ja: str | None = None) -> Path | None:
    """Write fy_dir/summary.html (atomically, and only when its content changed); its path or None.

    Unchanged content is not rewritten, so the file's time tells analysis.pdf whether its PDF
    and PNG are still current.
    """
    html = render_summary_page(fy_dir, label_ja=label_ja, synthetic=synthetic, banner_ja=banner_ja)
    if html is None:
        return None
    return write_text_if_changed(Path(fy_dir) / SUMMARY_FILE, html)
