"""Tests for analysis.crosstab against published reference values.

Every reference value below is quoted with its source and the tolerance
follows from the number of decimals printed there (half a unit in the last
printed place).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import crosstab
from analysis.crosstab import (
    TwoByTwo,
    adjust_pvalues,
    boschloo_exact_p,
    fisher_exact_p,
    measure_association_table,
    risk_difference,
    two_by_two,
)

# ---------------------------------------------------------------------------
# Newcombe (1998) Table II
# ---------------------------------------------------------------------------

# Newcombe RG. Interval estimation for the difference between independent
# proportions: comparison of eleven methods. Stat Med 1998;17:873-890,
# Table II, method 10 ("score", hybrid of Wilson intervals), 95% limits printed
# to 4 decimals, examples (a)-(h): (x1, n1, x0, n0) -> (lower, upper).
# Transcribed values cross-checked against two independent transcriptions of
# the same table: DeepPSP/DBCI test/test-data/newcombee.csv (row "wilson") and
# petelaud/ratesci tests/testthat/test3.R ("Newcombe RD example (d)").
NEWCOMBE_1998_TABLE_II_METHOD_10 = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),  # (a)
    ((9, 10, 3, 10), (0.1705, 0.8090)),  # (b)
    ((6, 7, 2, 7), (0.0582, 0.8062)),  # (c)
    ((5, 56, 0, 29), (-0.0381, 0.1926)),  # (d)
    ((0, 10, 0, 20), (-0.1611, 0.2775)),  # (e)
    ((0, 10, 0, 10), (-0.2775, 0.2775)),  # (f)
    ((10, 10, 0, 20), (0.6791, 1.0000)),  # (g)
    ((10, 10, 0, 10), (0.6075, 1.0000)),  # (h)
]
TOL_4DP = 5e-5  # half a unit in the 4th decimal


def _table(x1, n1, x0, n0):
    return TwoByTwo(a=x1, b=n1 - x1, c=x0, d=n0 - x0)


@pytest.mark.parametrize(("counts", "limits"), NEWCOMBE_1998_TABLE_II_METHOD_10)
def test_newcombe_method_10_matches_table_ii(counts, limits):
    rd = risk_difference(_table(*counts))
    x1, n1, x0, n0 = counts
    assert rd.estimate == pytest.approx(x1 / n1 - x0 / n0, abs=1e-15)
    assert rd.lower == pytest.approx(limits[0], abs=TOL_4DP)
    assert rd.upper == pytest.approx(limits[1], abs=TOL_4DP)
    assert rd.method == "newcombe" and rd.conf_level == pytest.approx(0.95)


# Fagerland MW, Lydersen S, Laake P. Recommended confidence intervals for two
# independent binomial proportions. Stat Methods Med Res 2015;24(2):224-254,
# worked example (Perondi et al. 2004: 7/34 vs 1/34), limits printed to 2
# decimals (as quoted in statsmodels' test_proportion.py::test_confint_2indep).
FAGERLAND_2015_PERONDI = (7, 34, 1, 34)
TOL_2DP = 5e-3


def test_newcombe_matches_fagerland_2015_example():
    rd = risk_difference(_table(*FAGERLAND_2015_PERONDI))
    assert rd.lower == pytest.approx(0.019, abs=TOL_2DP)
    assert rd.upper == pytest.approx(0.34, abs=TOL_2DP)


def test_exact_unconditional_matches_fagerland_2015_chan_zhang():
    # Same source, "Chan-Zhang exact unconditional": 0.019 to 0.36.
    rd = risk_difference(_table(*FAGERLAND_2015_PERONDI), method="exact")
    assert rd.lower == pytest.approx(0.019, abs=TOL_2DP)
    assert rd.upper == pytest.approx(0.36, abs=TOL_2DP)


def test_exact_unconditional_agrees_with_independent_implementation():
    # Not a publication: DeepPSP/DBCI test/test-data/example-56-70-vs-48-80.csv,
    # row "chan-zhang", 0.0382 to 0.3453 (4 decimals) - an independent
    # implementation of the same method, used as a cross-check.
    rd = risk_difference(_table(56, 70, 48, 80), method="exact")
    assert rd.lower == pytest.approx(0.0382, abs=TOL_4DP)
    assert rd.upper == pytest.approx(0.3453, abs=TOL_4DP)


def test_exact_interval_is_wider_than_newcombe_at_small_n():
    # 7 of 10 supported vs 7 of 25 unsupported municipalities
    tab = _table(7, 10, 7, 25)
    newc, exact = risk_difference(tab), risk_difference(tab, method="exact")
    assert exact.lower <= newc.lower and exact.upper >= newc.upper
    assert exact.lower < exact.estimate < exact.upper


def test_risk_difference_empty_group_is_nan():
    rd = risk_difference((0, 0, 3, 5))
    assert math.isnan(rd.estimate) and math.isnan(rd.lower) and math.isnan(rd.upper)
    assert rd.risk_unexposed == pytest.approx(3 / 8)


def test_risk_difference_rejects_bad_input():
    with pytest.raises(ValueError):
        risk_difference((1, 2, 3))
    with pytest.raises(ValueError):
        risk_difference((1, -2, 3, 4))
    with pytest.raises(ValueError):
        risk_difference((1, 2, 3, 4), method="wald")


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    n1=st.integers(1, 41),
    n0=st.integers(1, 41),
    data=st.data(),
)
def test_newcombe_interval_properties(n1, n0, data):
    x1 = data.draw(st.integers(0, n1))
    x0 = data.draw(st.integers(0, n0))
    rd = risk_difference((x1, n1 - x1, x0, n0 - x0))
    assert -1.0 <= rd.lower <= rd.estimate <= rd.upper <= 1.0
    # swapping the groups mirrors the interval
    flipped = risk_difference((x0, n0 - x0, x1, n1 - x1))
    assert flipped.lower == pytest.approx(-rd.upper, abs=1e-12)
    assert flipped.upper == pytest.approx(-rd.lower, abs=1e-12)


# ---------------------------------------------------------------------------
# Fisher and Boschloo
# ---------------------------------------------------------------------------


def test_fisher_tea_tasting():
    # Fisher's tea-tasting table [[3, 1], [1, 3]] as presented in Agresti A.,
    # Categorical Data Analysis, 2nd ed. (2002), Table 3.8: one-sided P = 0.243,
    # two-sided P = 0.486; R's fisher.test(TeaTasting, alternative = "greater")
    # prints 0.2429. Both are exact hypergeometric sums, 17/70 and 34/70, so
    # they are also checked to machine precision.
    assert fisher_exact_p([[3, 1], [1, 3]]) == pytest.approx(0.4857, abs=TOL_4DP)
    assert fisher_exact_p([[3, 1], [1, 3]]) == pytest.approx(34 / 70, rel=1e-12)
    assert fisher_exact_p([[3, 1], [1, 3]], alternative="greater") == pytest.approx(0.2429, abs=TOL_4DP)
    assert fisher_exact_p(TwoByTwo(3, 1, 1, 3), alternative="greater") == pytest.approx(17 / 70, rel=1e-12)


def test_fisher_good_hardin_drug_example():
    # Good PI, Hardin JW. Common Errors in Statistics (and How to Avoid Them),
    # 4th ed. (Wiley 2012), Sec. "Categorical data", Table 6.4: response 9/10 on
    # drug B vs 5/10 on drug A; "Fisher's Exact Test yields a one-sided p-value of
    # only 7%" (printed to whole percent -> tolerance 0.005).
    p = fisher_exact_p(TwoByTwo(a=9, b=1, c=5, d=5), alternative="greater")
    assert p == pytest.approx(0.07, abs=0.005)


def test_fisher_empty_group_is_nan():
    assert math.isnan(fisher_exact_p((0, 0, 4, 5)))


def test_boschloo_matches_scipy_documented_example():
    # scipy.stats.boschloo_exact documentation example (data of Saari et al.,
    # Hum Resour Manage 2004;43:395-407): 74/117 professors vs 31/63 scientists
    # very satisfied, alternative "greater" -> printed p = 0.0355. The doctest
    # output is cut at 4 decimals (the value is 0.03556...), so the tolerance is
    # one unit in the 4th decimal above the printed value.
    p = boschloo_exact_p(TwoByTwo(a=74, b=43, c=31, d=32), alternative="greater")
    assert 0.0355 <= p < 0.0356


def test_boschloo_two_sided_runs_at_small_n():
    p = boschloo_exact_p(_table(7, 10, 7, 25))
    assert 0 < p < 1


# ---------------------------------------------------------------------------
# multiplicity: Holm and Benjamini-Hochberg
# ---------------------------------------------------------------------------

# Benjamini Y, Hochberg Y. Controlling the false discovery rate. J R Stat Soc B
# 1995;57:289-300, Sec. 4 example (Neuhaus et al. 1992 thrombolysis trial):
# 15 p-values; at q = 0.05 the BH procedure rejects the four smallest, the
# Bonferroni-type FWER control only three. The BH-adjusted values below are
# printed in the scipy.stats.false_discovery_control documentation, which
# reproduces this example.
BH_1995_P = [
    0.0001,
    0.0004,
    0.0019,
    0.0095,
    0.0201,
    0.0278,
    0.0298,
    0.0344,
    0.0459,
    0.3240,
    0.4262,
    0.5719,
    0.6528,
    0.7590,
    1.000,
]
BH_1995_ADJUSTED = [
    0.0015,
    0.003,
    0.0095,
    0.035625,
    0.0603,
    0.06385714,
    0.06385714,
    0.0645,
    0.0765,
    0.486,
    0.58118182,
    0.714875,
    0.75323077,
    0.81321429,
    1.0,
]


def test_bh_matches_benjamini_hochberg_1995():
    adj = adjust_pvalues(BH_1995_P)
    np.testing.assert_allclose(adj["fdr_bh"], BH_1995_ADJUSTED, atol=5e-9)  # printed to 8 dp
    rejected = adj["fdr_bh"].to_numpy() <= 0.05
    assert rejected.tolist() == [True] * 4 + [False] * 11


def test_holm_on_benjamini_hochberg_1995_example():
    # Holm S. Scand J Stat 1979;6:65-70: adjusted p_(i) = max_{j<=i} min(1, (m-j+1) p_(j)).
    # Hand computation for the 15 p-values above: 15*0.0001, 14*0.0004,
    # 13*0.0019, 12*0.0095, 11*0.0201, 10*0.0278, then running maxima.
    expected = [0.0015, 0.0056, 0.0247, 0.114, 0.2211, 0.278, 0.278, 0.278, 0.3213, 1, 1, 1, 1, 1, 1]
    adj = adjust_pvalues(BH_1995_P, methods=("holm",))
    np.testing.assert_allclose(adj["holm"], expected, atol=1e-12)
    # three rejections at 0.05, as for the FWER procedure in the 1995 paper
    assert int((adj["holm"] <= 0.05).sum()) == 3


def test_adjust_pvalues_is_nan_safe_and_order_preserving():
    rng = np.random.default_rng(1)
    order = rng.permutation(len(BH_1995_P))
    shuffled = np.array(BH_1995_P)[order]
    with_nan = np.insert(shuffled, [0, 7], np.nan)  # two untestable measures
    adj = adjust_pvalues(with_nan)
    assert adj.iloc[[0, 8]].isna().all().all()
    kept = adj.drop(index=[0, 8]).reset_index(drop=True)
    # family size stays 15: NaNs are not counted
    np.testing.assert_allclose(kept["fdr_bh"], np.array(BH_1995_ADJUSTED)[order], atol=5e-9)
    ref_holm = adjust_pvalues(shuffled, methods=("holm",))["holm"]
    np.testing.assert_allclose(kept["holm"], ref_holm, atol=1e-15)


def test_adjust_pvalues_keeps_series_index_and_handles_all_nan():
    s = pd.Series([0.01, np.nan, 0.04], index=["x", "y", "z"])
    adj = adjust_pvalues(s)
    assert list(adj.index) == ["x", "y", "z"]
    assert adj.loc["x", "holm"] == pytest.approx(0.02)
    assert adjust_pvalues([np.nan, np.nan]).isna().all().all()
    with pytest.raises(ValueError):
        adjust_pvalues([0.5, 1.2])


# ---------------------------------------------------------------------------
# two_by_two and the per-measure table
# ---------------------------------------------------------------------------


def test_two_by_two_counts_and_drops_missing():
    exposed = [True, True, False, False, True, None, np.nan, 1, 0]
    outcome = [True, False, True, False, np.nan, True, False, 1.0, 0.0]
    tab = two_by_two(exposed, outcome)
    assert (tab.a, tab.b, tab.c, tab.d) == (2, 1, 1, 2)
    assert tab.n_dropped == 3
    assert tab.n == 6 and tab.n_exposed == 3 and tab.n_unexposed == 3
    np.testing.assert_array_equal(tab.as_array(), [[2, 1], [1, 2]])


def test_two_by_two_accepts_nullable_boolean():
    x = pd.Series([True, False, pd.NA, True], dtype="boolean")
    y = pd.Series([1, 0, 1, pd.NA], dtype="Int64")
    tab = two_by_two(x, y)
    assert (tab.a, tab.b, tab.c, tab.d, tab.n_dropped) == (1, 0, 0, 1, 2)


def test_two_by_two_rejects_non_binary_codes():
    with pytest.raises(ValueError, match="0/1"):
        two_by_two([0, 1, 2], [0, 1, 1])
    with pytest.raises(ValueError, match="0/1"):
        two_by_two(["yes", "no"], [0, 1])
    with pytest.raises(ValueError, match="length"):
        two_by_two([0, 1], [0, 1, 1])


def _prefecture_frame() -> pd.DataFrame:
    # 35 municipalities, 7 fully implementing (the size in the brief)
    outcome = np.array([1] * 7 + [0] * 28, dtype=float)
    m1 = np.array([1, 1, 1, 1, 1, 0, 0] + [1] * 5 + [0] * 23, dtype=float)  # 5/10 vs 2/25
    m2 = np.array([1, 0, 1, 0, 1, 0, 1] + [1, 0] * 14, dtype=float)
    m2[[3, 20]] = np.nan  # two unknowns
    m3 = np.zeros(35)  # nobody received it: untestable
    return pd.DataFrame({"full": outcome, "m1": m1, "m2": m2, "m3": m3})


def test_measure_association_table_contents():
    frame = _prefecture_frame()
    table = measure_association_table(frame, ["m2", "m1", "m3"], "full")
    assert table["measure"].tolist() == ["m2", "m1", "m3"]  # order given, not sorted
    assert list(table.columns) == [
        "measure",
        "n_exposed",
        "n_unexposed",
        "n_dropped",
        "events_exposed",
        "events_unexposed",
        "rate_exposed",
        "rate_unexposed",
        "rd",
        "rd_lower",
        "rd_upper",
        "p_fisher",
        "p_holm",
        "p_bh",
    ]
    row = table.set_index("measure").loc["m1"]
    assert (row.n_exposed, row.n_unexposed, row.events_exposed, row.events_unexposed) == (10, 25, 5, 2)
    rd = risk_difference(TwoByTwo(5, 5, 2, 23))
    assert row.rd == pytest.approx(0.5 - 0.08)
    assert (row.rd_lower, row.rd_upper) == pytest.approx((rd.lower, rd.upper))
    assert row.p_fisher == pytest.approx(fisher_exact_p([[5, 5], [2, 23]]))
    assert table.set_index("measure").loc["m2", "n_dropped"] == 2
    # m3 cannot be tested: NaN and excluded from the family of 2
    m3 = table.set_index("measure").loc["m3"]
    assert math.isnan(m3.p_fisher) and math.isnan(m3.p_holm) and math.isnan(m3.rd)
    p = table["p_fisher"].to_numpy()[:2]
    expected_holm = np.minimum(1, np.maximum.accumulate(np.sort(p) * [2, 1]))[np.argsort(np.argsort(p))]
    np.testing.assert_allclose(table["p_holm"].to_numpy()[:2], expected_holm)


def test_measure_association_table_is_deterministic_and_validates():
    frame = _prefecture_frame()
    t1 = measure_association_table(frame, ["m1", "m2"], "full", boschloo=True)
    t2 = measure_association_table(frame, ["m1", "m2"], "full", boschloo=True)
    pd.testing.assert_frame_equal(t1, t2)
    assert "p_boschloo" in t1.columns
    with pytest.raises(ValueError, match="duplicates"):
        measure_association_table(frame, ["m1", "m1"], "full")
    with pytest.raises(KeyError):
        measure_association_table(frame, ["m9"], "full")
    with pytest.raises(ValueError):
        measure_association_table(frame, ["full"], "full")


def test_measure_association_table_exact_ci_option():
    frame = _prefecture_frame()
    t = measure_association_table(frame, ["m1"], "full", ci_method="exact")
    rd = risk_difference(TwoByTwo(5, 5, 2, 23), method="exact")
    assert (t.loc[0, "rd_lower"], t.loc[0, "rd_upper"]) == pytest.approx((rd.lower, rd.upper))


# ---------------------------------------------------------------------------
# Chan-Zhang: non-convex acceptance sets, hull convention
# ---------------------------------------------------------------------------


def _tail(table, delta, lower_tail):
    x1, n1, x0, n0 = table
    return crosstab._ChanZhang(x1, n1, x0, n0).tail(delta, lower_tail)


def test_chan_zhang_reports_the_hull_of_a_non_convex_acceptance_set():
    # Issue 9: 0 of 10 supported vs 17 of 25 unsupported municipalities. The one-sided test for
    # the upper limit rejects from delta = -0.348 on, accepts again at about -0.2655 to -0.2625
    # (a table joins the region "at least as extreme" and the tail probability jumps), then
    # rejects. Stopping at the first rejection gave -0.348; the hull is about -0.2624.
    # Brute force (tail probability on a 0.0005 grid over [-1, 1]): the largest accepted value
    # is -0.2628, the smallest -0.8503; the lower limit is unaffected.
    counts = (0, 10, 17, 25)
    assert _tail(counts, -0.30, True) < 0.025 < _tail(counts, -0.264, True)  # non-convex
    rd = risk_difference(_table(*counts), method="exact")
    assert -0.2630 < rd.upper < -0.2620
    assert rd.lower == pytest.approx(-0.8505, abs=5e-4)
    assert rd.estimate == pytest.approx(-0.68)


@pytest.mark.parametrize("counts", [(7, 10, 7, 25), (2, 8, 1, 9), (6, 8, 3, 12)])
def test_chan_zhang_interval_contains_every_accepted_difference(counts):
    # Brute-force check on a 0.01 grid: every difference neither one-sided test rejects lies
    # inside the interval, and the limits themselves are within a grid step of accepted values.
    rd = risk_difference(_table(*counts), method="exact")
    grid = np.arange(-0.995, 1.0, 0.01)
    accepted = [d for d in grid if _tail(counts, d, True) > 0.025 and _tail(counts, d, False) > 0.025]
    assert rd.lower <= min(accepted) and max(accepted) <= rd.upper
    assert min(accepted) - rd.lower < 0.011 and rd.upper - max(accepted) < 0.011


def test_ci_method_follows_the_documented_rule():
    # assumptions log A6: Newcombe only when both groups exceed 200 (power.LARGE_GROUP)
    from analysis.power import LARGE_GROUP

    assert LARGE_GROUP == 200
    assert crosstab.ci_method_for(201, 201) == "newcombe"
    assert crosstab.ci_method_for(200, 1541) == "exact"  # one small group: exact
    assert crosstab.ci_method_for(150, 1591) == "exact"
    assert crosstab.ci_method_for(10, 25) == "exact"
    with pytest.raises(ValueError):
        crosstab.ci_method_for(-1, 5)


@pytest.mark.parametrize("counts", [(0, 10, 17, 25), (30, 90, 20, 89), (2, 120, 9, 59), (5, 5, 0, 6), (0, 5, 0, 7)])
def test_fast_exact_regions_equal_the_exact_statistic_everywhere(counts):
    # Issue 14: the regions "at least as extreme" sort clearly-apart tables with the closed-form
    # statistic and decide near-ties exactly. They must equal the regions computed with the exact
    # statistic for every table, including around delta = 0 and at the edges.
    cz = crosstab._ChanZhang(*counts)
    est = counts[0] / counts[1] - counts[2] / counts[3]
    deltas = np.unique(
        np.concatenate(
            [
                np.linspace(-1, 1, 41),
                [0.0, 1e-9, -1e-9, 1e-3, -1e-3, 1.0001e-3, est, est + 1e-7],
                est + np.geomspace(1e-6, 0.3, 15),
            ]
        ).clip(-1, 1)
    )
    for lower in (True, False):
        hybrid = cz.regions(deltas, lower)
        cz.hybrid = False
        exact = cz.regions(deltas, lower)
        cz.hybrid = True
        assert np.array_equal(hybrid, exact)


@pytest.mark.parametrize(
    "counts", [(0, 10, 17, 25), (12, 30, 4, 28), pytest.param((30, 90, 20, 89), marks=pytest.mark.full)]
)
def test_chan_zhang_stretches_have_constant_exact_regions(counts):
    # The change points are located by bisecting on the tables that change membership only;
    # every stretch returned must still carry the exact region found inside it.
    cz = crosstab._ChanZhang(*counts)
    est = counts[0] / counts[1] - counts[2] / counts[3]
    for edge, lower in ((1.0, True), (-1.0, False)):
        stretches = cz.stretches(est, edge, lower)
        assert len(stretches) > 3
        cz.hybrid = False
        for start, end, region in stretches:
            if abs(end - start) < 1e-6:
                continue
            probes = [start + 0.01 * (end - start), 0.5 * (start + end), end - 0.01 * (end - start)]
            assert (cz.regions(probes, lower) == region).all()
        cz.hybrid = True


# ---------------------------------------------------------------------------
# Chan-Zhang: the faster implementation reproduces the recorded limits bit for bit
# ---------------------------------------------------------------------------

_CZ_REFERENCE = json.loads((Path(__file__).parent / "data" / "chan_zhang_reference.json").read_text())["rows"]


def _cz_rows(keep):
    return [
        pytest.param(r, id=f"{r['kind']}-{r['x1']}/{r['n1']}-{r['x0']}/{r['n0']}") for r in _CZ_REFERENCE if keep(r)
    ]


def _assert_reproduces(row):
    limits = crosstab._chan_zhang_interval(row["x1"], row["n1"], row["x0"], row["n0"], row["alpha"])
    assert limits == (row["lower"], row["upper"])  # exact equality: the speed-up changes no bit


_RANDOM = [r for r in _CZ_REFERENCE if r["kind"] == "random"]


def _big(r) -> bool:
    """Two groups of 170 or more together: seconds per table (the full tier checks them)."""
    return r["n1"] + r["n0"] >= 170


@pytest.mark.parametrize(
    "row",
    _cz_rows(
        lambda r: (
            (r["kind"] == "sample" or (r["kind"] == "test" and not _big(r)))
            or (r["kind"] == "random" and _RANDOM.index(r) % 5 == 0)
        )
    ),
)
def test_chan_zhang_reproduces_the_recorded_limits(row):
    # Issue 14: limits recorded before the speed-up (tests/data/chan_zhang_reference.json, with the
    # commit they came from): the sample dataset's tables, this file's tables, random tables.
    _assert_reproduces(row)


@pytest.mark.full
@pytest.mark.parametrize("row", _cz_rows(lambda r: r["kind"] == "test" and _big(r)))
def test_chan_zhang_reproduces_the_recorded_limits_of_the_large_test_tables(row):
    _assert_reproduces(row)


@pytest.mark.slow
@pytest.mark.parametrize(
    "row", _cz_rows(lambda r: r["kind"] == "large" or (r["kind"] == "random" and _RANDOM.index(r) % 5 != 0))
)
def test_chan_zhang_reproduces_the_recorded_limits_everywhere(row):
    _assert_reproduces(row)


def test_exact_mle_python_and_numpy_bisections_agree_bit_for_bit():
    # _restricted_p0 bisects a few pairs in Python floats and more in numpy: the same steps, so the
    # same bits, including zero and full cells and deltas at and near the edges and zero.
    rng = np.random.default_rng(7)
    for n1, n0 in [(1, 1), (5, 7), (13, 22), (30, 17)]:
        x1, x0 = np.meshgrid(np.arange(n1 + 1), np.arange(n0 + 1), indexing="ij")
        x1, x0 = x1.ravel(), x0.ravel()
        deltas = np.concatenate([[-1.0, -0.999, -1e-9, 0.0, 1e-12, 0.5, 1.0], rng.uniform(-1, 1, 8)])
        for delta in deltas:
            delta = float(delta)
            many = crosstab._restricted_p0(x1, n1, x0, n0, delta)
            pairs = zip(x1.tolist(), x0.tolist(), strict=True)
            one_by_one = [crosstab._restricted_p0_one(a, n1 - a, c, n0 - c, delta) for a, c in pairs]
            assert np.array_equal(many, np.array(one_by_one), equal_nan=True)


def test_binomial_pmf_rows_take_logarithms_once_per_rate_with_the_same_bits():
    from scipy import special

    rng = np.random.default_rng(11)
    p = np.concatenate([[0.0, 1.0, 1e-300, 0.5, 1 - 1e-16], rng.random(2000)])
    for n in (1, 13, 22, 120):
        k = np.arange(n + 1)
        elementwise = np.exp(
            crosstab._log_choose(n)[1] + special.xlogy(k, p[:, None]) + special.xlog1py(n - k, -p[:, None])
        )
        assert np.array_equal(crosstab._binom_pmf_rows(n, p), elementwise)


def test_closed_form_with_distinct_b0_equals_the_direct_formula():
    # the cube of b is taken once per distinct b0 and gathered: the same bits as per table
    n1, n0 = 13, 22
    k1, k0 = np.meshgrid(np.arange(n1 + 1), np.arange(n0 + 1), indexing="ij")
    tables = crosstab._Tables(k1.ravel(), n1, k0.ravel(), n0)
    assert tables.b0_distinct is not None
    deltas = np.linspace(-1, 1, 401)[:, None]
    direct = crosstab._Tables(k1.ravel(), n1, k0.ravel(), n0)
    direct.b0_distinct = None
    assert np.array_equal(tables.closed_form(deltas), direct.closed_form(deltas), equal_nan=True)


@pytest.mark.parametrize("lookahead", [1, 2, 3, 4])
def test_bisection_with_lookahead_visits_the_same_midpoints(lookahead):
    # _bisect evaluates several levels per batch; the result must be the plain loop's
    def accepted(d):
        return np.sin(7 * np.asarray(d)) > 0.3

    for inside, outside, steps, tol in [(0.1, 1.0, 6, 0.0), (0.3, -1.0, 40, 1e-6), (0.2, 0.25, 40, 1e-6)]:
        lo, hi = inside, outside
        for _ in range(steps):
            mid = 0.5 * (lo + hi)
            if accepted(mid):
                lo = mid
            else:
                hi = mid
            if abs(lo - hi) < tol:
                break
        assert crosstab._bisect(inside, outside, accepted, steps, lookahead, tol) == (lo, hi)
