"""Figures (seaborn/matplotlib) with a Japanese font; they return Figures and never write files.

`setup()` must run before plotting: it loads matplotlib_fontja (IPAexGothic) and sets the seaborn
theme with that font, since `sns.set_theme()` without `font=` brings back a font without kanji.
Colours are Okabe–Ito, which stay distinguishable with colour-vision deficiencies.
"""
from __future__ import annotations

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
    return _barh(items_table["指針の主要項目"].tolist(), items_table["割合(%)"].tolist(),
                 f"指針の主要項目の実施率（{fiscal_label}）", "実施している市町の割合（%）")


def support_bar(support_table: pd.DataFrame, fiscal_label: str):
    return _barh(support_table["支援施策"].tolist(), support_table["割合(%)"].tolist(),
                 f"県の支援施策の活用率（{fiscal_label}）", "活用した市町の割合（%）", OKABE_ITO[2])


def items_heatmap(year: pd.DataFrame, book: Codebook, fiscal_label: str):
    """Municipality × main item: implemented (blue) / not (light) / missing (grey)."""
    data = year.sort_values("code")
    matrix = data[book.main_items].astype("float").to_numpy()
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(data) + 2.5))
    cmap = matplotlib.colors.ListedColormap(["#F2F2F2", OKABE_ITO[0]])
    sns.heatmap(matrix, cmap=cmap, vmin=0, vmax=1, cbar=False, linewidths=0.5, linecolor="white", ax=ax,
                mask=pd.isna(matrix))
    ax.set_facecolor("#BBBBBB")
    ax.set_xticks([i + 0.5 for i in range(len(book.main_items))])
    ax.set_xticklabels([book.label(v) for v in book.main_items], rotation=60, ha="right", fontsize=8)
    ax.set_yticks([i + 0.5 for i in range(len(data))])
    full = data[OUTCOME].astype("boolean").fillna(False).to_numpy()
    ax.set_yticklabels([f"{'★' if f else ''}{n}" for n, f in zip(data["name"].astype(str), full)], fontsize=7, rotation=0)
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
    data = pref_table.melt(id_vars=["都道府県"], value_vars=["重層実施割合(%)", "全項目実施割合(%)"],
                           var_name="指標", value_name="割合(%)")
    fig, ax = plt.subplots(figsize=(7.5, 0.22 * len(pref_table) + 1.8))
    sns.barplot(data=data, x="割合(%)", y="都道府県", hue="指標", palette=OKABE_ITO[:2], ax=ax, orient="h")
    ax.set_xlim(0, 100)
    ax.set_ylabel("")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"都道府県別の実施割合（{fiscal_label}）")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
