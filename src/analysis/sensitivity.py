"""Sensitivity of an association to unmeasured confounding: the E-value.

The E-value (VanderWeele & Ding 2017, Ann Intern Med 167:268-274) is the minimum strength of
association, on the risk-ratio scale, that an unmeasured confounder would need to have with both
the exposure (a support measure) and the outcome (full implementation), conditional on the
measured covariates, to fully explain away the observed association. For a risk ratio RR >= 1:

    E = RR + sqrt(RR * (RR - 1));   for RR < 1 apply it to 1 / RR.

The E-value of the confidence interval uses the limit nearer the null; it is 1 when the interval
includes the null (no confounding at all is needed to make the interval cover it).

Odds ratios are converted to risk ratios first, as in the R package EValue (``evalues.OR``):
with a rare outcome (< 15 % at the end of follow-up) OR ~ RR; with a common outcome the
square-root approximation RR ~ sqrt(OR) (VanderWeele 2017, Biometrics 73:646; VanderWeele,
Ding & Mathur 2019, Ann Intern Med). Full implementation is common in most prefectures (the
sample: 7 of 35 municipalities), so the per-year odds ratios use the square root; in the
discrete-time hazard model the outcome of the logistic model is the yearly event among
municipalities still at risk, so its rate (events / person-years) decides.

Checked against the EValue package's published examples in tests/test_sensitivity.py.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from .errors import AnalysisError

__all__ = [
    "RARE_OUTCOME",
    "EValue",
    "evalue_columns",
    "evalue_or",
    "evalue_point",
    "evalue_rr",
    "evalue_sentence_ja",
    "is_rare",
]

# How the ratio became a risk ratio: given as one, OR used as RR (rare outcome), or RR = sqrt(OR).
Conversion = Literal["none", "rare", "sqrt"]

RARE_OUTCOME = 0.15  # VanderWeele & Ding 2017; EValue: "rare (<15 percent at end of follow-up)"


@dataclass(frozen=True)
class EValue:
    """E-values of a point estimate and of its confidence limit nearer the null.

    ``rr``, ``rr_lower``, ``rr_upper`` are the estimate and limits on the risk-ratio scale (after
    the odds-ratio conversion, if any). ``ci`` is NaN when no interval (or a NaN limit) was given.
    ``ci_includes_null`` is True when the interval covers the null (then ``ci`` is 1).
    """

    point: float
    ci: float
    rr: float
    rr_lower: float
    rr_upper: float
    ci_includes_null: bool
    conversion: Conversion  # "none" (risk ratio given), "rare" (OR used as RR) or "sqrt" (RR = sqrt(OR))


def _error(ja: str, en: str) -> AnalysisError:
    return AnalysisError(ja, en, where="sensitivity")


def evalue_point(rr: float, true: float = 1.0) -> float:
    """E-value of one risk ratio against ``true`` (1 = the null): RR + sqrt(RR (RR - 1)).

    A ratio below ``true`` is inverted first (the E-value is symmetric). NaN in, NaN out; an
    infinite ratio gives an infinite E-value.
    """
    if rr is None or (isinstance(rr, float) and math.isnan(rr)):
        return math.nan
    rr, true = float(rr), float(true)
    if rr < 0 or true <= 0:
        raise _error("リスク比は0以上でなければなりません。", "a risk ratio must be >= 0")
    if rr == 0 or math.isinf(rr):
        return math.inf
    ratio = rr / true
    if ratio < 1:
        ratio = 1 / ratio
    return ratio + math.sqrt(ratio * (ratio - 1))


def _finite_or_nan(v) -> float:
    return math.nan if v is None else float(v)


def evalue_rr(rr: float, lower: float | None = None, upper: float | None = None, *, true: float = 1.0) -> EValue:
    """E-values for a risk ratio and its confidence interval (EValue's ``evalues.RR``).

    Give an unbounded side as 0 (lower) or ``math.inf`` (upper); a NaN limit (not known) gives a
    NaN CI E-value for that side.
    """
    return _evalue(_finite_or_nan(rr), _finite_or_nan(lower), _finite_or_nan(upper), true, "none")


def evalue_or(
    or_: float, lower: float | None = None, upper: float | None = None, *, rare: bool, true: float = 1.0
) -> EValue:
    """E-values for an odds ratio and its confidence interval (EValue's ``evalues.OR``).

    ``rare``: the outcome is rare (< 15 %; see :func:`is_rare`), so the OR is used as a risk
    ratio; otherwise each of estimate and limits is converted with RR = sqrt(OR). Odds ratios
    below 1 are handled by inversion, as risk ratios are.
    """
    o, lo, hi = (_finite_or_nan(v) for v in (or_, lower, upper))
    if not isinstance(rare, (bool, np.bool_)):
        raise _error("rare には True か False を指定してください。", "rare must be True or False")
    if rare:
        return _evalue(o, lo, hi, true, "rare")
    return _evalue(_sqrt(o), _sqrt(lo), _sqrt(hi), _sqrt(true), "sqrt")


def _sqrt(v: float) -> float:
    """sqrt(v); NaN, 0 and inf stay as they are, and a negative value is passed on for _evalue to refuse."""
    return math.sqrt(v) if v >= 0 else v


def _evalue(rr: float, lower: float, upper: float, true: float, conversion: Conversion) -> EValue:
    for v in (rr, lower, upper):
        if not math.isnan(v) and v < 0:
            raise _error("比は0以上でなければなりません。", "ratios must be >= 0")
    if not math.isnan(lower) and not math.isnan(upper) and lower > upper:
        raise _error("信頼区間の下限が上限を上回っています。", "the lower limit exceeds the upper limit")
    if not math.isnan(rr) and not math.isnan(lower) and lower > rr * (1 + 1e-12):
        raise _error("推定値が信頼区間の外にあります。", "the estimate lies outside its interval")
    if not math.isnan(rr) and not math.isnan(upper) and upper < rr * (1 - 1e-12):
        raise _error("推定値が信頼区間の外にあります。", "the estimate lies outside its interval")
    point = evalue_point(rr, true)
    includes = not math.isnan(lower) and not math.isnan(upper) and lower <= true <= upper
    if includes:
        ci = 1.0
    elif math.isnan(rr):
        ci = math.nan
    elif rr >= true:  # the limit nearer the null is the lower one
        ci = 1.0 if (not math.isnan(lower) and lower <= true) else evalue_point(lower, true)
    else:
        ci = 1.0 if (not math.isnan(upper) and upper >= true) else evalue_point(upper, true)
    return EValue(
        point=point,
        ci=ci,
        rr=rr,
        rr_lower=lower,
        rr_upper=upper,
        ci_includes_null=bool(includes or ci == 1.0),
        conversion=conversion,
    )


def is_rare(outcome_rate: float, threshold: float = RARE_OUTCOME) -> bool:
    """True when the outcome proportion is below ``threshold`` (15 %), so OR ~ RR."""
    if outcome_rate is None or math.isnan(float(outcome_rate)) or not 0 <= outcome_rate <= 1:
        raise _error("結果の割合は0から1の数でなければなりません。", "the outcome rate must be a number in [0, 1]")
    return bool(outcome_rate < threshold)


def evalue_columns(
    table: pd.DataFrame, *, rare: bool, or_col: str = "or", lower_col: str = "or_lower", upper_col: str = "or_upper"
) -> pd.DataFrame:
    """E-values for every row of a table of odds ratios (numbers, for CSV/XLSX and the HTML).

    Returns a frame with the table's index and columns ``evalue`` (estimate) and ``evalue_ci``
    (confidence limit nearer the null; 1 when the interval includes 1). NaN limits (a profile
    bound never reached) give NaN for ``evalue_ci`` on that side; pass 0 / inf for a side known
    to be unbounded.
    """
    rows = [evalue_or(r[or_col], r[lower_col], r[upper_col], rare=rare) for _, r in table.iterrows()]
    return pd.DataFrame({"evalue": [e.point for e in rows], "evalue_ci": [e.ci for e in rows]}, index=table.index)


def _floor1(x: float) -> str:
    """One decimal, rounded down (never claims more robustness than computed), at least 1.0."""
    return f"{max(math.floor(x * 10 + 1e-9) / 10, 1.0):.1f}"


def evalue_sentence_ja(ev: EValue, *, exposure: str = "支援の活用", outcome: str = "全項目実施") -> str:
    """One or two plain Japanese sentences explaining the E-value of an association.

    Figures are rounded down to one decimal. Says so when the interval already includes 1.
    """
    if math.isnan(ev.point):
        return "推定値がないため、未測定の交絡に対する頑健さ（E値）は計算できません。"
    if math.isinf(ev.point):
        return "推定値が無限大のため、E値は計算できません。"
    text = (
        f"未測定の交絡要因が、{exposure}と{outcome}の双方とリスク比でそれぞれ約{_floor1(ev.point)}倍以上の"
        "関連を持てば、この関連は説明し尽くされる可能性があります（E値）。"
    )
    if math.isnan(ev.ci):
        return text
    if ev.ci_includes_null:
        return text + "ただし95%信頼区間はすでに1（関連なし）を含んでおり、交絡がなくても関連があるとは言えません。"
    return text + f"95%信頼区間が1を含むようになるには、約{_floor1(ev.ci)}倍の関連で足ります。"
