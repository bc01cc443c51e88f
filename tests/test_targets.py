"""Numeric targets of the prefecture's plan: parsing, progress, rating, projection, reports."""

import math

import pytest

from analysis import report, targets
from analysis.panel import build_panel

COUNTS = {
    2021: {"n_jusou": 2, "n_full": 1},
    2022: {"n_jusou": 4, "n_full": 3},
    2023: {"n_jusou": 7, "n_full": 5},
    2024: {"n_jusou": 10, "n_full": 6},
    2025: {"n_jusou": 13, "n_full": 7},
}
GOALS = [targets.Target("jusou", 2027, 20), targets.Target("full", 2027, 15)]


def test_progress_against_the_straight_path_to_the_target():
    table = targets.progress_table(GOALS, COUNTS, 2025).set_index("指標")
    j = table.loc["重層的支援体制整備事業の実施市町数"]
    # 13 of 20 = 65 %; the path from 2 (FY2021) to 20 (FY2027) is at 2 + 18 * 4/6 = 14 in FY2025
    assert j["実績(市町数)"] == 13 and math.isclose(j["達成率(%)"], 65.0)
    assert j["今年度の目安(市町数)"] == 14.0 and j["前年度からの増減(市町数)"] == 3
    assert j["評価"] == "概ね順調"  # 13 / 14 ≥ 2/3
    f = table.loc["指針の主要項目を全て実施した市町数"]
    assert f["今年度の目安(市町数)"] == pytest.approx(1 + 14 * 4 / 6, abs=0.05) and f["評価"] == "概ね順調"


def test_the_base_year_is_not_rated():
    """The path starts at the first year's actual: rating that year would say 順調 by construction."""
    table = targets.progress_table(GOALS, COUNTS, 2021)
    assert list(table["評価"]) == [targets.BASE_YEAR_RATING_JA] * 2
    sentence = targets.progress_sentence_ja(table, 2021)
    assert "評価はしません" in sentence and "順調" not in sentence
    # the year after is rated again, and a whole number of municipalities reads without ".0"
    later = targets.progress_table(GOALS, COUNTS, 2025)
    assert targets.BASE_YEAR_RATING_JA not in set(later["評価"])
    assert "今年度の目安（14市町）" in targets.progress_sentence_ja(later, 2025)


@pytest.mark.parametrize("actual,label", [(14, "順調"), (10, "概ね順調"), (7, "やや遅れ"), (6, "遅れ")])
def test_rating_thresholds(actual, label):
    counts = {**COUNTS, 2025: {"n_jusou": actual, "n_full": 7}}
    table = targets.progress_table(GOALS[:1], counts, 2025)
    assert table["評価"].iloc[0] == label  # the path value is 14


def test_codebook_thresholds_accept_fractions(book):
    thresholds = targets.rating_thresholds(book)
    assert thresholds[1] == (pytest.approx(2 / 3), "概ね順調")
    assert targets.rate(2 / 3, thresholds) == "概ね順調"  # exactly two thirds is 概ね順調


@pytest.mark.parametrize(
    "raw,fragment",
    [
        ({"indicator": "jusou"}, "一覧"),
        ([{"indicator": "other", "target_year": 2027, "value": 3}], "指標"),
        ([{"indicator": "jusou", "target_year": "令和9", "value": 3}], "目標年度"),
        ([{"indicator": "jusou", "target_year": 2027, "value": 0}], "目標値"),
        ([{"indicator": "jusou", "target_year": 2027, "value": 3}] * 2, "2つ"),
    ],
)
def test_bad_targets_are_named(raw, fragment):
    with pytest.raises(targets.TargetError) as err:
        targets.parse_targets(raw)
    assert fragment in err.value.ja and err.value.en


def test_projection_extends_the_trend_from_the_latest_actual():
    xs, ys = targets.projection(COUNTS, GOALS[0])
    assert xs == [2025, 2027] and ys[0] == 13 and ys[1] == pytest.approx(13 + 2 * 2.8)


def test_reports_show_progress_or_how_to_add_targets(sample, book):
    panel = build_panel(sample, book)
    rep = report.build_fiscal_year_report(sample, panel, book, 2025)
    assert rep.tables["progress"]["目標値(市町数)"].tolist() == [20, 15]
    assert "65%" in rep.progress_text and "概ね順調" in rep.progress_text
    trends = report.build_trends_report(sample, panel, book, n_boot=19)
    assert "targets" in trends.figures and trends.tables["progress"]["実績(市町数)"].tolist() == [13, 7]
    from dataclasses import replace

    bare = replace(sample, meta={k: v for k, v in sample.meta.items() if k != "targets"})
    rep = report.build_fiscal_year_report(bare, panel, book, 2025)
    assert "progress" not in rep.tables and rep.progress_text == targets.NO_TARGETS_JA
