"""Numeric targets of the prefecture's plan (地域福祉支援計画) and progress against them.

`dataset.yaml` may hold targets, one per indicator and target year::

    targets:
      - {indicator: jusou, target_year: 2027, value: 20}   # 重層実施市町数
      - {indicator: full, target_year: 2027, value: 15}    # 全項目実施市町数

Progress for a fiscal year: 目標値, 実績, 達成率 (actual / target), the change from the previous
year, and a rating. The rating compares the actual with where the plan should be by now — a
straight line from the first surveyed year's actual to the target in the target year — and uses
the thresholds of the codebook (`progress_rating`, default: met 順調; ≥ 2/3 概ね順調; ≥ 1/2
やや遅れ; otherwise 遅れ). The overall rating applies the same thresholds to the share of
indicators on track.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .errors import AnalysisError

INDICATORS = {
    "jusou": ("重層的支援体制整備事業の実施市町数", "n_jusou"),
    "full": ("指針の主要項目を全て実施した市町数", "n_full"),
}
BASE_YEAR_RATING_JA = "基準年度（評価なし）"
DEFAULT_RATING = [(1.0, "順調"), (2 / 3, "概ね順調"), (1 / 2, "やや遅れ"), (0.0, "遅れ")]
NO_TARGETS_JA = (
    "この県では数値目標が設定されていません。地域福祉支援計画などの目標値（指標・目標年度・目標値）を"
    "データセットの設定に加えると、ここに目標値・実績・達成率・前年度比と評価を表示します（設定方法は利用の手引きを参照）。"
)


class TargetError(AnalysisError):
    """A target in dataset.yaml that cannot be used."""


@dataclass(frozen=True)
class Target:
    indicator: str
    target_year: int
    value: int

    @property
    def label(self) -> str:
        return INDICATORS[self.indicator][0]


def parse_targets(raw, where: str = "dataset.yaml") -> list[Target]:
    """Validate the `targets` list of a dataset definition (JA+EN errors naming the entry)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TargetError("targets は一覧（- で始まる行）で書いてください", "targets must be a list", where=where)
    out = []
    for i, entry in enumerate(raw, start=1):
        at = f"{where}: targets の{i}番目"
        if not isinstance(entry, dict) or set(entry) - {"indicator", "target_year", "value"}:
            raise TargetError(
                f"{at} は indicator・target_year・value の3項目で書いてください",
                f"target {i} must have exactly indicator, target_year and value",
            )
        ind = entry.get("indicator")
        if ind not in INDICATORS:
            raise TargetError(
                f"{at}: 指標 {ind!r} は使えません（使えるもの: {', '.join(INDICATORS)}）",
                f"target {i}: unknown indicator {ind!r} (use one of {', '.join(INDICATORS)})",
            )
        year, value = entry.get("target_year"), entry.get("value")
        if not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2100:
            raise TargetError(
                f"{at}: 目標年度 {year!r} は西暦の年度（例: 2027）で書いてください",
                f"target {i}: target_year {year!r} must be a fiscal year such as 2027",
            )
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise TargetError(
                f"{at}: 目標値 {value!r} は1以上の整数（市町数）で書いてください",
                f"target {i}: value {value!r} must be a whole number of municipalities ≥ 1",
            )
        out.append(Target(ind, year, value))
    keys = [(t.indicator, t.target_year) for t in out]
    if len(set(keys)) != len(keys):
        raise TargetError(
            "同じ指標・目標年度の目標が2つあります", "duplicate target (indicator, target_year)", where=where
        )
    return sorted(out, key=lambda t: (list(INDICATORS).index(t.indicator), t.target_year))


def rating_thresholds(book) -> list[tuple[float, str]]:
    """(threshold, label) pairs, highest first, from the codebook's `progress_rating` or the default."""
    raw = book.raw.get("progress_rating") if book is not None else None
    if not raw:
        return DEFAULT_RATING
    from fractions import Fraction

    return sorted(((float(Fraction(str(r["at_least"]))), str(r["label_ja"])) for r in raw), reverse=True)


def rate(ratio: float, thresholds) -> str:
    for at_least, label in thresholds:
        if ratio >= at_least - 1e-12:
            return label
    return thresholds[-1][1]


def progress_table(
    targets: list[Target], counts_by_year: dict[int, dict], fiscal_year: int, thresholds=DEFAULT_RATING
) -> pd.DataFrame:
    """One row per target: 目標値, 実績, 達成率, 前年度比, the expected value by now, and a rating."""
    years = sorted(counts_by_year)
    base_year = years[0]
    rows = []
    for t in targets:
        key = INDICATORS[t.indicator][1]
        actual = counts_by_year[fiscal_year][key]
        prev = counts_by_year.get(fiscal_year - 1, {}).get(key)
        base = counts_by_year[base_year][key]
        if fiscal_year >= t.target_year or t.target_year <= base_year:
            expected = float(t.value)
        else:
            share = (fiscal_year - base_year) / (t.target_year - base_year)
            expected = base + (t.value - base) * share
        on_track = actual / expected if expected > 0 else 1.0
        # the base year is the path's own starting point: rating it would be 順調 by construction
        rating = BASE_YEAR_RATING_JA if fiscal_year == base_year < t.target_year else rate(on_track, thresholds)
        rows.append(
            {
                "指標": t.label,
                "目標年度": t.target_year,
                "目標値(市町数)": t.value,
                "実績(市町数)": int(actual),
                "達成率(%)": 100.0 * actual / t.value,
                "前年度からの増減(市町数)": pd.NA if prev is None else int(actual - prev),
                "今年度の目安(市町数)": round(expected, 1),
                "評価": rating,
            }
        )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["前年度からの増減(市町数)"] = frame["前年度からの増減(市町数)"].astype("Int64")
    return frame


def _count(v: float) -> str:
    """A number of municipalities: 14 rather than 14.0, 10.3 as it is."""
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def progress_sentence_ja(table: pd.DataFrame, fiscal_year: int, thresholds=DEFAULT_RATING) -> str:
    if table.empty:
        return NO_TARGETS_JA
    parts = []
    for _, r in table.iterrows():
        head = (
            f"{r['指標']}は{r['実績(市町数)']}市町で、{r['目標年度']}年度の目標{r['目標値(市町数)']}市町に対する"
            f"達成率は{r['達成率(%)']:.0f}%"
        )
        if r["評価"] == BASE_YEAR_RATING_JA:
            parts.append(head + "です（最初の調査年度で、目安の起点のため評価はしません）。")
        else:
            parts.append(
                head + f"、今年度の目安（{_count(r['今年度の目安(市町数)'])}市町）に照らした評価は「{r['評価']}」です。"
            )
    parts.append(
        "評価は、最初の調査年度の実績から目標年度の目標値までを直線で結んだ「今年度の目安」に対する実績の割合によります。"
    )
    return "".join(parts)


def projection(counts_by_year: dict[int, dict], target: Target) -> tuple[list[int], list[float]]:
    """From the latest actual, the observed trend (least-squares slope per year) extended to the target year."""
    import numpy as np

    key = INDICATORS[target.indicator][1]
    years = sorted(counts_by_year)
    y = np.array([counts_by_year[t][key] for t in years], dtype=float)
    if len(years) < 2:
        return [years[-1], target.target_year], [float(y[-1])] * 2
    slope = float(np.polyfit(np.array(years, dtype=float), y, 1)[0])
    xs = [years[-1], max(target.target_year, years[-1])]
    return xs, [float(y[-1]), float(y[-1] + slope * (xs[1] - xs[0]))]


__all__ = [
    "DEFAULT_RATING",
    "INDICATORS",
    "NO_TARGETS_JA",
    "Target",
    "TargetError",
    "parse_targets",
    "progress_sentence_ja",
    "progress_table",
    "projection",
    "rate",
    "rating_thresholds",
]
