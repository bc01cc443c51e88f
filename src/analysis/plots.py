"""Figures (seaborn/matplotlib) with a Japanese font; they return Figures and never write files.

`setup()` must run before plotting: it loads matplotlib_fontja (IPAexGothic) and sets the seaborn
theme with that font, since `sns.set_theme()` without `font=` brings back a font without kanji.
Colours are Okabe–Ito, which stay distinguishable with colour-vision deficiencies.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .codebook import Codebook
from .panel import OUTCOME

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
FONT = "IPAexGothic"


def setup() -> None:
    """Japanese font + seaborn theme + deterministic rendering settings."""
    import matplotlib_fontja  # noqa: F401  (registers IPAexGothic)

    sns.set_theme(style="whitegrid", font=FONT, palette=OKABE_ITO)
    plt.rcParams["svg.hashsalt"] = "analysis"
    plt.rcParams["axes.unicode_minus"] = False
    _share_text_metrics()


@functools.cache
def _agg_text_metrics(dpi: float, settings: tuple[Any, ...]) -> Callable[..., tuple[float, float, float]]:
    """Text extents measured once per (text, font, math mode) at `dpi` under `settings`
    (_text_settings), for every Agg renderer."""
    from matplotlib.backends.backend_agg import RendererAgg

    renderer = RendererAgg(1, 1, dpi)  # a measuring renderer; extents do not depend on canvas size

    @functools.lru_cache(maxsize=16384)
    def metrics(text: str, fontprop: Any, ismath: Any, dpi_: float) -> tuple[float, float, float]:
        return renderer.get_text_width_height_descent(text, fontprop, ismath)

    return metrics


#: Agg renderer -> (its dpi, its metrics function), so the settings are read once per renderer
_RENDERER_METRICS: weakref.WeakKeyDictionary[Any, tuple[float, Callable[..., Any]]] = weakref.WeakKeyDictionary()


def _text_settings() -> tuple[Any, ...]:
    """The settings besides text, font properties and dpi that text extents depend on.

    Which font file a FontProperties finds (its family names resolve through rcParams
    ``font.*``, among the fonts the font manager knows), hinting, kerning and, for math text,
    ``mathtext.*``. Part of the cache key, so extents measured under other settings (a
    notebook that changed rcParams, in this process or a kept kernel's earlier notebook) are
    never reused.
    """
    from matplotlib import font_manager

    rc = matplotlib.rcParams
    names = sorted(k for k in rc if k.startswith(("font.", "mathtext.", "text.hinting", "text.kerning")))
    return (
        tuple((k, repr(rc[k])) for k in names),
        id(font_manager.fontManager),
        tuple(f.fname for f in font_manager.fontManager.ttflist),
    )


def _share_text_metrics() -> None:
    """Let every Agg renderer of the same dpi share matplotlib's cache of text extents.

    matplotlib caches text extents per renderer instance, and a PNG saved with
    ``bbox_inches="tight"`` is drawn by two renderers (the layout pass at full size, then the
    cropped canvas), after `tight_layout` used a third: each measures every tick label again,
    which was about a fifth of the figures' time. An Agg renderer's extents depend only on the
    text, the font properties, the math mode, the dpi and the text settings (taken once per
    renderer, when it first measures, as matplotlib's own cache does), never on the canvas, so
    sharing them leaves every PNG byte-identical (tests/test_plots.py compares both ways); the
    cache outlives a kept kernel's reset (analysis.kernelstate.KEPT_CACHES). Other renderers
    (PDF, SVG, Cairo) keep matplotlib's own cache. Does nothing on a matplotlib without the hook.
    """
    import matplotlib.text as mtext
    from matplotlib.backends.backend_agg import RendererAgg

    original = getattr(mtext, "_get_text_metrics_function", None)
    if original is None or getattr(original, "_analysis_shared", False):
        return

    def shared(renderer: Any, *args: Any, **kwargs: Any) -> Callable[..., tuple[float, float, float]]:
        if type(renderer) is RendererAgg:
            dpi = float(renderer.dpi)
            known = _RENDERER_METRICS.get(renderer)
            if known is None or known[0] != dpi:
                known = _RENDERER_METRICS[renderer] = (dpi, _agg_text_metrics(dpi, _text_settings()))
            return known[1]
        return original(renderer, *args, **kwargs)

    shared._analysis_shared = True  # type: ignore[attr-defined]
    shared._analysis_original = original  # type: ignore[attr-defined]
    mtext._get_text_metrics_function = shared  # type: ignore[attr-defined]


def _barh(labels: list[str], values: list[float], title: str, xlabel: str, color: str = OKABE_ITO[0]):
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(labels) + 1.2))
    sns.barplot(x=values, y=labels, color=color, ax=ax, orient="h")
    ax.set_xlim(0, 100)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("")
    ax.set_title(title)
    for i, v in enumerate(values):
        ax.text(min(v + 1, 92), i, f"{v:.0f}%", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def main_items_bar(items_table: pd.DataFrame, fiscal_label: str):
    return _barh(
        items_table["指針の主要項目"].tolist(),
        items_table["割合(%)"].tolist(),
        f"指針の主要項目の実施率（{fiscal_label}）",
        "実施している市町の割合（%）",
    )


def support_bar(support_table: pd.DataFrame, fiscal_label: str):
    return _barh(
        support_table["支援施策"].tolist(),
        support_table["割合(%)"].tolist(),
        f"県の支援施策の活用率（{fiscal_label}）",
        "活用した市町の割合（%）",
        OKABE_ITO[2],
    )


@contextlib.contextmanager
def _no_overlap_check_draw() -> Iterator[None]:
    """Skip the full draw seaborn's heatmap makes only to see whether tick labels overlap.

    seaborn renders the whole figure once (``fig.canvas.draw()``) to decide whether to rotate
    the tick labels; `items_heatmap` sets both rotations itself right after, so that render
    changes nothing (tests/test_plots.py checks the PNG is byte-identical) and costs about a
    fifth of the heatmap's time. Without seaborn's private helper, nothing is skipped.
    """
    import seaborn.matrix as smx

    original = getattr(smx, "_draw_figure", None)
    if original is None:
        yield
        return
    smx._draw_figure = lambda fig: None
    try:
        yield
    finally:
        smx._draw_figure = original


def items_heatmap(year: pd.DataFrame, book: Codebook, fiscal_label: str):
    """Municipality × main item: implemented (blue) / not (light) / missing (grey)."""
    data = year.sort_values("code")
    matrix = data[book.main_items].astype("float").to_numpy()
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(data) + 2.5))
    cmap = matplotlib.colors.ListedColormap(["#F2F2F2", OKABE_ITO[0]])
    with _no_overlap_check_draw():
        sns.heatmap(
            matrix,
            cmap=cmap,
            vmin=0,
            vmax=1,
            cbar=False,
            linewidths=0.5,
            linecolor="white",
            ax=ax,
            mask=pd.isna(matrix),
        )
    ax.set_facecolor("#BBBBBB")
    ax.set_xticks([i + 0.5 for i in range(len(book.main_items))])
    ax.set_xticklabels([book.label(v) for v in book.main_items], rotation=60, ha="right", fontsize=8)
    ax.set_yticks([i + 0.5 for i in range(len(data))])
    full = data[OUTCOME].astype("boolean").fillna(False).to_numpy()
    ax.set_yticklabels(
        [f"{'★' if f else ''}{n}" for n, f in zip(data["name"].astype(str), full, strict=False)], fontsize=7, rotation=0
    )
    ax.set_title(f"市町別の主要項目の実施状況（{fiscal_label}、青=実施、★=全項目実施）")
    fig.tight_layout()
    return fig


def share_trend(trend: pd.DataFrame):
    """Prefecture vs national share of municipalities running 重層, and full implementation."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    x = trend["年度"].str.slice(0, 6)
    ax.plot(x, trend["重層実施割合・県内(%)"], marker="o", color=OKABE_ITO[0], label="重層実施・県内")
    ax.plot(x, trend["重層実施割合・全国(%)"], marker="s", linestyle="--", color=OKABE_ITO[1], label="重層実施・全国")
    ax.plot(x, trend["全項目実施割合・県内(%)"], marker="^", color=OKABE_ITO[2], label="指針の主要項目を全て実施・県内")
    ax.set_ylabel("市町（市町村）の割合（%）")
    ax.set_xlabel("年度")
    ax.set_ylim(0, max(50, float(trend[["重層実施割合・県内(%)", "全項目実施割合・県内(%)"]].max().max()) + 10))
    ax.set_title("重層的支援体制整備事業の実施割合：県内と全国")
    ax.legend(loc="upper left", fontsize=9)
    fig.tight_layout()
    return fig


def close(fig) -> None:
    plt.close(fig)


def prefecture_bar(pref_table: pd.DataFrame, fiscal_label: str):
    """By-prefecture shares (重層 and full implementation), for national-scale data."""
    data = pref_table.melt(
        id_vars=["都道府県"], value_vars=["重層実施割合(%)", "全項目実施割合(%)"], var_name="指標", value_name="割合(%)"
    )
    fig, ax = plt.subplots(figsize=(7.5, 0.22 * len(pref_table) + 1.8))
    sns.barplot(data=data, x="割合(%)", y="都道府県", hue="指標", palette=OKABE_ITO[:2], ax=ax, orient="h")
    ax.set_xlim(0, 100)
    ax.set_ylabel("")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"都道府県別の実施割合（{fiscal_label}）")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def forest(assoc_table: pd.DataFrame, title: str):
    """Risk differences (points) and adjusted odds ratios (log scale) with their 95 % intervals.

    Reads the report's numeric association table. The null lines (0 points, odds ratio 1) are
    marked; an interval side that is unbounded or could not be computed runs to the panel's edge
    as an arrow, so it is never drawn shorter than it is.
    """
    import numpy as np

    labels = assoc_table["支援施策"].tolist()
    y = np.arange(len(labels))[::-1]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 0.5 * len(labels) + 1.8), sharey=True)
    panels = [
        (
            axes[0],
            "差(ポイント)",
            "差・下限(ポイント)",
            "差・上限(ポイント)",
            0.0,
            False,
            "全項目実施率の差（ポイント）\n活用あり − 活用なし",
        ),
        (
            axes[1],
            "調整オッズ比(Firth)",
            "調整オッズ比・下限",
            "調整オッズ比・上限",
            1.0,
            True,
            "調整オッズ比（対数目盛）",
        ),
    ]
    for ax, est_col, lo_col, hi_col, null, log, xlabel in panels:
        est = pd.to_numeric(assoc_table[est_col], errors="coerce").to_numpy(float)
        lo = pd.to_numeric(assoc_table[lo_col], errors="coerce").to_numpy(float)
        hi = pd.to_numeric(assoc_table[hi_col], errors="coerce").to_numpy(float)
        if log:
            ax.set_xscale("log")
            finite = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in (est, lo, hi)] + [np.array([1.0])])
            left, right = max(finite.min() / 2, 1e-3), min(finite.max() * 2, 1e3)
        else:
            left, right = -100.0, 100.0
        ax.set_xlim(left, right)
        ax.axvline(null, color="#555555", linestyle="--", linewidth=1)
        for yi, e, a, b in zip(y, est, lo, hi, strict=False):
            if not np.isfinite(e):
                ax.text(null, yi, "推定できず", ha="center", va="center", fontsize=8, color="#555555")
                continue
            a_open = not np.isfinite(a) or (log and a <= 0)
            b_open = not np.isfinite(b)
            a_draw = left if a_open else a
            b_draw = right if b_open else b
            ax.plot([a_draw, b_draw], [yi, yi], color=OKABE_ITO[0], linewidth=2)
            ax.plot([e], [yi], "o", color=OKABE_ITO[0], markersize=6)
            for open_, x, marker in ((a_open, left, "<"), (b_open, right, ">")):
                if open_:
                    ax.plot([x], [yi], marker, color=OKABE_ITO[0], markersize=7, clip_on=False)
        if log:
            ticks = [t for t in (0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300) if left <= t <= right]
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{t:g}" for t in ticks])
            ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(labels, fontsize=9)
    axes[0].set_ylim(-0.7, len(labels) - 0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def targets_chart(counts_by_year: dict, goals: list):
    """Actual counts per indicator with a target (solid), the linear trend extended to the target
    year (dashed) and the target (star): 目標と実績の見通し."""
    from . import targets as tg

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    years = sorted(counts_by_year)
    top = 0.0  # highest value drawn: actuals, projections and targets all stay inside the frame
    for i, indicator in enumerate(dict.fromkeys(g.indicator for g in goals)):
        label, key = tg.INDICATORS[indicator]
        color = OKABE_ITO[i % len(OKABE_ITO)]
        actual = [counts_by_year[y][key] for y in years]
        ax.plot(years, actual, marker="o", color=color, label=f"{label}（実績）")
        top = max(top, *actual)
        for g in (g for g in goals if g.indicator == indicator):
            xs, ys = tg.projection(counts_by_year, g)
            ax.plot(xs, ys, linestyle="--", color=color, linewidth=1.2)
            ax.plot([g.target_year], [g.value], marker="*", markersize=14, color=color, linestyle="none")
            top = max(top, g.value, *ys)
            # left of the star, on a white ground: no line or frame runs through the label
            ax.annotate(
                f"目標 {g.value}（FY{g.target_year}）",
                (g.target_year, g.value),
                textcoords="offset points",
                xytext=(-12, 0),
                ha="right",
                va="center",
                fontsize=8,
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.9},
                zorder=5,
            )
    last = max([years[-1], *[g.target_year for g in goals]])
    ax.set_xticks(list(range(years[0], last + 1)))
    ax.set_xticklabels([f"FY{y}" for y in range(years[0], last + 1)])
    ax.set_xlim(years[0] - 0.4, last + 0.4)
    ax.set_ylabel("市町数")
    ax.set_ylim(0, top * 1.15 + 1)
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_title("数値目標と実績（破線はこれまでの傾向を延ばした見通し）")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def compare_models(compare: pd.DataFrame, measure_label: str):
    """Odds ratios of one measure under several models (columns モデル, オッズ比, 下限, 上限), log scale."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(7.5, 0.7 * len(compare) + 1.6))
    y = np.arange(len(compare))[::-1]
    ax.set_xscale("log")
    ax.axvline(1.0, color="#555555", linestyle="--", linewidth=1)
    for yi, (_, r) in zip(y, compare.iterrows(), strict=False):
        ax.plot([r["下限"], r["上限"]], [yi, yi], color=OKABE_ITO[0], linewidth=2)
        ax.plot([r["オッズ比"]], [yi], "o", color=OKABE_ITO[0])
    ax.set_yticks(y)
    ax.set_yticklabels(compare["モデル"].tolist(), fontsize=9)
    ax.set_xlabel("オッズ比（対数目盛、95%信頼区間）")
    ax.set_title(f"「{measure_label}」のオッズ比：モデルの比較")
    fig.tight_layout()
    return fig


__all__ = [
    "FONT",
    "OKABE_ITO",
    "close",
    "compare_models",
    "forest",
    "items_heatmap",
    "main_items_bar",
    "prefecture_bar",
    "setup",
    "share_trend",
    "support_bar",
    "targets_chart",
]
