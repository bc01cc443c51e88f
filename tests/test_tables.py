import pandas as pd
import pytest

from analysis import tables
from analysis.panel import add_lags, add_outcome, build_panel, cross_section


@pytest.fixture(scope="module")
def panel(sample, book):
    return build_panel(sample, book)


def test_full_implementation_is_all_main_items(book):
    items = book.main_items
    rows = [
        dict.fromkeys(items, True),
        {**dict.fromkeys(items, True), items[0]: False},
        {**dict.fromkeys(items, True), items[1]: None},
        {**dict.fromkeys(items, None), items[2]: False},
    ]
    frame = (
        pd.DataFrame(rows).astype("boolean").assign(jusou_status=["implemented", None, "preparing", "not_implemented"])
    )
    out = add_outcome(frame, book)

    def as_list(s):
        return [None if pd.isna(v) else bool(v) for v in s]

    assert as_list(out["full_implementation"]) == [True, False, None, False]
    assert as_list(out["jusou"]) == [True, None, False, False]


def test_status_table_matches_the_seed_layout(panel, book):
    t = tables.status_table(cross_section(panel, 2025), book)
    counts = dict(zip(t["区分"], t["市町数"], strict=False))
    assert counts["重層的支援体制整備事業を実施済"] == 13
    assert counts["包括的な支援体制の整備に関する指針（厚労省）の主要項目を全て実施"] == 7
    assert counts["回答市町数"] == 35
    assert (
        counts["重層的支援体制整備事業を実施済"]
        + counts["重層的支援体制整備事業の移行準備中"]
        + counts["重層的支援体制整備事業は未実施"]
        == 35
    )


def test_measure_tables_are_consistent(panel, book):
    year = cross_section(panel, 2025)
    cross = tables.measure_by_full_table(year, book)
    support = tables.support_table(year, book)
    assert (cross["活用あり(市町数)"].to_numpy() == support["活用市町数"].to_numpy()).all()
    assert ((cross["うち全項目実施(活用あり)"] + cross["うち全項目実施(活用なし)"]) == 7).all()
    assert next(iter(support["施策の視点"].unique())).startswith("包括的支援体制構築支援")
    items = tables.main_items_table(year, book)
    assert (items["実施市町数"] >= 7).all() and len(items) == 8


def test_lag_is_previous_fiscal_year(panel):
    a = panel[(panel["code"] == "992011")].set_index("fiscal_year")
    assert pd.isna(a.loc[2021, "sup_advisor_lag1"])
    assert a.loc[2025, "sup_advisor_lag1"] == a.loc[2024, "sup_advisor"]
    lagged = cross_section(panel, 2025, exposure_lag=1, measures=["sup_advisor"])
    assert lagged["sup_advisor"].tolist() == lagged["sup_advisor_lag1"].tolist()
    with pytest.raises(ValueError):
        cross_section(panel, 2025, exposure_lag=2)
    assert add_lags(panel[["code", "fiscal_year", "kaso"]], ["kaso"])["kaso_lag1"].notna().sum() == 4 * 35


def test_trend_table_uses_real_national_counts(panel):
    from analysis.report import national_counts

    t = tables.trend_table(panel, national_counts())
    row = t[t["年度"].str.startswith("FY2024")].iloc[0]
    assert row["重層実施市町村数・全国"] == 346
    assert row["重層実施割合・全国(%)"] == round(100 * 346 / 1741, 1)
    assert t.iloc[-1]["全国値の区分"] == "予定"


def test_transitions_count_every_municipality(panel, book):
    t = tables.transition_table(panel, book)
    per_period = t.groupby("期間")[[c for c in t.columns if c.startswith("翌年度")]].sum().sum(axis=1)
    assert (per_period == 35).all() and len(per_period) == 4
