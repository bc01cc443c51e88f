"""The per-year association table and the cross-year hazard table on the sample."""
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
    frame = association._model_frame(cross_section(panel, 2025), book.support_measures)
    fit = firth_logit("y ~ sup_study_group + log_population + kaso", frame.dropna(subset=["y", "sup_study_group"]))
    row = assoc.set_index("measure").loc["sup_study_group"]
    assert math.isclose(row["or"], math.exp(fit.params["sup_study_group"]), rel_tol=1e-9)
    assert math.isclose(row["p_lr"], fit.pvalues["sup_study_group"], rel_tol=1e-9)


def test_association_is_deterministic(assoc, panel, book):
    again = association.association_table(cross_section(panel, 2025), book)
    assert again.equals(assoc)


def test_japanese_table_and_narrative(assoc, book):
    ja = association.association_table_ja(assoc, book)
    assert "差の95%信頼区間" in ja.columns and "Holm調整p値" in ja.columns
    text = association.association_narrative_ja(assoc, 35)
    assert "関連" in text and "効果" in text and "検出できる最小の差" in text


def test_separation_is_said_in_words(book):
    import pandas as pd

    # a measure used by exactly the municipalities that reach full implementation separates the data
    n = 30
    y = np.array([1] * 6 + [0] * 24, dtype=bool)
    frame = pd.DataFrame({"full_implementation": pd.array(y, dtype="boolean"), "population": np.linspace(5e3, 9e4, n),
                          "kaso": np.tile([0, 1], n // 2)})
    for m in book.support_measures:
        frame[m] = pd.array(np.roll(y, 3) if m != "sup_advisor" else y, dtype="boolean")
    table = association.association_table(frame, book, n_sim=200)
    note = table.set_index("measure").loc["sup_advisor", "note"]
    assert "分離" in note and math.isfinite(table.set_index("measure").loc["sup_advisor", "or"])


def test_hazard_table_uses_the_lr_test_when_events_are_few(panel, book):
    haz = association.hazard_table(panel, book, n_boot=199)
    assert (haz["n_events"] < association.FEW_EVENTS).all() and (haz["primary"] == "lr").all()
    assert np.allclose(haz["p_primary"], haz["p_lr"])
    assert haz["n_clusters"].eq(34).all()  # one municipality was already fully implementing in FY2021
