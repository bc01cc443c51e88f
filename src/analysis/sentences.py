"""Results in words: one plain Japanese sentence per measure, generated from its table row.

Kept apart from analysis.association (which imports the estimators: statsmodels, firthmodels),
so that the one-page summary, built in the runner's main process after the notebooks, can word a
saved table row without importing the estimation stack (about 1 CPU-second per run).
analysis.association re-exports these names; the notebooks and reports use them from there.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import math

import pandas as pd


def _pct_text(rate: float) -> str:
    return f"{rate * 100:.0f}%"


def _pts(v: float) -> str:
    return f"{v * 100:.0f}".replace("-", "−")


def measure_sentence_ja(row, timing_ja: str = "同じ年度") -> str:
    """One plain sentence per measure, generated from the numbers of its table row.

    It quotes the two rates, the difference and its 95 % interval, and says whether an interval
    that includes 0 leaves the difference compatible with chance. Never a causal claim.
    """
    label = row["label"]
    when = "" if timing_ja == "同じ年度" else "前年度に"
    if not row["n_exposed"] or not row["n_unexposed"]:
        who = "すべての市町が活用した" if row["n_unexposed"] == 0 else "活用した市町がない"
        return f"「{label}」は、{who}ため、活用の有無による比較はできません。"
    text = (
        f"「{label}」を{when}活用した市町の{_pct_text(row['rate_exposed'])}、活用しなかった市町の"
        f"{_pct_text(row['rate_unexposed'])}が全項目を実施していました（差は{_pts(row['rd'])}ポイント"
    )
    lo, hi = row["rd_lower"], row["rd_upper"]
    if math.isnan(lo) or math.isnan(hi):
        return text + "。信頼区間は計算できませんでした）。"
    text += f"、95%信頼区間 {_pts(lo)}〜{_pts(hi)}ポイント）。"
    if lo > 0 or hi < 0:
        text += "偶然だけでは説明しにくい差ですが、関連であり、施策の効果を示すものではありません。"
    else:
        text += "この差は偶然でも生じうる大きさです。"
    return text + _note_of(row)


def measure_sentences_ja(table: pd.DataFrame, timing_ja: str = "同じ年度") -> list[str]:
    return [measure_sentence_ja(row, timing_ja) for _, row in table.iterrows()]


def hazard_sentence_ja(row) -> str:
    """Plain sentence for one measure of the hazard table (odds of first reaching full implementation)."""
    label = row["label"]
    if math.isnan(row["or"]):
        return f"「{label}」: {row['note'] or '推定できませんでした。'}"
    text = (
        f"前年度に「{label}」を活用した市町は、活用しなかった市町に比べ、翌年度に初めて全項目実施に到達する"
        f"オッズが{row['or']:.2f}倍でした"
    )
    lo, hi = row.get("or_lower", math.nan), row.get("or_upper", math.nan)
    if not (pd.isna(lo) or pd.isna(hi)):
        upper = "上限なし" if math.isinf(hi) else f"{hi:.2f}"
        text += f"（95%信頼区間 {lo:.2f}〜{upper}）"
    p = row["p_holm"]
    if pd.isna(p):
        text += "。p値は計算できませんでした。"
    elif p < 0.05:
        text += "。複数の施策の検定を補正しても統計的に有意ですが、関連であり効果ではありません。"
    else:
        text += "。複数の施策の検定を補正すると、偶然でも生じうる大きさです。"
    return text + _note_of(row)


def _note_of(row) -> str:
    """The row's note (separation, non-convergence...), so the sentence warns where the table does."""
    note = row.get("note", "")
    return note if isinstance(note, str) else ""


__all__ = ["hazard_sentence_ja", "measure_sentence_ja", "measure_sentences_ja"]
