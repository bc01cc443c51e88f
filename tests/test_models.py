"""Tests for analysis.models against published reference results.

Every reference number below was published by others, from R output or a
textbook, and its source is cited next to it. Data files and their licences:
tests/data/reference/README.md.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy.special import expit

from analysis.models import (
    _constrained_fit,
    detect_separation_terms,
    discrete_time_hazard,
    firth_logit,
    person_period,
    separation_message_ja,
)

REF = Path(__file__).parent / "data" / "reference"
# Relative tolerance against published logistf output. Every reference number below has at
# least 7 significant digits, so its rounding error is below 1e-6 relative. Measured agreement:
# coefficients, profile CIs and LR p-values < 3e-7; Wald SEs of separated terms are the worst
# (logistf takes its covariance one Newton step before convergence): 9.5e-7 for sex2's dia, and
# 1.07e-6 for the quasi-separation data's separator, the one value checked at 2e-6. Numbers
# printed with fewer digits are checked at the tolerance their digits allow.
RTOL = 1e-6


@pytest.fixture(scope="module")
def sex2() -> pd.DataFrame:
    return pd.read_csv(REF / "sex2.csv")


@pytest.fixture(scope="module")
def sex2_fit(sex2):
    return firth_logit("case ~ age + oc + vic + vicl + vis + dia", sex2)


@pytest.fixture(scope="module")
def endometrial() -> pd.DataFrame:
    return pd.read_csv(REF / "endometrial.csv")


@pytest.fixture(scope="module")
def first_sex_pp() -> pd.DataFrame:
    """Person-period data for Singer & Willett's first_sex example.

    We build a unit x grade panel (grades 7-12) whose state indicator is 1
    from the grade of first intercourse on (0 throughout if censored), then
    let person_period() cut it to the risk set.
    """
    fs = pd.read_csv(REF / "first_sex.csv")
    panel = fs.merge(pd.DataFrame({"grade_t": range(7, 13)}), how="cross")
    panel["event"] = ((panel["grade_t"] >= panel["grade"]) & (panel["censor"] == 0)).astype(int)
    panel = panel.rename(columns={"parental_transition": "pt", "parental_antisociality": "pas"})
    return person_period(panel, "id", "grade_t", "event")


# ---------------------------------------------------------------------------
# Firth logistic regression vs R logistf
# ---------------------------------------------------------------------------

SEX2_TERMS = ["Intercept", "age", "oc", "vic", "vicl", "vis", "dia"]


def test_sex2_coefficients_and_95ci_match_logistf(sex2_fit):
    # R logistf on logistf::sex2, as given in
    # https://github.com/jzluo/firthlogist  firthlogist/tests/test_firthlogist.py
    # (fixture `sex2`: logistf_coef, logistf_intercept, logistf_ci).
    coef = [0.12025405, -1.10598131, -0.06881673, 2.26887464, -2.11140817, -0.78831694, 3.09601166]
    lower = [-0.8185591, -1.9737884, -0.9414363, 1.2730216, -3.2608611, -1.6080879, 0.7745682]
    upper = [1.07315122, -0.30742514, 0.78920202, 3.43543273, -1.11773495, 0.01518468, 8.03029352]
    assert list(sex2_fit.params.index) == SEX2_TERMS
    np.testing.assert_allclose(sex2_fit.params, coef, rtol=RTOL)
    ci = sex2_fit.conf_int(0.05)
    assert list(ci.columns) == ["lower", "upper"]
    np.testing.assert_allclose(ci["lower"], lower, rtol=RTOL)
    np.testing.assert_allclose(ci["upper"], upper, rtol=RTOL)
    assert sex2_fit.converged and sex2_fit.nobs == 239


def test_sex2_alpha_0_1_summary_matches_logistf(sex2_fit):
    # Printed `summary(logistf(case ~ age + oc + vic + vicl + vis + dia,
    # data = sex2, alpha = 0.1))` in the biostatUtil docs,
    # https://github.com/TalhoukLab/biostatUtil  reference/logistfPrint.md
    se = [0.4763429, 0.4149021, 0.4344026, 0.5384872, 0.5320395, 0.4089620, 1.5052197]
    lower = [-0.6673577, -1.8277045, -0.7986318, 1.4248338, -3.0613215, -1.4743338, 1.0835108]
    upper = [0.9177303, -0.4328451, 0.6507581, 3.2325326, -1.2704704, -0.1137542, 6.8752016]
    p = [8.020268e-01, 6.143472e-03, 8.751911e-01, 1.678877e-06, 1.237805e-05, 5.449701e-02, 4.951873e-03]
    np.testing.assert_allclose(sex2_fit.bse, se, rtol=RTOL)
    ci = sex2_fit.conf_int(alpha=0.1)
    np.testing.assert_allclose(ci["lower"], lower, rtol=RTOL)
    np.testing.assert_allclose(ci["upper"], upper, rtol=RTOL)
    # Penalised likelihood-ratio p-values (logistf default "method 2").
    np.testing.assert_allclose(sex2_fit.pvalues, p, rtol=RTOL)
    # "Likelihood ratio test=49.09064 on 6 df, p=7.15089e-09, n=239"
    chi2, df, pval = sex2_fit.lr_test()
    assert df == 6
    np.testing.assert_allclose(chi2, 49.09064, rtol=1e-6)
    np.testing.assert_allclose(pval, 7.15089e-09, rtol=1e-6)


def test_sex2_summary_frame_and_odds_ratios(sex2_fit):
    sf = sex2_fit.summary_frame()
    assert list(sf.columns) == [
        "estimate",
        "std_err",
        "ci_lower",
        "ci_upper",
        "odds_ratio",
        "or_lower",
        "or_upper",
        "p_value",
    ]
    np.testing.assert_allclose(sf["odds_ratio"], np.exp(sex2_fit.params))
    orr = sex2_fit.odds_ratios(alpha=0.1)
    # biostatUtil logistfPrint(fit): dia  exp(coef) 22.110, 90% CI 2.955-967.970
    np.testing.assert_allclose(orr.loc["dia"], [22.110, 2.955, 967.970], rtol=5e-4)
    # dia = 1 only among cases, so its plain-ML estimate is +infinite.
    assert sex2_fit.separation == ["dia"]
    assert isinstance(sex2_fit.loglik, float)


def test_endometrial_matches_logistf(endometrial):
    # R logistf on the endometrial data (Heinze & Schemper 2002), as given in
    # https://github.com/jzluo/firthlogist  firthlogist/tests/test_firthlogist.py
    # (fixture `endometrial`).
    fit = firth_logit("HG ~ NV + PI + EH", endometrial)
    coef = [3.77455951, 2.92927330, -0.03475175, -2.60416387]
    lower = [1.0825371, 0.6097244, -0.1244587, -4.3651832]
    upper = [7.20928050, 7.85463171, 0.04045547, -1.23272106]
    np.testing.assert_allclose(fit.params, coef, rtol=RTOL)
    ci = fit.conf_int()
    np.testing.assert_allclose(ci["lower"], lower, rtol=RTOL)
    np.testing.assert_allclose(ci["upper"], upper, rtol=RTOL)
    # brglm2 vignette "Detecting separation and infinite estimates in binomial
    # response GLMs" (ikosmidis/brglm2 vignettes/separation.Rmd): the ML
    # estimate for NV is +Inf; Intercept, PI and EH are finite.
    assert fit.separation == ["NV"]
    assert fit.separation_directions.to_dict() == {"Intercept": 0, "NV": 1, "PI": 0, "EH": 0}


def test_quasi_separation_data_matches_logistf():
    # R logistf reference values from https://github.com/jzluo/firthmodels
    # tests/test_logistic.py::test_matches_logistf_with_separation (their
    # arrays list the intercept last; reordered here).
    d = pd.read_csv(REF / "firthmodels_quasi_separation.csv")
    fit = firth_logit("y ~ separator + x1 + x2 + x3", d)
    order = ["separator", "x1", "x2", "x3", "Intercept"]
    coef = [3.6577140153, 0.6759781501, -0.8633119501, 0.3385788510, -0.4434562830]
    wald_se = [1.4822786334, 0.2687886213, 0.3874453554, 0.1370778814, 0.3452906671]
    lrt_p = [0.0002084147149, 0.0093173148959, 0.0236385713206, 0.0055887969164, 0.1997147194]
    lower = [1.3901042899, 0.1602568036, -1.6677883758, 0.0893054012, -1.16089382506]
    upper = [8.5876062114, 1.2568999211, -0.1135186948, 0.6572681313, 0.2295139209]
    np.testing.assert_allclose(fit.params[order], coef, rtol=RTOL)
    # logistf computes its covariance matrix inside the Newton loop, before the last update of the
    # coefficients, so its Wald SE of the separated term (the one whose likelihood is flattest)
    # lies 1.07e-6 relative from the SE at the optimum; the other SEs agree to < 5e-7.
    np.testing.assert_allclose(fit.bse[order].iloc[1:], wald_se[1:], rtol=RTOL)
    np.testing.assert_allclose(fit.bse[order].iloc[0], wald_se[0], rtol=2e-6)
    np.testing.assert_allclose(fit.pvalues[order], lrt_p, rtol=RTOL)
    ci = fit.conf_int().loc[order]
    np.testing.assert_allclose(ci["lower"], lower, rtol=RTOL)
    np.testing.assert_allclose(ci["upper"], upper, rtol=RTOL)
    assert fit.separation == ["separator"]


def test_constrained_fit_reproduces_public_lrt(sex2_fit):
    # _constrained_fit drives firthmodels internals; its penalised
    # log-likelihood with one coefficient fixed at 0 must give the same
    # LRT p-values as firthmodels' public lrt().
    X = sex2_fit.exog.to_numpy()
    y = sex2_fit.endog.to_numpy()
    for k, name in enumerate(sex2_fit.exog_names):
        c = _constrained_fit(X, y, [k], 0.5)
        assert c.converged and c.beta[k] == 0.0
        chi2 = 2 * (sex2_fit.loglik - c.loglik)
        p = scipy.stats.chi2.sf(chi2, 1)
        np.testing.assert_allclose(p, sex2_fit.pvalues[name], rtol=1e-6)
    # With nothing fixed it must reproduce the unconstrained fit.
    full = _constrained_fit(X, y, [], 0.5)
    np.testing.assert_allclose(full.beta, sex2_fit.params, rtol=1e-6)


def test_bad_outcome_is_rejected():
    d = pd.DataFrame({"y": [0, 1, 2, 1], "x": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ValueError, match="0/1"):
        firth_logit("y ~ x", d)


# ---------------------------------------------------------------------------
# Separation: statsmodels hides it, firth_logit names it
# ---------------------------------------------------------------------------


def _separated_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"support": [0] * 12 + [1] * 8, "size": rng.normal(size=20)})
    # every municipality with support reached full implementation
    df["full"] = [0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0] + [1] * 8
    return df


def test_statsmodels_misses_separation_but_firth_logit_names_it():
    df = _separated_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # whatever statsmodels says, it still returns a fit
        ml = smf.glm("full ~ support + size", df, family=sm.families.Binomial()).fit()
    # statsmodels reports convergence and a finite but meaningless estimate.
    assert ml.converged
    assert ml.params["support"] > 10 and ml.bse["support"] > 1000

    fit = firth_logit("full ~ support + size", df)
    assert fit.separation == ["support"]
    assert detect_separation_terms(fit.exog, fit.endog)["support"] == 1
    # Firth gives a finite estimate and a finite profile CI lower bound.
    assert 1 < fit.params["support"] < 10
    assert np.isfinite(fit.conf_int().loc["support", "lower"])
    msg = separation_message_ja(fit.separation)
    assert msg == (
        "「support」ではデータが完全に分離しており、通常の最尤推定ではオッズ比が無限大になります（Firth法で推定）。"
    )


def test_no_separation_message():
    d = pd.read_csv(REF / "firthmodels_quasi_separation.csv")
    fit = firth_logit("y ~ x1 + x2 + x3", d)
    assert fit.separation == []
    assert "検出されませんでした" in separation_message_ja(fit.separation)


# ---------------------------------------------------------------------------
# person_period
# ---------------------------------------------------------------------------


def test_person_period_drops_rows_after_first_event():
    panel = pd.DataFrame(
        {
            "muni": ["a"] * 4 + ["b"] * 4 + ["c"] * 4,
            "year": [2020, 2021, 2022, 2023] * 3,
            # a: reaches state in 2021 and stays; b: never; c: event in 2020
            "full": [0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1],
        }
    ).sample(frac=1, random_state=1)  # order must not matter
    pp = person_period(panel, "muni", "year", "full")
    assert pp[["muni", "year", "full"]].values.tolist() == [
        ["a", 2020, 0],
        ["a", 2021, 1],
        ["b", 2020, 0],
        ["b", 2021, 0],
        ["b", 2022, 0],
        ["b", 2023, 0],
        ["c", 2020, 1],
    ]


def test_person_period_rejects_duplicates():
    panel = pd.DataFrame({"id": [1, 1], "t": [1, 1], "e": [0, 1]})
    with pytest.raises(ValueError, match="Duplicate"):
        person_period(panel, "id", "t", "e")


# ---------------------------------------------------------------------------
# Singer & Willett (2003), Table 11.3
# ---------------------------------------------------------------------------

# Singer, J. D. & Willett, J. B. (2003). Applied Longitudinal Data Analysis,
# Oxford University Press, Table 11.3, p. 386: ML logit-hazard models for the
# grade of first intercourse. Values to 4 decimals as reproduced in R by the
# alda package article "Chapter 11" (https://mccarthy-m-g.github.io/alda/,
# articles/chapter-11.html). Order: grades 7-12, pt, pas.
TABLE_11_3 = {
    "A": (
        "",
        [-2.3979, -3.1167, -1.7198, -1.2867, -1.1632, -0.7309],
        [],
        [0.2697, 0.3862, 0.2217, 0.2098, 0.2291, 0.2387],
        [],
        -325.978,
    ),
    "B": (
        "+ pt",
        [-2.9943, -3.7001, -2.2811, -1.8226, -1.6542, -1.1791],
        [0.8736],
        [0.3175, 0.4205, 0.2724, 0.2585, 0.2691, 0.2716],
        [0.2174],
        -317.331,
    ),
    "C": (
        "+ pas",
        [-2.4646, -3.1591, -1.7297, -1.2851, -1.1360, -0.6421],
        [0.4428],
        [0.2741, 0.3889, 0.2245, 0.2127, 0.2324, 0.2428],
        [0.1140],
        -318.584,
    ),
    "D": (
        "+ pt + pas",
        [-2.8932, -3.5848, -2.1502, -1.6932, -1.5177, -1.0099],
        [0.6605, 0.2964],
        [0.3206, 0.4230, 0.2775, 0.2646, 0.2757, 0.2811],
        [0.2367, 0.1254],
        -314.573,
    ),
}


def test_first_sex_person_period_size(first_sex_pp):
    # alda chapter-11 article: "A tibble: 822 x 5"; 180 boys, 126 events.
    assert len(first_sex_pp) == 822
    assert first_sex_pp["event"].sum() == 126
    assert first_sex_pp["id"].nunique() == 180


@pytest.mark.parametrize("model", ["A", "B", "C", "D"])
def test_first_sex_table_11_3(first_sex_pp, model):
    rhs, alphas, betas, alpha_se, beta_se, loglik = TABLE_11_3[model]
    formula = f"event ~ 0 + C(grade_t) {rhs}"
    res = discrete_time_hazard(formula, first_sex_pp, "id", method="ml", n_boot=19, seed=1, period_col="grade_t")
    # Table values are rounded to 4 decimals: allow half a unit in the last
    # place plus a little slack.
    np.testing.assert_allclose(res.params.to_numpy(), alphas + betas, rtol=0, atol=6e-5)
    # SEs: R's glm() takes them from the IRLS weights of the next-to-last
    # iteration (it stops once the deviance changes by < 1e-8 relative).  For
    # grade 8, the sparsest cell (7 events), that leaves R's SE about 1.5e-4
    # below the SE at the optimum.  statsmodels gives the same SEs as we do
    # (0.423148 vs the table's 0.4230 in Model D).  So the SE tolerance is
    # 2e-4; the other SEs agree to 6e-5.
    np.testing.assert_allclose(res.bse.to_numpy(), alpha_se + beta_se, rtol=0, atol=2e-4)
    other = [i for i in range(len(res.bse)) if i != 1]
    np.testing.assert_allclose(res.bse.to_numpy()[other], np.array(alpha_se + beta_se)[other], rtol=0, atol=6e-5)
    np.testing.assert_allclose(res.loglik, loglik, rtol=0, atol=6e-4)
    # period dummies are nuisance terms: only pt/pas are tested
    assert list(res.tests.index) == [c for c in res.params.index if not c.startswith("C(")]
    # CR1 comparison uses the same ML estimates
    np.testing.assert_allclose(res.cr1["estimate_ml"], res.params, rtol=1e-6)


# ---------------------------------------------------------------------------
# Known truth on simulated data
# ---------------------------------------------------------------------------


def simulate_panel(rng, n_clusters=30, units=20, periods=5, beta=0.0, sigma=0.7):
    """Municipalities within prefectures; a prefecture-level support dummy.

    Logit hazard: -2 + 0.2 t + a_g + beta * support_g, with a prefecture
    random effect a_g ~ N(0, sigma^2) that makes outcomes correlated within
    prefectures.  Returns a unit x period panel with a state indicator.
    """
    support = rng.integers(0, 2, n_clusters).astype(float)
    a = rng.normal(0.0, sigma, n_clusters)
    cl = np.repeat(np.arange(n_clusters), units)
    state = np.zeros(cl.size, dtype=int)
    frames = []
    for t in range(1, periods + 1):
        h = expit(-2.0 + 0.2 * t + a[cl] + beta * support[cl])
        state = np.maximum(state, (rng.random(cl.size) < h).astype(int))
        frames.append(
            pd.DataFrame(
                {"unit": np.arange(cl.size), "pref": cl, "period": t, "support": support[cl], "full": state.copy()}
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_wild_bootstrap_pvalue_roughly_uniform_under_null():
    rng = np.random.default_rng(20240601)
    pvals = []
    for s in range(40):
        pp = person_period(simulate_panel(rng), "unit", "period", "full")
        res = discrete_time_hazard(
            "full ~ support", pp, "pref", method="firth", n_boot=199, seed=s, period_col="period"
        )
        pvals.append(res.pvalues["support"])
    pvals = np.array(pvals)
    # Loose bounds: 40 draws of a U(0,1) p-value.
    assert scipy.stats.kstest(pvals, "uniform").pvalue > 0.01
    assert (pvals <= 0.10).mean() <= 0.25
    assert 0.3 < pvals.mean() < 0.7


def test_permutation_pvalue_roughly_uniform_under_null():
    rng = np.random.default_rng(7)
    pvals = []
    for s in range(12):
        pp = person_period(simulate_panel(rng, n_clusters=20, units=15), "unit", "period", "full")
        res = discrete_time_hazard(
            "full ~ support",
            pp,
            "pref",
            method="ml",
            inference="permutation",
            n_boot=99,
            seed=s,
            period_col="period",
        )
        pvals.append(res.pvalues["support"])
    pvals = np.array(pvals)
    assert scipy.stats.kstest(pvals, "uniform").pvalue > 0.01
    assert (pvals <= 0.05).sum() <= 3


def test_known_effect_is_recovered():
    rng = np.random.default_rng(99)
    panel = simulate_panel(rng, n_clusters=40, units=40, periods=6, beta=0.8, sigma=0.3)
    pp = person_period(panel, "unit", "period", "full")
    res = discrete_time_hazard("full ~ support", pp, "pref", method="firth", n_boot=299, seed=3, period_col="period")
    assert abs(res.params["support"] - 0.8) < 0.3
    assert res.pvalues["support"] < 0.05
    # the CR1 comparison should agree on the direction and rough size
    assert abs(res.cr1.loc["support", "estimate_ml"] - res.params["support"]) < 0.05
    sf = res.summary_frame()
    assert {"estimate", "std_err", "odds_ratio", "p_value", "se_cr1", "p_cr1"} <= set(sf.columns)
    assert res.n_clusters == 40 and res.nobs == len(pp)


def test_results_are_reproducible_and_independent_of_n_jobs():
    rng = np.random.default_rng(5)
    pp = person_period(simulate_panel(rng, n_clusters=25), "unit", "period", "full")
    kw = dict(method="firth", n_boot=99, seed=11, period_col="period")
    a = discrete_time_hazard("full ~ support", pp, "pref", **kw)
    b = discrete_time_hazard("full ~ support", pp, "pref", **kw)
    c = discrete_time_hazard("full ~ support", pp, "pref", n_jobs=2, **kw)
    pd.testing.assert_frame_equal(a.tests, b.tests)
    pd.testing.assert_frame_equal(a.tests, c.tests)
    w = discrete_time_hazard("full ~ support", pp, "pref", weight_type="webb", **kw)
    assert 0 < w.pvalues["support"] <= 1


def test_permutation_requires_cluster_level_regressor():
    rng = np.random.default_rng(1)
    pp = person_period(simulate_panel(rng, n_clusters=10, units=5), "unit", "period", "full")
    pp["size"] = np.random.default_rng(2).normal(size=len(pp))  # varies within prefecture
    with pytest.raises(ValueError, match="constant within cluster"):
        discrete_time_hazard(
            "full ~ support + size",
            pp,
            "pref",
            inference="permutation",
            n_boot=9,
            seed=0,
            period_col="period",
            test_terms=["size"],
        )


def test_firth_hazard_handles_separating_support():
    # support = 1 prefectures all reach the state in period 1: plain ML is
    # infinite, Firth is finite and the separation is reported.
    rng = np.random.default_rng(3)
    panel = simulate_panel(rng, n_clusters=12, units=8, periods=4)
    panel.loc[panel["support"] == 1, "full"] = 1
    pp = person_period(panel, "unit", "period", "full")
    start = time.perf_counter()
    res = discrete_time_hazard("full ~ support", pp, "pref", n_boot=99, seed=0, period_col="period")
    assert time.perf_counter() - start < 10
    assert "support" in res.separation
    assert np.isfinite(res.params["support"]) and res.params["support"] > 2
    with pytest.warns(RuntimeWarning, match="infinite"):
        discrete_time_hazard("full ~ support", pp, "pref", method="ml", n_boot=9, seed=0, period_col="period")


def test_lr_pvalue_fallback_matches_firthmodels():
    """The constrained-fit fallback used when firthmodels' lrt() stalls gives its p-values."""
    import math as _math

    from analysis import models as _m

    rng = np.random.default_rng(7)
    n = 40
    x = rng.normal(size=n)
    z = rng.integers(0, 2, n).astype(float)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-1 + 0.8 * x)))).astype(float)
    res = _m.firth_logit("y ~ x + z", pd.DataFrame({"y": y, "x": x, "z": z}))
    ref = res.pvalues.copy()
    X, yy = res.exog.to_numpy(float), res.endog.to_numpy(float)
    for k, name in enumerate(res.exog_names):
        fit0 = _m._constrained_fit(X, yy, [k], _m._FIRTH_PENALTY)
        p = float(scipy.stats.chi2.sf(max(2 * (res.loglik - fit0.loglik), 0.0), 1))
        assert _math.isclose(p, ref[name], rel_tol=1e-5), name


# ---------------------------------------------------------------------------
# Profile penalised-likelihood intervals of the hazard odds ratios
# ---------------------------------------------------------------------------


def test_hazard_conf_int_reproduces_logistf_on_sex2(sex2):
    # A hazard "model" with one row per cluster is an ordinary Firth logit, so its profile
    # intervals must be logistf's (same reference numbers as the sex2 tests above).
    data = sex2.assign(row=np.arange(len(sex2)))
    res = discrete_time_hazard(
        "case ~ age + oc + vic + vicl + vis + dia", data, "row", n_boot=9, seed=0, test_terms=SEX2_TERMS[1:]
    )
    ci = res.conf_int(0.05)
    assert list(ci.index) == SEX2_TERMS[1:] and list(ci.columns) == ["lower", "upper"]
    lower = [-1.9737884, -0.9414363, 1.2730216, -3.2608611, -1.6080879, 0.7745682]
    upper = [-0.30742514, 0.78920202, 3.43543273, -1.11773495, 0.01518468, 8.03029352]
    np.testing.assert_allclose(ci["lower"], lower, rtol=RTOL)
    np.testing.assert_allclose(ci["upper"], upper, rtol=RTOL)
    # alpha = 0.1 (biostatUtil's printed logistf summary), for one term only
    ci90 = res.conf_int(0.1, terms=["dia"])
    np.testing.assert_allclose(ci90.loc["dia"], [1.0835108, 6.8752016], rtol=RTOL)
    orr = res.odds_ratios(0.1, terms=["dia"])
    np.testing.assert_allclose(orr.loc["dia"], [22.110, 2.955, 967.970], rtol=5e-4)


def test_hazard_conf_int_equals_firth_logit_on_the_same_data():
    rng = np.random.default_rng(11)
    pp = person_period(simulate_panel(rng, n_clusters=35, units=1, periods=4, beta=1.0), "unit", "period", "full")
    res = discrete_time_hazard("full ~ support", pp, "pref", n_boot=19, seed=0, period_col="period")
    ref = firth_logit(res.formula, pp).conf_int(0.05).loc[["support"]]
    pd.testing.assert_frame_equal(res.conf_int(0.05), ref)
    assert (
        res.conf_int(0.05).loc["support", "lower"] < res.params["support"] < res.conf_int(0.05).loc["support", "upper"]
    )
    # unknown terms are refused
    with pytest.raises(KeyError):
        res.conf_int(terms=["nonexistent"])


def test_hazard_conf_int_of_a_separating_measure_is_one_sided():
    rng = np.random.default_rng(3)
    panel = simulate_panel(rng, n_clusters=12, units=8, periods=4)
    panel.loc[panel["support"] == 1, "full"] = 1
    pp = person_period(panel, "unit", "period", "full")
    res = discrete_time_hazard("full ~ support", pp, "pref", n_boot=19, seed=0, period_col="period")
    ci = res.conf_int().loc["support"]
    ref = firth_logit(res.formula, pp).conf_int().loc["support"]
    np.testing.assert_array_equal(ci.to_numpy(), ref.to_numpy())
    assert np.isfinite(ci["lower"]) and ci["lower"] > 0  # the finite side is reported


# ---------------------------------------------------------------------------
# Only what the report needs: one term's LR test and profile interval, one fit per hazard model
# ---------------------------------------------------------------------------


def test_one_terms_lr_p_and_interval_equal_the_full_computation_bit_for_bit(sex2):
    # Each LR test and each profile bound is its own constrained fit, so computing one term
    # alone (what the fiscal-year report does) gives exactly the all-terms numbers.
    full = firth_logit("case ~ age + oc + vic + vicl + vis + dia", sex2)
    ref_p, ref_ci = full.pvalues, full.conf_int(0.05)
    for term in ["vic", "dia", "Intercept"]:
        alone = firth_logit("case ~ age + oc + vic + vicl + vis + dia", sex2)
        ci = alone.conf_int(0.05, [term])
        assert list(ci.index) == [term]
        assert ci.loc[term].tolist() == ref_ci.loc[term].tolist()
        assert alone.pvalues_of([term])[term] == ref_p[term]
        # the rest is still computed on request, and agrees
        pd.testing.assert_series_equal(alone.pvalues, ref_p)
        pd.testing.assert_frame_equal(alone.conf_int(0.05), ref_ci)
    with pytest.raises(KeyError):
        full.pvalues_of(["nonexistent"])
    with pytest.raises(KeyError):
        full.conf_int(0.05, ["nonexistent"])


def test_hazard_firth_result_is_firth_logit_on_the_same_data_without_a_second_fit():
    rng = np.random.default_rng(5)
    pp = person_period(simulate_panel(rng, n_clusters=30, units=1, periods=4, beta=0.8), "unit", "period", "full")
    res = discrete_time_hazard("full ~ support", pp, "pref", n_boot=19, seed=0, period_col="period")
    via_hazard = res.firth_result()
    assert via_hazard is res.firth_result() and via_hazard._model is res._model  # the same fit, kept
    ref = firth_logit(res.formula, pp)
    pd.testing.assert_series_equal(via_hazard.params, ref.params)
    pd.testing.assert_series_equal(via_hazard.pvalues, ref.pvalues)
    pd.testing.assert_frame_equal(via_hazard.conf_int(0.05), ref.conf_int(0.05))
    pd.testing.assert_series_equal(via_hazard.separation_directions, ref.separation_directions)
    assert via_hazard.loglik == ref.loglik and via_hazard.converged == ref.converged
    ml = discrete_time_hazard("full ~ support", pp, "pref", method="ml", n_boot=19, seed=0, period_col="period")
    with pytest.raises(ValueError):
        ml.firth_result()
