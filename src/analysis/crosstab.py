"""Two-by-two cross-tabulation of a support measure against full implementation.

A prefecture has only 17-41 municipalities, so every statistic here is chosen
to stay honest at that size:

* the risk difference (RD) is reported with the Newcombe (1998) hybrid score
  interval (method 10, built from Wilson score intervals), which keeps close to
  nominal coverage on average with small counts and zero cells, unlike the
  Wald interval. Its coverage is not guaranteed, though: by full enumeration
  at 7 vs 9 municipalities the worst case over a 25 x 25 grid of true rates
  was about 89%. The exact unconditional interval (Chan & Zhang 1999,
  ``method="exact"``) guarantees at least 95% and is wider; where the set of
  differences its test accepts is not an interval, the hull is reported;
  :func:`ci_method_for` applies the documented rule for choosing between them;
* association is tested with the two-sided Fisher exact test (optionally
  Boschloo's unconditional exact test), never a chi-square approximation;
* p-values across measures are adjusted for multiplicity (Holm for the
  family-wise error rate, Benjamini-Hochberg for the false discovery rate).

Table orientation used throughout (rows = exposure, columns = outcome)::

                  outcome   no outcome
    exposed          a          b
    unexposed        c          d

RD = a / (a + b) - c / (c + d).

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep

__all__ = [
    "MEASURE_COLUMNS",
    "RiskDifference",
    "TwoByTwo",
    "adjust_pvalues",
    "boschloo_exact_p",
    "ci_method_for",
    "fisher_exact_p",
    "measure_association_table",
    "risk_difference",
    "two_by_two",
]

# Risk-difference interval: Newcombe hybrid score, or Chan & Zhang exact unconditional.
CIMethod = Literal["newcombe", "exact"]

# Methods accepted by ``adjust_pvalues`` -> column suffix used in the table.
_ADJUST_LABELS = {"holm": "holm", "fdr_bh": "bh", "bonferroni": "bonferroni", "fdr_by": "by"}


@dataclass(frozen=True)
class TwoByTwo:
    """Counts of a 2x2 exposure-by-outcome table.

    ``n_dropped`` is the number of units removed because exposure or outcome
    was missing; it is kept so that reports can state it.
    """

    a: int  # exposed, outcome
    b: int  # exposed, no outcome
    c: int  # unexposed, outcome
    d: int  # unexposed, no outcome
    n_dropped: int = 0

    @property
    def n_exposed(self) -> int:
        return self.a + self.b

    @property
    def n_unexposed(self) -> int:
        return self.c + self.d

    @property
    def n(self) -> int:
        return self.a + self.b + self.c + self.d

    @property
    def risk_exposed(self) -> float:
        """Outcome proportion among the exposed (NaN if the group is empty)."""
        return self.a / self.n_exposed if self.n_exposed else float("nan")

    @property
    def risk_unexposed(self) -> float:
        """Outcome proportion among the unexposed (NaN if the group is empty)."""
        return self.c / self.n_unexposed if self.n_unexposed else float("nan")

    def as_array(self) -> np.ndarray:
        """The table as ``[[a, b], [c, d]]`` (the layout scipy expects)."""
        return np.array([[self.a, self.b], [self.c, self.d]], dtype=int)


@dataclass(frozen=True)
class RiskDifference:
    """Risk difference p1 - p0 with its confidence interval."""

    estimate: float
    lower: float
    upper: float
    risk_exposed: float
    risk_unexposed: float
    n_exposed: int
    n_unexposed: int
    method: CIMethod
    conf_level: float


# ---------------------------------------------------------------------------
# building the table
# ---------------------------------------------------------------------------


def _as_binary(values: Iterable, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (bool values, missing mask); reject anything that is not 0/1.

    Accepts bool, 0/1 numbers, pandas nullable booleans, and NaN/None/pd.NA
    as missing. Silent coercion of other codes (e.g. 2 = "don't know") would
    bias the table, so those raise instead.
    """
    series = pd.Series(list(values) if not isinstance(values, (pd.Series, np.ndarray)) else values)
    missing = series.isna().to_numpy()
    present = series[~missing]
    ok = present.map(
        lambda v: (
            isinstance(v, (bool, np.bool_, int, np.integer, float, np.floating))
            and not isinstance(v, str)
            and v in (0, 1)
        )
    )
    if not bool(ok.all()):
        bad = sorted({repr(v) for v in present[~ok.to_numpy()]})[:5]
        raise ValueError(f"{name} must be boolean or 0/1 (missing allowed); found {', '.join(bad)}")
    out = np.zeros(len(series), dtype=bool)
    out[~missing] = present.astype(float).to_numpy() == 1.0
    return out, missing


def two_by_two(exposed: Iterable, outcome: Iterable) -> TwoByTwo:
    """Cross-tabulate a binary exposure against a binary outcome.

    Pairs where either value is missing are dropped and counted in
    ``n_dropped`` (complete-case analysis, stated rather than hidden).
    The two inputs are paired by position, not by index.
    """
    x, x_missing = _as_binary(exposed, "exposed")
    y, y_missing = _as_binary(outcome, "outcome")
    if len(x) != len(y):
        raise ValueError(f"exposed and outcome differ in length ({len(x)} vs {len(y)})")
    keep = ~(x_missing | y_missing)
    x, y = x[keep], y[keep]
    return TwoByTwo(
        a=int(np.sum(x & y)),
        b=int(np.sum(x & ~y)),
        c=int(np.sum(~x & y)),
        d=int(np.sum(~x & ~y)),
        n_dropped=int(np.sum(~keep)),
    )


def _counts(table) -> tuple[int, int, int, int]:
    """Accept a TwoByTwo, a 2x2 array-like or a flat (a, b, c, d)."""
    if isinstance(table, TwoByTwo):
        return table.a, table.b, table.c, table.d
    arr = np.asarray(table)
    if arr.shape == (2, 2):
        arr = arr.ravel()
    if arr.shape != (4,):
        raise ValueError("table must be a TwoByTwo, a 2x2 array or (a, b, c, d)")
    if np.any(arr < 0) or np.any(arr != np.round(arr)):
        raise ValueError("table counts must be non-negative integers")
    a, b, c, d = (int(v) for v in arr)
    return a, b, c, d


# ---------------------------------------------------------------------------
# risk difference
# ---------------------------------------------------------------------------


def risk_difference(table, *, alpha: float = 0.05, method: CIMethod = "newcombe") -> RiskDifference:
    """Risk difference p1 - p0 with a (1 - alpha) confidence interval.

    method:
      * ``"newcombe"`` (default): Newcombe (1998) hybrid score interval,
        method 10 of Stat Med 17:873-890, from statsmodels
        ``confint_proportions_2indep(compare='diff', method='newcomb')``,
        which reproduces Newcombe's Table II to 4 decimals.
      * ``"exact"``: Chan & Zhang (1999) exact unconditional interval, inverting
        two one-sided exact tests (each alpha/2) ordered by the
        Farrington-Manning score statistic, nuisance parameter maximised
        numerically; the hull of the accepted differences (see
        ``_chan_zhang_interval``). Guaranteed coverage, wider; about 0.1-0.15 s of
        CPU per table at 13-25 units per group (the sample's tables; benchmarks/chan_zhang.py),
        2.4 s at 30/90 vs 20/89 and 5 s at 2/120 vs 9/59, more when one group has ~150
        and the other ~1,600 units.

    If either group is empty the estimate and interval are NaN.
    """
    a, b, c, d = _counts(table)
    n1, n0 = a + b, c + d
    p1 = a / n1 if n1 else float("nan")
    p0 = c / n0 if n0 else float("nan")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    if method not in ("newcombe", "exact"):
        raise ValueError(f"unknown method {method!r}; use 'newcombe' or 'exact'")
    if n1 == 0 or n0 == 0:
        lower = upper = float("nan")
    elif method == "newcombe":
        low, upp = confint_proportions_2indep(a, n1, c, n0, compare="diff", method="newcomb", alpha=alpha)
        # clip floating-point noise (e.g. -1.0000000000000002) back into [-1, 1]
        lower, upper = float(np.clip(low, -1.0, 1.0)), float(np.clip(upp, -1.0, 1.0))
    else:
        lower, upper = _chan_zhang_interval(a, n1, c, n0, alpha)
    return RiskDifference(
        estimate=p1 - p0,
        lower=lower,
        upper=upper,
        risk_exposed=p1,
        risk_unexposed=p0,
        n_exposed=n1,
        n_unexposed=n0,
        method=method,
        conf_level=1 - alpha,
    )


def ci_method_for(n_exposed: int, n_unexposed: int) -> CIMethod:
    """Interval method for the risk difference by the documented rule (assumptions log A6).

    ``"newcombe"`` when *both* groups exceed ``power.LARGE_GROUP`` (200) units, where the two
    intervals' coverage agree and the exact one costs minutes; ``"exact"`` (Chan & Zhang)
    otherwise, including national data where one group is small (e.g. a measure used by 150
    municipalities), since the Newcombe interval's coverage is not guaranteed there.
    """
    from .power import LARGE_GROUP  # power imports this module

    if min(int(n_exposed), int(n_unexposed)) < 0:
        raise ValueError("群の大きさは0以上でなければなりません / group sizes must be non-negative")
    return "newcombe" if min(n_exposed, n_unexposed) > LARGE_GROUP else "exact"


_P0_SCALAR_MAX = 8  # up to this many (table, delta) pairs the exact MLE is bisected in Python floats


def _restricted_p0(x1, n1, x0, n0, delta) -> np.ndarray:
    """MLE of p0 under the constraint p1 - p0 = delta, for arrays of tables (and of deltas).

    The log-likelihood is concave in p0 on [max(0, -delta), min(1, 1 - delta)],
    so bisection on the sign of its derivative is robust (including zero
    cells and boundary solutions, where the closed-form cubic is fragile).
    ``delta`` may be a scalar or an array broadcasting against the tables.
    A few pairs are bisected in Python floats (the same IEEE operations, so the same bits,
    without numpy's per-call overhead), more in numpy with preallocated arrays.
    """
    delta = np.asarray(delta, dtype=float)
    shape = np.broadcast(x1, x0, delta).shape
    if int(np.prod(shape)) <= _P0_SCALAR_MAX:
        pairs = zip(*(np.broadcast_to(v, shape).ravel().tolist() for v in (x1, x0, delta)), strict=True)
        out = [_restricted_p0_one(float(a), float(n1 - a), float(c), float(n0 - c), d) for a, c, d in pairs]
        return np.array(out, dtype=float).reshape(shape)
    lo = np.broadcast_to(np.maximum(0.0, -delta), shape).copy()
    hi = np.broadcast_to(np.minimum(1.0, 1.0 - delta), shape).copy()
    # derivative terms x1/q1, y1/(1-q1), x0/p0, y0/(1-p0); a zero count's term stays 0.0 (0 log 0 = 0)
    terms: list[tuple[np.ndarray, np.ndarray | None, np.ndarray]] = []
    for count in (x1, n1 - x1, x0, n0 - x0):
        count = np.broadcast_to(np.asarray(count, dtype=float), shape)
        is_positive = count > 0
        terms.append((count, None if is_positive.all() else is_positive, np.zeros(shape)))
    mid, q1, den, g = np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape)
    up, down = np.empty(shape, dtype=bool), np.empty(shape, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(60):
            np.add(lo, hi, out=mid)
            np.multiply(mid, 0.5, out=mid)
            np.add(mid, delta, out=q1)
            for (count, positive, term), rate, complement in zip(
                terms, (q1, q1, mid, mid), (False, True, False, True), strict=True
            ):
                if complement:
                    rate = np.subtract(1.0, rate, out=den)
                np.divide(count, rate, out=term, where=True if positive is None else positive)
            np.subtract(terms[0][2], terms[1][2], out=g)
            np.add(g, terms[2][2], out=g)
            np.subtract(g, terms[3][2], out=g)
            np.greater(g, 0, out=up)
            np.logical_not(up, out=down)
            np.copyto(lo, mid, where=up)
            np.copyto(hi, mid, where=down)
    return 0.5 * (lo + hi)


def _restricted_p0_one(x1: float, y1: float, x0: float, y0: float, delta: float) -> float:
    """:func:`_restricted_p0` for one table and one delta in Python floats: the same steps, the same bits."""
    lo, hi = max(0.0, -delta), min(1.0, 1.0 - delta)
    inf = float("inf")
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        q1 = mid + delta
        r1, r0 = 1 - q1, 1 - mid
        # a positive count over a zero rate is +inf as in numpy (no denominator here is -0.0)
        g = (
            ((x1 / q1 if q1 else inf) if x1 > 0 else 0.0)
            - ((y1 / r1 if r1 else inf) if y1 > 0 else 0.0)
            + ((x0 / mid if mid else inf) if x0 > 0 else 0.0)
            - ((y0 / r0 if r0 else inf) if y0 > 0 else 0.0)
        )
        if g > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


class _Tables:
    """Per-table constants of the closed-form MLE and of the score statistic (tables as arrays).

    Hoisted out of the per-delta work; each is the same floating-point expression, evaluated in
    the same order, as in the formula, so the results are bit for bit those of computing it whole.
    """

    def __init__(self, x1, n1: int, x0, n0: int) -> None:
        p1h, p0h, theta = x1 / n1, x0 / n0, n0 / n1
        a = 1 + theta
        self.x1, self.n1, self.x0, self.n0 = x1, n1, x0, n0
        self.b0 = 1 + theta + p1h + theta * p0h
        self.b_delta = theta + 2
        self.c_delta = 2 * p1h + theta + 1
        self.p1h, self.theta_p0h, self.neg_p1h = p1h, theta * p0h, -p1h
        self.a3_cubed, self.a6_sq, self.a2, self.a3_sq, self.a3 = (3 * a) ** 3, 6 * a**2, 2 * a, (3 * a) ** 2, 3 * a
        self.est = x1 / n1 - x0 / n0
        # many tables share b0 (it is about 1 + theta + (x1 + x0) / n1): the cube of b, slow for
        # numpy at negative b, is then taken once per distinct value and gathered
        self.b0_distinct: np.ndarray | None = None
        if np.ndim(self.b0) == 1 and len(self.b0) > 16:
            distinct, inverse = np.unique(self.b0, return_inverse=True)
            if len(distinct) < 0.7 * len(self.b0):
                self.b0_distinct, self.b0_inverse = distinct, inverse

    def closed_form(self, delta) -> np.ndarray:
        """The MLE of :func:`_restricted_p0` from Farrington & Manning's (1990) closed-form cubic root.

        About ten times faster than the bisection, but loses precision near delta = 0 (about
        1e-8 there); used only to scan for region changes, which are then confirmed exactly.
        """
        delta = np.asarray(delta, dtype=float)
        shape = np.broadcast(self.b0, delta).shape
        if not shape:  # one table, one delta: work on length-1 arrays
            return self.closed_form(delta.reshape(1)).reshape(())
        if self.b0_distinct is not None and delta.ndim == 2 and delta.shape[1] == 1:
            b_distinct = np.negative(self.b0_distinct + delta * self.b_delta)
            b = b_distinct[:, self.b0_inverse]
            cube = (b_distinct**3)[:, self.b0_inverse]
        else:
            b = np.negative(self.b0 + delta * self.b_delta)
            cube = None
        c = delta**2 + delta * self.c_delta
        c += self.p1h
        c += self.theta_p0h
        d = self.neg_p1h * delta
        d *= 1 + delta
        v = b**3 if cube is None else cube
        v /= self.a3_cubed
        bc = b * c
        bc /= self.a6_sq
        v -= bc
        d /= self.a2
        v += d
        s = b**2
        s /= self.a3_sq
        c /= self.a3
        s -= c
        np.maximum(s, 0.0, out=s)
        np.sqrt(s, out=s)
        u = np.sign(v)
        u *= s
        with np.errstate(divide="ignore", invalid="ignore"):
            r = v / u**3
        r[np.isnan(r)] = 1.0
        np.clip(r, -1.0, 1.0, out=r)
        w = np.arccos(r, out=r)
        w += np.pi
        w /= 3
        p0t = 2 * u
        p0t *= np.cos(w, out=w)
        b /= self.a3
        p0t -= b
        p0t -= delta
        return np.clip(p0t, np.maximum(0.0, -delta), np.minimum(1.0, 1.0 - delta), out=p0t)

    def score(self, delta, *, fast: bool = False) -> np.ndarray:
        """:func:`_score_statistic` for these tables (``fast``: the closed-form MLE)."""
        delta = np.asarray(delta, dtype=float)
        if fast:
            p0t = self.closed_form(delta)
        else:
            p0t = _restricted_p0(self.x1, self.n1, self.x0, self.n0, delta)
        p1t = np.clip(p0t + delta, 0.0, 1.0)
        var = p1t * (1 - p1t)
        var /= self.n1
        v0 = p0t * (1 - p0t)
        v0 /= self.n0
        var += v0
        num = np.asarray(self.est - delta, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = num / np.sqrt(var)
        degenerate = var <= 1e-15
        if degenerate.any():
            # zero variance at the constrained MLE: the statistic is +-inf (or 0 on the null)
            num = np.round(num, 12)
            limit = np.where(num > 0, np.inf, np.where(num < 0, -np.inf, 0.0))
            z = np.where(degenerate, limit, z)
        return z


def _score_statistic(x1, n1, x0, n0, delta, *, fast: bool = False) -> np.ndarray:
    """Farrington-Manning score statistic for H0: p1 - p0 = delta (delta scalar or array)."""
    return _Tables(x1, n1, x0, n0).score(delta, fast=fast)


@functools.lru_cache(maxsize=64)
def _log_choose(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k = 0..n, log C(n, k) and n - k, computed once per n (prob() asks thousands of times)."""
    k = np.arange(n + 1)
    return k, special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1), n - k


def _binom_pmf_rows(n: int, p: np.ndarray) -> np.ndarray:
    """Binomial pmf, one row per rate in p (plain numpy: scipy's per-call overhead dominates).

    xlogy(k, p) is k * log(p) (0 at k = 0) and xlog1py(n - k, -p) is (n - k) * log1p(-p) (0 at
    k = n), one rounding each: the logarithms are taken once per rate, with scipy's own
    functions, and multiplied by k, which gives the same bits as the elementwise calls.
    """
    k, log_choose, n_minus_k = _log_choose(n)
    p = np.asarray(p, dtype=float)[:, None]
    if len(p) < 8:  # a few rates: the elementwise calls are cheaper than the extra steps
        return np.exp(log_choose + special.xlogy(k, p) + special.xlog1py(n_minus_k, -p))
    with np.errstate(invalid="ignore"):
        t1 = k * special.xlogy(1.0, p)
        t2 = (n - k) * special.xlog1py(1.0, -p)
    t1[:, 0] = 0.0
    t2[:, n] = 0.0
    t1 += log_choose
    t1 += t2
    return np.exp(t1, out=t1)


#: The per-measure numbers of measure_association_table (after "measure"), in order.
MEASURE_COLUMNS = (
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
)

_CZ_GRID = 800  # steps between estimate and edge on which region changes are located
_CZ_BUDGET = 2_000_000  # tables x grid points per scan; larger tables get a coarser grid
_CZ_CACHE_CELLS = 32_768  # tables x deltas per chunk of the closed-form scan
_NEAR_TIE = 1e-4  # relative gap below which the exact statistic decides a table's membership


class _ChanZhang:
    """Exact unconditional tail probabilities of the score test for one observed table.

    ``regions(deltas, lower)`` marks, for each delta, the tables at least as extreme as the
    observed one (T <= t_obs for ``lower``, T >= t_obs otherwise); ``prob(delta, region)`` is
    the supremum over the nuisance p0 of the region's probability under p1 - p0 = delta.
    """

    def __init__(self, x1: int, n1: int, x0: int, n0: int, n_grid: int = 400) -> None:
        self.x1, self.n1, self.x0, self.n0, self.n_grid = x1, n1, x0, n0, n_grid
        k1, k0 = np.meshgrid(np.arange(n1 + 1), np.arange(n0 + 1), indexing="ij")
        self.k1, self.k0 = k1.ravel(), k0.ravel()
        self.n_tables = self.k1.size
        self.obs = x1 * (n0 + 1) + x0  # index of the observed table in the flattened grid
        self.hybrid = True  # exact regions via the closed form plus exact near-ties (see regions)
        self.all_tables = _Tables(self.k1, n1, self.k0, n0)
        self.observed = _Tables(x1, n1, x0, n0)

    def regions(self, deltas, lower: bool, fast: bool = False) -> np.ndarray:
        """Boolean (len(deltas), n_tables), computed in chunks to bound memory.

        ``fast``: the closed-form statistic throughout (for scanning only). Otherwise the
        regions are exact: the closed form sorts every table whose statistic is clearly apart
        from the observed one (its error is below 1e-7 relative for |delta| >= 1e-3, measured
        on every table up to 120 x 59; ``_NEAR_TIE`` leaves a margin of 1000 times that), and
        the exact statistic decides the near-ties, the non-finite values and |delta| < 1e-3.
        """
        deltas = np.atleast_1d(np.asarray(deltas, dtype=float))
        # the closed form's temporaries kept within the cache (chunking changes no value)
        step = max(1, (_CZ_CACHE_CELLS if fast else _CZ_BUDGET // 4) // self.n_tables)
        out = np.empty((len(deltas), self.n_tables), dtype=bool)
        for i in range(0, len(deltas), step):
            d = deltas[i : i + step, None]
            exact_all = not fast and not self.hybrid
            t = self.all_tables.score(d, fast=fast or not exact_all)
            t_obs = t[:, [self.obs]]
            if not fast and self.hybrid:
                t_obs = self.observed.score(d)
                with np.errstate(invalid="ignore"):
                    scale = np.maximum(1.0, np.maximum(np.abs(t), np.abs(t_obs)))
                    near = ~(np.abs(t - t_obs) > _NEAR_TIE * scale)  # also NaN/inf
                near |= np.abs(d) < 1e-3
                rows, cols = np.nonzero(near)
                if len(rows):
                    t = t.copy()
                    t[rows, cols] = _score_statistic(self.k1[cols], self.n1, self.k0[cols], self.n0, d[rows, 0])
                t[:, self.obs] = t_obs[:, 0]
            with np.errstate(invalid="ignore"):
                tol = np.where(np.isfinite(t_obs), 1e-9 * np.maximum(1.0, np.abs(t_obs)), 0.0)
            out[i : i + step] = (t <= t_obs + tol) if lower else (t >= t_obs - tol)
        return out

    def prob(self, delta: float, region: np.ndarray) -> float:
        return float(self.probs(np.array([delta]), region[None, :])[0])

    def probs(self, deltas: np.ndarray, regions: np.ndarray) -> np.ndarray:
        """``prob`` for several (delta, region) pairs at once: a grid over the nuisance p0,
        then a golden-section refinement around each pair's best grid point."""
        deltas = np.asarray(deltas, dtype=float)
        n_pairs = len(deltas)
        region = regions.reshape(n_pairs, self.n1 + 1, self.n0 + 1).astype(float)
        lo, hi = np.maximum(0.0, -deltas), np.minimum(1.0, 1.0 - deltas)

        d_col = deltas[:, None]

        def at(p0s: np.ndarray) -> np.ndarray:  # p0s: (n_pairs, points)
            shape = p0s.shape
            p1s = p0s + d_col
            np.maximum(p1s, 0.0, out=p1s)  # = np.clip(p1s, 0, 1) (no NaN here), without its wrapper
            np.minimum(p1s, 1.0, out=p1s)
            f1 = _binom_pmf_rows(self.n1, p1s.ravel())
            f0 = _binom_pmf_rows(self.n0, p0s.ravel())
            f1 = f1.reshape(*shape, self.n1 + 1)
            f0 = f0.reshape(*shape, self.n0 + 1)
            return np.einsum("sgj,sgj->sg", f1 @ region, f0)  # BLAS product first: ~5x a 3-way einsum

        grid = np.linspace(lo, hi, self.n_grid, axis=1)
        vals = at(grid)
        i = np.argmax(vals, axis=1)
        rows = np.arange(n_pairs)
        a_ = grid[rows, np.maximum(i - 1, 0)]
        b_ = grid[rows, np.minimum(i + 1, self.n_grid - 1)]
        best = vals[rows, i]
        gr = (np.sqrt(5) - 1) / 2
        pts = np.empty((n_pairs, 2))
        for _ in range(30):
            step = gr * (b_ - a_)
            c_, d_ = b_ - step, a_ + step
            pts[:, 0], pts[:, 1] = c_, d_
            fcd = at(pts)
            fc, fd = fcd[:, 0], fcd[:, 1]
            best = np.maximum(best, np.maximum(fc, fd))
            left = fc >= fd
            b_ = np.where(left, d_, b_)
            a_ = np.where(left, a_, c_)
        return np.minimum(best, 1.0)

    def tail(self, delta: float, lower: bool) -> float:
        return self.prob(delta, self.regions(delta, lower)[0])

    def tails(self, deltas: np.ndarray, lower: bool) -> np.ndarray:
        """``tail`` at several deltas at once (the same values: every step is per delta)."""
        return self.probs(deltas, self.regions(deltas, lower))

    @property
    def lookahead(self) -> int:
        """Bisection levels evaluated per batch (see :func:`_bisect`): many where a batch costs
        little more than one evaluation (small tables), one where each costs its own."""
        return 3 if self.n_tables <= 1_500 else 2 if self.n_tables <= 6_000 else 1

    def _agrees(
        self,
        deltas: np.ndarray,
        cell_of: np.ndarray,
        tbl: np.ndarray,
        want: np.ndarray,
        lower: bool,
        fast: bool,
        tables: _Tables | None = None,
    ) -> np.ndarray:
        """Per cell: do the listed tables' memberships at that cell's delta equal ``want``?

        ``tables``: the listed tables' constants (``_Tables(k1[tbl], n1, k0[tbl], n0)``), if at hand.
        """
        d_obs = np.asarray(deltas, dtype=float)
        t_obs = self.observed.score(d_obs, fast=fast)
        tables = _Tables(self.k1[tbl], self.n1, self.k0[tbl], self.n0) if tables is None else tables
        t = tables.score(d_obs[cell_of], fast=fast)
        t_ref = t_obs[cell_of]
        with np.errstate(invalid="ignore"):
            tol = np.where(np.isfinite(t_ref), 1e-9 * np.maximum(1.0, np.abs(t_ref)), 0.0)
        member = (t <= t_ref + tol) if lower else (t >= t_ref - tol)
        wrong = np.bincount(cell_of, weights=(member != want).astype(float), minlength=len(d_obs))
        return wrong == 0

    def _locate(
        self, inner: np.ndarray, outer: np.ndarray, before: np.ndarray, after: np.ndarray, lower: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """For cells [inner, outer] whose region goes from ``before`` to ``after``: the change
        point into ``after`` to 1e-9, as (inside, outside) with the region ``after`` at outside.

        Only the tables whose membership differs at the two ends can move the change point, so
        the bisection evaluates those alone, for every cell at once: fast statistic first, then
        the exact one where the fast result does not hold exactly.
        """
        inside, outside = inner.copy(), outer.copy()
        diff = before != after
        cell_of, tbl = np.nonzero(diff)
        want = after[cell_of, tbl]
        tables = _Tables(self.k1[tbl], self.n1, self.k0[tbl], self.n0)
        for fast_step in (True, False):
            for _ in range(40):
                if not len(inside) or np.max(np.abs(outside - inside)) < 1e-9:
                    break
                mid = 0.5 * (inside + outside)
                is_outer = self._agrees(mid, cell_of, tbl, want, lower, fast_step, tables)
                outside = np.where(is_outer, mid, outside)
                inside = np.where(is_outer, inside, mid)
            if not fast_step or not len(inside):
                break
            # keep the fast result where the exact region agrees at both sides of the change
            ok = self._agrees(outside, cell_of, tbl, want, lower, False, tables) & ~self._agrees(
                inside, cell_of, tbl, want, lower, False, tables
            )
            if ok.all():
                break
            inside, outside = np.where(ok, inside, inner), np.where(ok, outside, outer)
        return inside, outside

    def stretches(self, est: float, edge: float, lower: bool) -> list[tuple[float, float, np.ndarray]]:
        """Stretches of constant region between est and edge: (start, end, region), inner first.

        Region changes are looked for on a grid (``_CZ_GRID`` steps, fewer for large tables)
        with the fast closed-form statistic, confirmed with the exact one at both ends of each
        grid cell, and each change point is then found to 1e-9 by bisection (all at once).
        A cell can hold several changes: when the region just inside a located change is not
        the cell's inner region, the part inside is searched again, until none is left.
        """
        n_steps = int(min(_CZ_GRID, max(50, _CZ_BUDGET // self.n_tables)))
        deltas = np.linspace(est, edge, n_steps + 1)
        fast = self.regions(deltas, lower, fast=True)
        cand = np.flatnonzero(np.any(fast[1:] != fast[:-1], axis=1))
        ends = np.unique(np.concatenate([[0], cand, cand + 1]))
        exact = dict(zip(ends, self.regions(deltas[ends], lower), strict=False))
        cells = np.array([g for g in cand if not np.array_equal(exact[g], exact[g + 1])], dtype=int)
        empty = np.empty((0, self.n_tables), dtype=bool)
        inner, outer = deltas[cells], deltas[cells + 1]
        before = np.array([exact[g] for g in cells]).reshape(-1, self.n_tables) if len(cells) else empty
        after = np.array([exact[g + 1] for g in cells]).reshape(-1, self.n_tables) if len(cells) else empty
        points: list[tuple[float, np.ndarray]] = []
        for _ in range(1000):  # each round finds the next change inwards within the same cells
            if not len(inner):
                break
            inside, outside = self._locate(inner, outer, before, after, lower)
            points.extend(zip(outside, after, strict=True))
            just_inside = self.regions(inside, lower)
            more = ~np.all(just_inside == before, axis=1)
            inner, outer, before, after = inner[more], inside[more], before[more], just_inside[more]
        else:
            raise RuntimeError(f"Chan-Zhang: change points of {self.x1}/{self.n1} vs {self.x0}/{self.n0} not separated")
        points.sort(key=lambda pt: abs(pt[0] - est))
        starts = np.array([est, *(pt[0] for pt in points)], dtype=float)
        ends = np.array([*(pt[0] for pt in points), edge], dtype=float)
        regions = [exact[0], *(pt[1] for pt in points)]
        return list(zip(starts, ends, regions, strict=False))


@functools.lru_cache(maxsize=1024)
def _chan_zhang_interval(x1: int, n1: int, x0: int, n0: int, alpha: float, n_grid: int = 400) -> tuple[float, float]:
    """Chan & Zhang (1999) exact unconditional interval for p1 - p0.

    Memoised per table and alpha in the process (fiscal-year and trends reports can ask for the
    same table); the limits are a pure function of the arguments.

    Each limit inverts a one-sided exact test at alpha/2. The set of differences a test does
    not reject need not be an interval: the tail probability falls as delta moves away from the
    estimate but jumps up wherever a table joins the region "at least as extreme" (discreteness).
    E.g. for 0/10 vs 17/25 the upper-limit test rejects -0.348 < delta < -0.2655 but not
    -0.2655 to -0.2625. We report the hull of the non-rejected values (here the upper limit is
    -0.2625, not -0.348), the conservative convention: the interval contains every value the
    test does not reject, so its coverage is at least that of the acceptance set (>= 95 %),
    and it is an interval (Fay & Hunsberger 2021, Stat Surveys 15:1-69, section on confidence
    sets from non-monotone p-value functions). Stopping at the first rejection instead would
    report an interval that omits accepted values and can lose the guaranteed coverage.

    How: between change points the region is fixed, and with the region fixed the tail
    probability is monotone in delta (a region of tables at least as extreme is monotone in
    the counts, and binomials are stochastically ordered in their rates), so it is largest at
    the stretch's inner end. The change points are found (:meth:`_ChanZhang.stretches`),
    stretches are checked from the edge inwards at their inner ends, and the outermost stretch
    with an accepted value is searched by bisection.
    """
    from .models import single_blas_thread  # the same BLAS rounding in every process (see there)

    with single_blas_thread():
        return _chan_zhang_limits(x1, n1, x0, n0, alpha, n_grid)


def _bisect(
    inside: float,
    outside: float,
    accepted: Callable[[np.ndarray], np.ndarray],
    steps: int,
    lookahead: int,
    tol: float = 0.0,
) -> tuple[float, float]:
    """Bisection between an accepted ``inside`` and a rejected ``outside``: ``steps`` halvings, or
    fewer once they are closer than ``tol``; returns the final (inside, outside).

    Exactly the plain loop ``mid = 0.5 * (inside + outside)``, then inside or outside = mid, but
    the midpoints of the next ``lookahead`` levels (every branch) are evaluated in one call of
    ``accepted`` (deltas -> bools), since a batch costs little more than one evaluation.
    """
    done = 0
    while done < steps:
        # heap order: node i = (lo, hi) has mid 0.5 * (lo + hi), children 2i+1 (rejected: lo, mid)
        # and 2i+2 (accepted: mid, hi)
        nodes, mids = [(inside, outside)], []
        for _ in range(min(lookahead, steps - done)):
            nxt = []
            for lo, hi in nodes:
                mid = 0.5 * (lo + hi)
                mids.append(mid)
                nxt += [(lo, mid), (mid, hi)]
            nodes = nxt
        ok = accepted(np.array(mids))
        i = 0
        while i < len(mids):
            if ok[i]:
                inside, i = mids[i], 2 * i + 2
            else:
                outside, i = mids[i], 2 * i + 1
            done += 1
            if abs(inside - outside) < tol or done >= steps:
                return inside, outside
    return inside, outside


def _chan_zhang_limits(x1: int, n1: int, x0: int, n0: int, alpha: float, n_grid: int) -> tuple[float, float]:
    """The two limits of :func:`_chan_zhang_interval` (which see)."""
    target = alpha / 2
    cz = _ChanZhang(x1, n1, x0, n0, n_grid)
    est = x1 / n1 - x0 / n0

    def limit(upper_limit: bool) -> float:
        lower_tail = upper_limit  # the upper limit is where P(T <= t_obs) falls to alpha/2
        edge = 1.0 if upper_limit else -1.0
        if cz.tail(edge, lower_tail) > target:
            return edge
        # a coarse crossing by bisection (Chan & Zhang's own search, to 1/64 of the range):
        # everything between the estimate and `inside` is in the hull; the stretches from
        # `inside` (accepted) to the edge are then searched for the outermost accepted value
        inside, outside = _bisect(est, edge, lambda d: cz.tails(d, lower_tail) > target, 6, cz.lookahead)
        crossing = inside
        outer_first = list(reversed(cz.stretches(inside, edge, lower_tail)))
        batch, k = 4, 0
        while k < len(outer_first):  # the first accepted stretch start, in growing batches
            chunk = outer_first[k : k + batch]
            accepted = np.flatnonzero(
                cz.probs(np.array([c[0] for c in chunk]), np.array([c[2] for c in chunk])) > target
            )
            if not len(accepted):  # nothing in these stretches is accepted (each is largest at its start)
                k, batch = k + len(chunk), min(2 * batch, 64)
                continue
            start, end, region = chunk[int(accepted[0])]
            if cz.prob(end, region) > target:
                return float(end)  # accepted up to where the (rejected) outer stretch begins
            inside, outside = _bisect(
                start,
                end,
                lambda d: cz.probs(d, np.broadcast_to(region, (len(d), len(region)))) > target,  # noqa: B023
                40,
                cz.lookahead,
                tol=1e-6,
            )
            return float(0.5 * (inside + outside))
        return crossing  # not reached: the innermost stretch starts at an accepted value

    return limit(False), limit(True)


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------


def fisher_exact_p(table, alternative: str = "two-sided") -> float:
    """Fisher exact test p-value (two-sided by default, scipy's definition).

    Two-sided p sums the probabilities of all tables with the same margins
    that are no more probable than the observed one (the usual definition,
    also R's). Returns NaN when a group is empty: there is nothing to compare.
    """
    a, b, c, d = _counts(table)
    if a + b == 0 or c + d == 0:
        return float("nan")
    return float(stats.fisher_exact([[a, b], [c, d]], alternative=alternative).pvalue)


def boschloo_exact_p(table, alternative: str = "two-sided", n: int = 32) -> float:
    """Boschloo's exact unconditional test p-value (scipy.stats.boschloo_exact).

    Uniformly more powerful than Fisher's test in the one-sided case, at the
    cost of a maximisation over the nuisance parameter (``n`` sampling points).
    NaN when a group is empty.
    """
    a, b, c, d = _counts(table)
    if a + b == 0 or c + d == 0:
        return float("nan")
    # scipy compares columns; transpose so that the groups are the columns
    res = stats.boschloo_exact([[a, c], [b, d]], alternative=alternative, n=n)
    return float(res.pvalue)


def adjust_pvalues(pvalues, methods: Sequence[str] = ("holm", "fdr_bh")) -> pd.DataFrame:
    """Multiplicity-adjusted p-values, one column per method.

    Wraps statsmodels ``multipletests``. NaN p-values stay NaN and are not
    counted in the family size (a measure that could not be tested is not a
    hypothesis that was tested). The index of a Series input is preserved.
    """
    if isinstance(methods, str):
        methods = (methods,)
    index = pvalues.index if isinstance(pvalues, pd.Series) else None
    p = np.asarray(pvalues, dtype=float).ravel()
    finite = ~np.isnan(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    out = {}
    for method in methods:
        adj = np.full(p.shape, np.nan)
        if finite.any():
            adj[finite] = multipletests(p[finite], method=method)[1]
        out[method] = adj
    return pd.DataFrame(out, index=index)


# ---------------------------------------------------------------------------
# per-measure table
# ---------------------------------------------------------------------------


def measure_association_table(
    frame: pd.DataFrame,
    exposure_cols: Sequence[str],
    outcome_col: str,
    *,
    alpha: float = 0.05,
    ci_method: CIMethod = "newcombe",
    adjust: Sequence[str] = ("holm", "fdr_bh"),
    boschloo: bool = False,
) -> pd.DataFrame:
    """One row per support measure: counts, rates, RD with CI, Fisher p, adjusted p.

    Rows follow ``exposure_cols`` in the order given. Missing values are
    dropped pairwise per measure (``n_dropped``). Measures where one group is
    empty get NaN estimates and p-values and are left out of the
    multiplicity family. Deterministic: no randomness anywhere.

    Columns: measure, n_exposed, n_unexposed, n_dropped, events_exposed,
    events_unexposed, rate_exposed, rate_unexposed, rd, rd_lower, rd_upper,
    p_fisher, p_holm, p_bh (labels per ``adjust``), and p_boschloo if asked.
    """
    exposure_cols = list(exposure_cols)
    if len(set(exposure_cols)) != len(exposure_cols):
        raise ValueError("exposure_cols contains duplicates; each measure may enter the family once")
    missing = [col for col in [*exposure_cols, outcome_col] if col not in frame.columns]
    if missing:
        raise KeyError(f"columns not in frame: {missing}")
    if outcome_col in exposure_cols:
        raise ValueError("outcome_col cannot also be an exposure")

    rows = []
    for col in exposure_cols:
        tab = two_by_two(frame[col], frame[outcome_col])
        rd = risk_difference(tab, alpha=alpha, method=ci_method)
        row = {
            "measure": col,
            "n_exposed": tab.n_exposed,
            "n_unexposed": tab.n_unexposed,
            "n_dropped": tab.n_dropped,
            "events_exposed": tab.a,
            "events_unexposed": tab.c,
            "rate_exposed": tab.risk_exposed,
            "rate_unexposed": tab.risk_unexposed,
            "rd": rd.estimate,
            "rd_lower": rd.lower,
            "rd_upper": rd.upper,
            "p_fisher": fisher_exact_p(tab),
        }
        if boschloo:
            row["p_boschloo"] = boschloo_exact_p(tab)
        rows.append(row)

    columns = ["measure", *MEASURE_COLUMNS]
    table = pd.DataFrame(rows, columns=columns + (["p_boschloo"] if boschloo else []))
    if adjust:
        adjusted = adjust_pvalues(table["p_fisher"].to_numpy(), methods=adjust)
        for method in adjust:
            table[f"p_{_ADJUST_LABELS.get(method, method)}"] = adjusted[method].to_numpy()
    return table
