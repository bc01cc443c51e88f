"""Tests for analysis.power: simulated Fisher power and minimal detectable difference."""

from __future__ import annotations

import math
import time
from itertools import pairwise, product

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.power import (
    PowerEstimate,
    exact_power,
    fisher_pvalue_matrix,
    minimal_detectable_difference,
    power_curve,
    power_sentence_ja,
    power_table,
    simulated_power,
)


def _independent_exact_power(n1, n0, p1, p0, alpha=0.05):
    """Exact power written independently of the module: loop over all tables,
    scipy's own fisher_exact, binomial probabilities, reject when p <= alpha."""
    total = 0.0
    for a, c in product(range(n1 + 1), range(n0 + 1)):
        p = stats.fisher_exact([[a, n1 - a], [c, n0 - c]]).pvalue
        if p <= alpha:
            total += stats.binom.pmf(a, n1, p1) * stats.binom.pmf(c, n0, p0)
    return total


@pytest.mark.parametrize(("n1", "n0"), [(7, 28), (12, 9), (41, 1), (0, 5), (20, 21)])
def test_pvalue_matrix_matches_scipy_fisher_exact(n1, n0):
    mat = fisher_pvalue_matrix(n1, n0)
    assert mat.shape == (n1 + 1, n0 + 1)
    ref = np.array(
        [[stats.fisher_exact([[a, n1 - a], [c, n0 - c]]).pvalue for c in range(n0 + 1)] for a in range(n1 + 1)]
    )
    np.testing.assert_allclose(mat, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("n1", "n0", "p1", "p0"),
    [
        (7, 28, 0.6, 0.2),  # 7 supported vs 28 not, the brief's prefecture size
        (10, 25, 0.5, 0.2),
        (20, 21, 0.55, 0.25),
        (17, 17, 0.3, 0.3),  # null: power = actual type I error (< 0.05)
        (35, 6, 0.4, 0.9),
    ],
)
def test_simulated_power_within_3_mcse_of_exact_enumeration(n1, n0, p1, p0):
    est = simulated_power(n1, n0, p1, p0, n_sim=4000, seed=11)
    exact = _independent_exact_power(n1, n0, p1, p0)
    assert isinstance(est, PowerEstimate) and est.n_sim == 4000
    assert est.mcse == pytest.approx(math.sqrt(est.power * (1 - est.power) / 4000))
    se_true = math.sqrt(exact * (1 - exact) / 4000)  # SE at the true power (never 0 here)
    assert abs(est.power - exact) <= 3 * se_true
    # the module's own enumeration agrees with the independent one
    assert exact_power(n1, n0, p1, p0) == pytest.approx(exact, abs=1e-12)


# Published exact Fisher power values: test suite of the R package pwrss
# (Bulus M., pwrss, tests/testthat/test-proportions.fisher.R; the package
# states its Fisher power was validated against PASS and G*Power), two-sided,
# alpha = 0.05, printed to 9 and 7 decimals:
#   prob1 = 0.75, prob2 = 0.25, n = 18 + 18 -> power 0.833005149 (sample size
#     solved for power 0.80, so n = 18 is the smallest per-group n reaching it)
#   prob1 = 2/3,  prob2 = 1/3,  n = 39 + 39 -> power 0.8008238
PWRSS_FISHER = [((18, 18, 0.75, 0.25), 0.833005149, 5e-10), ((39, 39, 2 / 3, 1 / 3), 0.8008238, 5e-8)]


@pytest.mark.parametrize(("args", "published", "tol"), PWRSS_FISHER)
def test_power_matches_published_pwrss_values(args, published, tol):
    assert exact_power(*args) == pytest.approx(published, abs=tol)
    est = simulated_power(*args, n_sim=4000, seed=5)
    assert abs(est.power - published) <= 3 * math.sqrt(published * (1 - published) / 4000)


def test_sample_size_boundary_matches_pwrss():
    # pwrss solves n = 18 per group for 0.75 vs 0.25 at 80% power, so n = 17
    # falls short; the exact minimal detectable difference must straddle 0.50.
    assert exact_power(17, 17, 0.75, 0.25) < 0.8 <= exact_power(18, 18, 0.75, 0.25)
    assert minimal_detectable_difference(18, 18, 0.25, method="exact") <= 0.50
    assert minimal_detectable_difference(17, 17, 0.25, method="exact") > 0.50


def test_statmod_documented_example_loosely():
    # statmod::power.fisher.test documentation: power.fisher.test(0.5, 0.9, 20, 20)
    # "# 70% chance of detecting difference" - itself a 100-replicate simulation,
    # so the tolerance is 3 binomial SEs of that run: 3 * sqrt(.7 * .3 / 100) = 0.137.
    assert abs(exact_power(20, 20, 0.5, 0.9) - 0.70) <= 3 * math.sqrt(0.7 * 0.3 / 100)


def test_determinism_across_n_jobs():
    a = simulated_power(20, 15, 0.6, 0.3, n_sim=2500, seed=123, n_jobs=1)
    b = simulated_power(20, 15, 0.6, 0.3, n_sim=2500, seed=123, n_jobs=2)
    c = simulated_power(20, 15, 0.6, 0.3, n_sim=2500, seed=123, n_jobs=1)
    assert a == b == c
    m1 = minimal_detectable_difference(10, 25, 0.2, seed=7, n_jobs=1)
    m2 = minimal_detectable_difference(10, 25, 0.2, seed=7, n_jobs=2)
    assert m1 == m2


def test_simulated_power_matches_curve_point():
    # common random numbers: the curve and the single-point call use the same draws
    curve = power_curve(10, 25, 0.2, n_sim=1500, seed=3)
    row = curve.iloc[29]  # difference 0.30
    assert row["difference"] == pytest.approx(0.30)
    single = simulated_power(10, 25, 0.5, 0.2, n_sim=1500, seed=3)
    assert single.power == row["power"]


def test_mdd_decreases_with_sample_size():
    sizes = [(8, 8), (12, 12), (24, 24), (40, 40)]
    mdds = [minimal_detectable_difference(n1, n0, 0.2, seed=1) for n1, n0 in sizes]
    assert all(np.isfinite(mdds))
    assert all(later < earlier for earlier, later in pairwise(mdds))
    # unbalanced splits of 35 municipalities: more balance, smaller MDD
    unbalanced = [minimal_detectable_difference(n1, 35 - n1, 0.2, seed=1) for n1 in (5, 10, 17)]
    assert unbalanced[0] > unbalanced[1] > unbalanced[2]


def test_mdd_is_first_grid_point_reaching_target():
    curve = power_curve(10, 25, 0.2, seed=9)
    mdd = minimal_detectable_difference(10, 25, 0.2, seed=9)
    above = curve[curve["power"] >= 0.8]
    assert mdd == above["difference"].iloc[0]
    i = curve.index[curve["difference"] == mdd][0]
    assert (curve["power"].iloc[:i] < 0.8).all()
    # the grid runs in steps of 0.01 up to 1 - base rate
    assert curve["difference"].iloc[0] == pytest.approx(0.01)
    assert curve["difference"].iloc[-1] == pytest.approx(0.80)


def test_grid_includes_largest_possible_difference():
    curve = power_curve(10, 25, 1 / 3, method="exact")
    np.testing.assert_allclose(np.diff(curve["difference"].to_numpy()[:-1]), 0.01, atol=1e-9)
    assert curve["difference"].iloc[-2] == pytest.approx(0.66)
    assert curve["difference"].iloc[-1] == pytest.approx(2 / 3)
    assert curve["exposed_rate"].iloc[-1] == pytest.approx(1.0)
    assert (curve["mcse"] == 0).all()


def test_mdd_refinement_and_exact_method_agree_roughly():
    sim = minimal_detectable_difference(10, 25, 0.2, seed=2, refine=True)
    exact = minimal_detectable_difference(10, 25, 0.2, method="exact", refine=True)
    assert abs(sim - exact) < 0.03  # Monte Carlo error of a few points at most
    grid = minimal_detectable_difference(10, 25, 0.2, seed=2)
    assert grid - 0.01 <= sim <= grid
    assert exact_power(10, 25, 0.2 + exact, 0.2) == pytest.approx(0.8, abs=1e-3)


def test_not_reachable_returns_nan():
    assert math.isnan(minimal_detectable_difference(2, 3, 0.5))
    assert math.isnan(minimal_detectable_difference(0, 30, 0.2))
    assert math.isnan(minimal_detectable_difference(10, 25, 1.0))
    # 7 of 35 at base rate 0.2: a decrease to 0 cannot reach 80% power
    assert math.isnan(minimal_detectable_difference(7, 28, 0.2, direction="decrease"))
    dec = minimal_detectable_difference(20, 20, 0.8, direction="decrease", seed=4)
    assert -0.8 <= dec < 0


def test_speed_at_largest_prefecture():
    start = time.perf_counter()
    minimal_detectable_difference(21, 20, 0.05, seed=8)
    minimal_detectable_difference(40, 1, 0.5, seed=8)
    assert time.perf_counter() - start < 1.0


def test_input_validation():
    with pytest.raises(ValueError):
        simulated_power(10, 10, 1.2, 0.3)
    with pytest.raises(ValueError):
        simulated_power(10, 10, 0.5, 0.3, test="boschloo")
    with pytest.raises(ValueError):
        minimal_detectable_difference(10, 10, 0.3, power=1.0)
    with pytest.raises(ValueError):
        simulated_power(10.5, 10, 0.5, 0.3)


def test_power_table_and_sentence():
    outcome = np.array([1] * 7 + [0] * 28, dtype=float)
    m1 = np.array([1] * 5 + [0] * 2 + [1] * 5 + [0] * 23, dtype=float)
    m2 = np.array([1, 0] * 17 + [np.nan])
    m3 = np.ones(35)  # everyone received it: no comparison group
    frame = pd.DataFrame({"full": outcome, "m1": m1, "m2": m2, "m3": m3})
    table = power_table(frame, ["m2", "m1", "m3"], "full", seed=1)
    assert table["measure"].tolist() == ["m2", "m1", "m3"]
    row = table.set_index("measure").loc["m1"]
    assert (row.n_exposed, row.n_unexposed, row.n_dropped) == (10, 25, 0)
    assert row.base_rate == pytest.approx(2 / 25)
    assert row.mdd == minimal_detectable_difference(10, 25, 2 / 25, seed=1)
    assert row.exposed_rate_at_mdd == pytest.approx(2 / 25 + row.mdd)
    assert bool(row.reachable) and row.power_at_max > 0.8
    assert f"{int(round(row.mdd * 100))}ポイント未満" in row.sentence_ja
    assert table.set_index("measure").loc["m2", "n_dropped"] == 1
    m3_row = table.set_index("measure").loc["m3"]
    assert math.isnan(m3_row.mdd) and not m3_row.reachable
    assert "判断できません" in m3_row.sentence_ja
    pd.testing.assert_frame_equal(table, power_table(frame, ["m2", "m1", "m3"], "full", seed=1))


def test_power_sentence_wording():
    s = power_sentence_ja(0.46, 7, 28)
    assert s.startswith("この市町数（支援あり7市町、なし28市町）では、")
    # "less than 80 % power", not "cannot be detected" (issue 9 item 6)
    assert (
        "実施率の差が46ポイント未満のとき、Fisherの正確検定（有意水準5%）で有意となる確率（検出力）は80%未満です。"
    ) in s
    assert "検出できません" not in s
    assert "差がないことを意味しません" in s
    # rounded down, never overstating sensitivity
    assert "46ポイント" in power_sentence_ja(0.4699, 7, 28)
    assert "47ポイント" in power_sentence_ja(0.47, 7, 28)
    s90 = power_sentence_ja(0.3, 20, 20, power=0.9, alpha=0.1)
    assert "有意水準10%" in s90 and "90%未満" in s90
    nan = power_sentence_ja(float("nan"), 3, 5)
    assert "どれほど大きくても" in nan and "判断できません" in nan


def test_mdd_summary_numbers_back_the_sentence():
    from analysis.power import exact_power, mdd_summary

    out = mdd_summary(7, 28, 0.2)
    assert out["test"] == "fisher_two_sided" and out["method"] == "exact"
    # the MDD is the first 1-point step with power >= 80 %; one step below, power is < 80 %
    assert out["power_below_mdd"] < 0.8 <= out["power_at_mdd"]
    assert out["power_at_mdd"] == pytest.approx(exact_power(7, 28, 0.2 + out["mdd"], 0.2))
    assert out["mdd_points"] == math.floor(round(out["mdd"] * 100, 6))
    assert f"{out['mdd_points']}ポイント未満" in out["sentence_ja"] and "80%未満" in out["sentence_ja"]
    big = mdd_summary(300, 1441, 0.2)
    assert big["test"] == "z_two_proportions" and big["power_below_mdd"] < 0.8 <= big["power_at_mdd"] + 1e-9
    empty = mdd_summary(0, 35, 0.2)
    assert math.isnan(empty["mdd"]) and "判断できません" in empty["sentence_ja"]


def test_normal_mdd_agrees_with_exact_power_for_large_groups():
    # at n = 400 per group the z-test approximation and exact Fisher power nearly coincide
    from analysis.power import exact_power, normal_mdd

    mdd = normal_mdd(400, 400, 0.2)
    assert 0.07 < mdd < 0.10
    assert abs(exact_power(400, 400, 0.2 + mdd, 0.2) - 0.8) < 0.04
