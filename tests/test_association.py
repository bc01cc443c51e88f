"""The per-year association table and the cross-year hazard table on the sample."""

import dataclasses
import math

import numpy as np
import pytest

from analysis import association, tables
from analysis.models import firth_logit
from analysis.panel import build_panel, cross_section


@pytest.fixture(scope="module")
def panel(sample, book):
    return build_panel(sample, book)


@pytest.fixture(scope="module")
def assoc(panel, book):
    return association.association_table(cross_section(panel, 2025), book)


def test_association_rows_agree_with_the_crude_table(assoc, panel, book):
    crude = tables.measure_by_full_table(cross_section(panel, 2025), book)
    assert list(assoc["measure"]) == book.support_measures
    assert (assoc["n_exposed"].to_numpy() == crude["活用あり(市町数)"].to_numpy()).all()
    assert np.allclose(assoc["rd"], assoc["rate_exposed"] - assoc["rate_unexposed"])
    assert np.allclose(100 * assoc["rate_exposed"], crude["全項目実施率・活用あり(%)"], atol=0.05)
    assert ((assoc["rd_lower"] <= assoc["rd"]) & (assoc["rd"] <= assoc["rd_upper"])).all()
    assert (assoc["p_holm"] >= assoc["p_lr"] - 1e-12).all() and (assoc["p_bh"] >= assoc["p_lr"] - 1e-12).all()
    assert assoc["mdd"].between(0.2, 0.8).all()


def test_adjusted_odds_ratio_is_the_firth_fit(assoc, panel, book):
    frame = association._model_frame(cross_section(panel, 2025), book.support_measures, ["log_population", "kaso"])
    fit = firth_logit("y ~ sup_study_group + log_population + kaso", frame.dropna(subset=["y", "sup_study_group"]))
    row = assoc.set_index("measure").loc["sup_study_group"]
    assert math.isclose(row["or"], math.exp(fit.params["sup_study_group"]), rel_tol=1e-9)
    assert math.isclose(row["p_lr"], fit.pvalues["sup_study_group"], rel_tol=1e-9)


def test_association_is_deterministic(assoc, panel, book):
    again = association.association_table(cross_section(panel, 2025), book)
    assert again.equals(assoc)


def test_japanese_table_and_narrative(assoc, book):
    ja = association.association_table_ja(assoc, book)
    assert {"差・下限(ポイント)", "差・上限(ポイント)", "Holm調整p値"} <= set(ja.columns)
    # numbers stay numbers: the report table is numeric, formatted only at display
    assert ja["Holm調整p値"].dtype == float and ja["差(ポイント)"].dtype == float
    from analysis.display import display_frame

    shown, _ = display_frame(ja)
    assert "差の95%信頼区間(ポイント)" in shown.columns and "差・下限(ポイント)" not in shown.columns
    assert all("〜" in v for v in shown["差の95%信頼区間(ポイント)"])
    text = association.association_narrative_ja(assoc, 35)
    assert "関連" in text and "効果" in text and "検出力）が80%未満" in text
    assert "sup_" not in text


def test_missing_p_value_keeps_the_family_size():
    import pandas as pd

    p = pd.Series([0.01, float("nan"), 0.04])
    adj = association.adjust_keeping_family(p, methods=("holm",))
    # Holm over three hypotheses, the missing one counted as p = 1
    assert math.isnan(adj["holm"][1])
    assert math.isclose(adj["holm"][0], 0.03) and math.isclose(adj["holm"][2], 0.08)


def test_separation_is_said_in_words(book):
    import pandas as pd

    # a measure used by exactly the municipalities that reach full implementation separates the data
    n = 30
    y = np.array([1] * 6 + [0] * 24, dtype=bool)
    frame = pd.DataFrame(
        {
            "full_implementation": pd.array(y, dtype="boolean"),
            "population": np.linspace(5e3, 9e4, n),
            "kaso": np.tile([0, 1], n // 2),
        }
    )
    for m in book.support_measures:
        frame[m] = pd.array(np.roll(y, 3) if m != "sup_advisor" else y, dtype="boolean")
    table = association.association_table(frame, book)
    row = table.set_index("measure").loc["sup_advisor"]
    # direction, the measure's Japanese label, never its variable name
    assert "分離" in row["note"] and "「アドバイザー派遣」" in row["note"] and "無限大" in row["note"]
    assert "sup_advisor" not in row["note"] and row["separation_direction"] == 1
    assert math.isfinite(row["or"])


def test_negative_and_covariate_separation_are_said(book):
    import pandas as pd

    n = 30
    y = np.array([1] * 6 + [0] * 24, dtype=bool)

    def frame(kaso, workshop):
        f = pd.DataFrame(
            {"full_implementation": pd.array(y, dtype="boolean"), "population": np.linspace(5e3, 9e4, n), "kaso": kaso}
        )
        for m in book.support_measures:
            f[m] = pd.array(workshop if m == "sup_workshop" else np.roll(y, 3), dtype="boolean")
        return association.association_table(f, book).set_index("measure")

    # only municipalities without the workshop reach it: the plain-ML odds ratio would be 0
    table = frame(np.tile([0, 1], n // 2), ~y)
    assert "「ワークショップ（孤独・孤立対策）」" in table.loc["sup_workshop", "note"]
    assert "オッズ比が0" in table.loc["sup_workshop", "note"]
    # only non-kaso municipalities reach it: the covariate separates, and that is said too
    table = frame((~y).astype(int), np.roll(y, 3))
    note = table.loc["sup_study_group", "note"]
    assert "共変量（" in note and "過疎地域指定）でもデータが分離" in note


def test_interval_display_says_an_unbounded_side_in_words():
    from analysis.display import format_interval

    assert format_interval(17.7, float("inf"), "ratio") == "17.70〜（上限なし）"
    assert format_interval(0.0, 0.5, "ratio") == "（下限なし）〜0.50"
    assert format_interval(-28.0, 30.0, "pct") == "−28.0〜30.0"
    assert format_interval(float("nan"), 2.0, "ratio") == "（計算できず）〜2.00"


def test_hazard_table_uses_the_lr_test_when_events_are_few(panel, book):
    haz = association.hazard_table(panel, book, n_boot=199)
    assert (haz["n_events"] < association.FEW_EVENTS).all() and (haz["primary"] == "lr").all()
    assert np.allclose(haz["p_primary"], haz["p_lr"])
    assert haz["n_clusters"].eq(34).all()  # one municipality was already fully implementing in FY2021


def test_missing_outcome_is_censored_not_not_yet(book):
    """A municipality with a missing outcome leaves the risk set; it is never an at-risk non-event."""
    import pandas as pd
    from reader_invariants import random_panel

    panel = random_panel(np.random.default_rng(5), book, 30, 5)
    code = panel["code"].iloc[0]
    rows = panel["code"] == code
    first = panel.loc[rows, "fiscal_year"].min()
    for i in book.main_items:  # not implemented in the first year, unknown in the third
        panel.loc[rows & (panel["fiscal_year"] == first), i] = False
        panel.loc[rows & (panel["fiscal_year"] == first + 2), i] = pd.NA
    from analysis.panel import add_outcome

    panel = add_outcome(panel.drop(columns=["full_implementation", "jusou"]), book)
    counts = {}
    pp = association.hazard_frame(panel, book, counts=counts)
    years = sorted(pp.loc[pp["code"] == code, "fiscal_year"])
    assert first + 2 not in years and first + 3 not in years
    assert counts["censored_missing"] >= 1
    text = association.hazard_sample_ja(counts, 5)
    assert "無回答" in text


def test_evalues_and_hazard_intervals_are_reported(assoc, panel, book):
    """E-values beside each adjusted odds ratio (as sensitivity.evalue_or gives them), and a
    profile interval for every hazard odds ratio; the methods quote the measured test sizes."""
    from analysis.sensitivity import evalue_or

    for _, r in assoc.iterrows():
        ev = evalue_or(r["or"], r["or_lower"], r["or_upper"], rare=bool(r["evalue_rare"]))
        assert math.isclose(r["evalue"], ev.point) and math.isclose(r["evalue_ci"], ev.ci)
    ja = association.association_table_ja(assoc, book)
    assert {"E値(推定値)", "E値(信頼限界)"} <= set(ja.columns)
    assert "E値" in association.association_narrative_ja(assoc, 35)
    haz = association.hazard_table(panel, book, n_boot=99)
    assert haz["or_lower"].notna().all() and (haz["or_lower"] <= haz["or"]).all()
    assert ((haz["or"] <= haz["or_upper"]) | haz["or_upper"].isna()).all()
    assert haz["evalue"].ge(1).all()
    text = " ".join(association.hazard_methods_detail_ja("人口（対数）・過疎地域指定", 35, 6))
    assert "尤度比検定で3.0%" in text and "ブートストラップで7.3%" in text


def test_firth_logit_accepts_the_readers_nullable_frames(panel):
    """The obvious first call on the reader's panel (nullable booleans) works without casting."""
    year = panel[panel["fiscal_year"] == 2025].assign(log_population=lambda f: np.log(f["population"]))
    fit = firth_logit("full_implementation ~ sup_advisor + log_population + kaso", year)
    assert fit.nobs == 35


def test_result_objects_record_what_produced_them(panel, book):
    year = cross_section(panel, 2025)
    a = association.analyse_year(year, book, ["log_population", "kaso", "aging_rate"], exposure_lag=0)
    assert a.spec["covariates"] == ["log_population", "kaso", "aging_rate"] and a.facts["fully implementing"] == 7
    assert "sup_advisor" in a.summary() and "<table" in a._repr_html_()
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.kind = "changed"  # type: ignore[misc]
    h = association.analyse_hazard(panel, book, n_boot=49)
    assert h.facts["risk set"]["left_censored"] == 1 and "49 Rademacher draws" in h.spec["bootstrap"]
    assert sum(int(v.split(" of ")[0]) for v in h.facts["events per year"].values()) == int(h.table["n_events"].max())
    fit = firth_logit(
        "y ~ sup_advisor + log_population + kaso",
        association._model_frame(year, book.support_measures, ["log_population", "kaso"]).dropna(),
    )
    assert "Firth logistic regression" in fit.summary() and "<table" in fit._repr_html_()
