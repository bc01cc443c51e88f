"""E-values against the published examples of VanderWeele & Ding (2017) and the R package EValue.

Reference outputs are those printed in the EValue package documentation (pkgdown site of
github.com/mayamathur/evalue_package, EValue 2.0.0): the vignette "E-values for unmeasured
confounding" (articles/unmeasured-confounding.html) and the examples of ``evalues.OR``
(reference/evalues.OR.html). They are printed to 7 significant digits, so they are checked at
1e-6 relative (their rounding error is below 2.5e-7 relative).
"""

import math

import pandas as pd
import pytest

from analysis.errors import AnalysisError
from analysis.sensitivity import (
    evalue_columns,
    evalue_or,
    evalue_point,
    evalue_rr,
    evalue_sentence_ja,
    is_rare,
)

RTOL = 1e-6


def test_smoking_and_lung_cancer():
    # evalues.RR(est = 10.73, lo = 8.02, hi = 14.36): E-values 20.94777, 15.52336
    ev = evalue_rr(10.73, 8.02, 14.36)
    assert ev.point == pytest.approx(20.94777, rel=RTOL)
    assert ev.ci == pytest.approx(15.52336, rel=RTOL)
    assert not ev.ci_includes_null and ev.conversion == "none"


def test_breastfeeding_and_respiratory_death_rare_outcome():
    # VanderWeele & Ding (2017), the paper's worked example (Victora et al.): RR 3.9 (1.8-8.7);
    # evalues.OR(3.9, 1.8, 8.7, rare = TRUE) prints 7.263034 and 3.0. The lower limit's E-value
    # is exactly 1.8 + sqrt(1.8 * 0.8) = 3.0 (sometimes quoted as 3.02, which no formula gives).
    ev = evalue_or(3.9, 1.8, 8.7, rare=True)
    assert ev.point == pytest.approx(7.263034, rel=RTOL)
    assert ev.ci == pytest.approx(3.0, rel=RTOL)
    assert round(ev.point, 2) == 7.26
    assert ev.conversion == "rare" and ev.rr == 3.9


def test_protective_risk_ratio_is_inverted():
    # evalues.RR(est = 0.80, lo = 0.71, hi = 0.91): E-values 1.809017, upper 1.428571
    ev = evalue_rr(0.80, 0.71, 0.91)
    assert ev.point == pytest.approx(1.809017, rel=RTOL)
    assert ev.ci == pytest.approx(1.428571, rel=RTOL)
    # symmetry: 1 / 0.8 has the same E-value
    assert evalue_point(1 / 0.80) == pytest.approx(ev.point, rel=1e-12)


def test_common_outcome_odds_ratio_uses_square_root():
    # evalues.OR(0.86, 0.75, 0.99, rare = FALSE):
    #   RR 0.9273618 0.8660254 0.9949874; E-values 1.3689529 NA 1.0761939
    ev = evalue_or(0.86, 0.75, 0.99, rare=False)
    assert [ev.rr, ev.rr_lower, ev.rr_upper] == pytest.approx([0.9273618, 0.8660254, 0.9949874], rel=RTOL)
    assert ev.point == pytest.approx(1.3689529, rel=RTOL)
    assert ev.ci == pytest.approx(1.0761939, rel=RTOL)
    assert ev.conversion == "sqrt"


def test_lead_logistic_example():
    # evalues.OR(OR, lowerOR, upperOR, rare = FALSE) on Hsu & Small's lead data prints
    # RR 1.643167 1.317079 2.049988 and E-values 2.671189 1.963313; the odds ratios themselves
    # are not printed, so they are rebuilt as RR^2 (7 digits, hence the same tolerance).
    rr = [1.643167, 1.317079, 2.049988]
    ev = evalue_or(*(r * r for r in rr), rare=False)
    assert ev.point == pytest.approx(2.671189, rel=RTOL)
    assert ev.ci == pytest.approx(1.963313, rel=RTOL)
    # and the log-linear risk ratio of the same example: E-values 4.368237 2.733388
    ev = evalue_rr(2.466433, 1.672663, 3.63689)
    assert ev.point == pytest.approx(4.368237, rel=RTOL)
    assert ev.ci == pytest.approx(2.733388, rel=RTOL)


def test_non_null_true_value():
    # summary(evalues.RR(est = 2.5, true = 1.5)): 2.720759
    assert evalue_rr(2.5, true=1.5).point == pytest.approx(2.720759, rel=RTOL)


def test_interval_including_the_null_gives_one():
    ev = evalue_or(1.8, 0.7, 4.6, rare=False)
    assert ev.ci == 1.0 and ev.ci_includes_null
    assert ev.point > 1
    ev = evalue_or(0.5, 0.2, 1.3, rare=True)
    assert ev.ci == 1.0 and ev.ci_includes_null


def test_unbounded_and_unknown_limits():
    # an upper limit never reached (separation) does not matter for OR > 1: the lower one does
    ev = evalue_or(7.28, 1.9, math.inf, rare=True)
    assert ev.ci == pytest.approx(evalue_point(1.9))
    # a lower limit not known: the CI E-value is not known either
    assert math.isnan(evalue_or(7.28, math.nan, math.inf, rare=True).ci)
    # a lower limit unbounded (0): the interval includes 1
    assert evalue_or(7.28, 0.0, math.inf, rare=True).ci == 1.0
    assert math.isnan(evalue_or(math.nan, 1.0, 2.0, rare=True).point)


def test_invalid_input_is_refused_in_both_languages():
    with pytest.raises(AnalysisError) as err:
        evalue_or(2.0, 3.0, 4.0, rare=True)
    assert "信頼区間" in err.value.ja and "interval" in err.value.en
    with pytest.raises(AnalysisError):
        evalue_or(-1.0, rare=True)
    with pytest.raises(AnalysisError):
        evalue_or(2.0, 1.0, 3.0, rare="yes")


def test_negative_ratio_is_refused_with_the_sqrt_conversion_too():
    # the square root used to run before the check, so a negative OR raised a bare "math domain error"
    for args in [(-1.0,), (2.0, -0.5, 3.0), (2.0, 1.0, -3.0)]:
        with pytest.raises(AnalysisError) as err:
            evalue_or(*args, rare=False)
        assert "0以上" in err.value.ja and ">= 0" in err.value.en


def test_rare_threshold():
    assert is_rare(0.10) and not is_rare(0.15) and not is_rare(7 / 35)
    with pytest.raises(AnalysisError):
        is_rare(1.5)


def test_columns_for_a_table():
    table = pd.DataFrame(
        {"or": [3.9, 0.86, 1.8], "or_lower": [1.8, 0.75, 0.7], "or_upper": [8.7, 0.99, 4.6]}, index=["a", "b", "c"]
    )
    out = evalue_columns(table, rare=False)
    assert list(out.columns) == ["evalue", "evalue_ci"] and list(out.index) == ["a", "b", "c"]
    assert out.loc["b", "evalue"] == pytest.approx(1.3689529, rel=RTOL)
    assert out.loc["c", "evalue_ci"] == 1.0


def test_sentence_rounds_down_and_says_when_the_interval_covers_one():
    s = evalue_sentence_ja(evalue_or(3.9, 1.8, 8.7, rare=True))
    assert "約7.2倍以上" in s and "約3.0倍" in s  # 7.263 and 3.0, rounded down
    assert "支援の活用と全項目実施の双方" in s and "説明し尽くされる可能性があります" in s
    s = evalue_sentence_ja(evalue_or(1.8, 0.7, 4.6, rare=False), exposure="アドバイザー派遣の活用")
    assert "アドバイザー派遣の活用と全項目実施" in s and "すでに1（関連なし）を含んで" in s
    assert "計算できません" in evalue_sentence_ja(evalue_or(math.nan, rare=True))
