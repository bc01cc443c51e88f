"""Power of the per-measure comparison at the dataset's actual group sizes.

With 17-41 municipalities per prefecture, a non-significant Fisher test says
little unless we also say how large a difference the data could have
detected. This module answers that by simulation:

* ``simulated_power`` - Monte Carlo power of the two-sided Fisher exact test
  for given group sizes and true rates, with its Monte Carlo standard error;
* ``minimal_detectable_difference`` - the smallest risk difference (exposed
  rate - base rate, grid step 0.01) whose simulated power reaches the target;
* ``power_table`` / ``power_sentence_ja`` - the same per measure, and a plain
  Japanese sentence stating what the data can and cannot rule out.

Speed: at fixed margins (n1, n0) there are only (n1 + 1)(n0 + 1) possible
tables, so Fisher p-values are computed once for all of them (vectorised,
cached) and the simulation only draws the two binomial counts.

Reproducibility: replications are split into fixed-size chunks, each with its
own child seed spawned from ``numpy.random.SeedSequence(seed)``; chunks run via
joblib and are combined in order, so results are identical for any n_jobs.
Counts are drawn by inverse-CDF from the same uniforms at every candidate
difference (common random numbers), which keeps the simulated power curve
smooth and the grid search stable.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pandas as pd
from joblib import delayed
from scipy import stats

from analysis.crosstab import two_by_two
from analysis.parallelism import parallel
from analysis.simchunks import chunk_rejections  # a worker chunk: in a module that imports numpy only

__all__ = [
    "DEFAULT_SEED",
    "LARGE_GROUP",
    "PowerEstimate",
    "exact_power",
    "fisher_pvalue_matrix",
    "mdd_summary",
    "minimal_detectable_difference",
    "normal_mdd",
    "power_curve",
    "power_sentence_ja",
    "power_table",
    "rejection_matrix",
    "simulated_power",
]

DEFAULT_SEED = 20240601
PowerTest = Literal["fisher"]  # the only test implemented: two-sided Fisher exact
PowerMethod = Literal["simulation", "exact"]  # Monte Carlo or full enumeration
MDDMethod = Literal["simulation", "exact", "normal"]  # mdd_summary also has the normal approximation
Direction = Literal["increase", "decrease"]
_CHUNK = 500  # replications per seed chunk; fixed so results do not depend on n_jobs
_REL_TOL = 1 + 1e-7  # tie tolerance of the two-sided Fisher p-value (as scipy and R)


@dataclass(frozen=True)
class PowerEstimate:
    """Simulated power with its Monte Carlo standard error sqrt(p(1-p)/n_sim)."""

    power: float
    mcse: float
    n_sim: int
    n_rejections: int


# ---------------------------------------------------------------------------
# all-tables Fisher p-values
# ---------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _fisher_pvalues_cached(n1: int, n0: int) -> np.ndarray:
    n = n1 + n0
    pvals = np.empty((n1 + 1, n0 + 1))
    for s in range(n + 1):  # s = total number of outcomes (the conditioning margin)
        a = np.arange(max(0, s - n0), min(s, n1) + 1)
        pmf = stats.hypergeom.pmf(a, n, n1, s)
        # two-sided: sum of probabilities of tables no more probable than the observed
        pv = (pmf[None, :] * (pmf[None, :] <= pmf[:, None] * _REL_TOL)).sum(axis=1)
        pvals[a, s - a] = np.minimum(pv, 1.0)
    pvals.flags.writeable = False
    return pvals


def fisher_pvalue_matrix(n1: int, n0: int) -> np.ndarray:
    """Two-sided Fisher p-values for every table with group sizes n1, n0.

    Entry [a, c] is the p-value of the table with a outcomes among the n1
    exposed and c among the n0 unexposed. Matches ``scipy.stats.fisher_exact``
    (same tie tolerance); cached and read-only.
    """
    n1, n0 = _check_sizes(n1, n0)
    return _fisher_pvalues_cached(n1, n0)


def rejection_matrix(n1: int, n0: int, alpha: float = 0.05, test: PowerTest = "fisher") -> np.ndarray:
    """Boolean [a, c] matrix: does the test reject at level alpha (p <= alpha)?"""
    if test != "fisher":
        raise ValueError(f"unsupported test {test!r}; only 'fisher' is implemented")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    return fisher_pvalue_matrix(n1, n0) <= alpha


def _check_sizes(n1, n0) -> tuple[int, int]:
    if int(n1) != n1 or int(n0) != n0 or n1 < 0 or n0 < 0:
        raise ValueError("group sizes must be non-negative integers")
    return int(n1), int(n0)


def _check_rate(p: float, name: str) -> float:
    if not 0 <= p <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {p}")
    return float(p)


# ---------------------------------------------------------------------------
# simulation machinery
# ---------------------------------------------------------------------------


def _binom_cdf(n: int, p: np.ndarray) -> np.ndarray:
    """CDF rows for each rate in p: shape (len(p), n + 1), last column forced to 1."""
    cdf = stats.binom.cdf(np.arange(n + 1)[None, :], n, np.atleast_1d(p)[:, None])
    cdf[:, -1] = 1.0
    return cdf


def _simulate_rejections(
    n1: int, n0: int, p1s: np.ndarray, p0: float, alpha: float, test: PowerTest, n_sim: int, seed, n_jobs: int
) -> np.ndarray:
    """Total rejections out of n_sim at each exposed rate in p1s (base rate p0)."""
    if n_sim < 1:
        raise ValueError("n_sim must be >= 1")
    reject = rejection_matrix(n1, n0, alpha, test)
    cdf1 = _binom_cdf(n1, np.asarray(p1s, dtype=float))
    cdf0 = _binom_cdf(n0, np.array([p0]))[0]
    sizes = [_CHUNK] * (n_sim // _CHUNK) + ([n_sim % _CHUNK] if n_sim % _CHUNK else [])
    children = np.random.SeedSequence(seed).spawn(len(sizes))
    parts = parallel(n_jobs)(
        delayed(chunk_rejections)(child, m, cdf1, cdf0, reject) for child, m in zip(children, sizes, strict=False)
    )
    return np.sum(parts, axis=0)


def _estimate(rejections: int, n_sim: int) -> PowerEstimate:
    p = rejections / n_sim
    return PowerEstimate(power=p, mcse=math.sqrt(p * (1 - p) / n_sim), n_sim=n_sim, n_rejections=int(rejections))


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


def simulated_power(
    n1: int,
    n0: int,
    p1: float,
    p0: float,
    *,
    alpha: float = 0.05,
    test: PowerTest = "fisher",
    n_sim: int = 2000,
    seed=DEFAULT_SEED,
    n_jobs: int = 1,
) -> PowerEstimate:
    """Monte Carlo power of the two-sided Fisher test (reject when p <= alpha).

    n1, n0: group sizes (exposed, unexposed); p1, p0: true outcome rates.
    Returns the power and its Monte Carlo standard error. Identical for the
    same seed whatever n_jobs.
    """
    n1, n0 = _check_sizes(n1, n0)
    p1, p0 = _check_rate(p1, "p1"), _check_rate(p0, "p0")
    rej = _simulate_rejections(n1, n0, np.array([p1]), p0, alpha, test, n_sim, seed, n_jobs)
    return _estimate(int(rej[0]), n_sim)


def exact_power(n1: int, n0: int, p1: float, p0: float, *, alpha: float = 0.05, test: PowerTest = "fisher") -> float:
    """Exact power by full enumeration: sum of P(a) P(c) over rejected tables.

    A finite sum, so no Monte Carlo error; used to cross-check the simulation
    and available when an exact figure is preferred.
    """
    n1, n0 = _check_sizes(n1, n0)
    p1, p0 = _check_rate(p1, "p1"), _check_rate(p0, "p0")
    reject = rejection_matrix(n1, n0, alpha, test)
    f1 = stats.binom.pmf(np.arange(n1 + 1), n1, p1)
    f0 = stats.binom.pmf(np.arange(n0 + 1), n0, p0)
    return float(f1 @ reject.astype(float) @ f0)


def _difference_grid(base_rate: float, step: float, direction: Direction) -> np.ndarray:
    if direction == "increase":
        room = 1.0 - base_rate
    elif direction == "decrease":
        room = base_rate
    else:
        raise ValueError("direction must be 'increase' or 'decrease'")
    k = int(math.floor(room / step + 1e-9))
    grid = np.round(step * np.arange(1, k + 1), 10)
    if room - (grid[-1] if k else 0.0) > 1e-9:
        grid = np.append(grid, room)  # always try the largest possible difference
    return grid if direction == "increase" else -grid


def power_curve(
    n_exposed: int,
    n_unexposed: int,
    base_rate: float,
    *,
    alpha: float = 0.05,
    test: PowerTest = "fisher",
    n_sim: int = 2000,
    seed=DEFAULT_SEED,
    n_jobs: int = 1,
    step: float = 0.01,
    direction: Direction = "increase",
    method: PowerMethod = "simulation",
) -> pd.DataFrame:
    """Power at each difference on the grid (step, 2*step, ... up to the boundary).

    The boundary itself (1 - base_rate, or -base_rate) is always included, so
    "not reachable" is decided at the largest possible difference.

    Columns: difference, exposed_rate, power, mcse (0 for method='exact').
    The base rate is the unexposed group's rate; ``direction='decrease'``
    gives negative differences down to -base_rate.
    """
    n1, n0 = _check_sizes(n_exposed, n_unexposed)
    base_rate = _check_rate(base_rate, "base_rate")
    if not 0 < step < 1:
        raise ValueError("step must be in (0, 1)")
    diffs = _difference_grid(base_rate, step, direction)
    rates = np.clip(base_rate + diffs, 0.0, 1.0)
    if len(diffs) == 0:
        return pd.DataFrame({"difference": [], "exposed_rate": [], "power": [], "mcse": []})
    if method == "simulation":
        rej = _simulate_rejections(n1, n0, rates, base_rate, alpha, test, n_sim, seed, n_jobs)
        power = rej / n_sim
        mcse = np.sqrt(power * (1 - power) / n_sim)
    elif method == "exact":
        reject = rejection_matrix(n1, n0, alpha, test).astype(float)
        f1 = stats.binom.pmf(np.arange(n1 + 1)[None, :], n1, rates[:, None])
        f0 = stats.binom.pmf(np.arange(n0 + 1), n0, base_rate)
        power = f1 @ reject @ f0
        mcse = np.zeros_like(power)
    else:
        raise ValueError("method must be 'simulation' or 'exact'")
    return pd.DataFrame({"difference": diffs, "exposed_rate": rates, "power": power, "mcse": mcse})


def minimal_detectable_difference(
    n_exposed: int,
    n_unexposed: int,
    base_rate: float,
    alpha: float = 0.05,
    power: float = 0.8,
    test: PowerTest = "fisher",
    n_sim: int = 2000,
    seed=DEFAULT_SEED,
    n_jobs: int = 1,
    *,
    step: float = 0.01,
    refine: bool = False,
    direction: Direction = "increase",
    method: PowerMethod = "simulation",
) -> float:
    """Smallest risk difference whose power reaches ``power`` (NaN if none does).

    The difference is exposed rate - base_rate, searched on a grid of
    ``step`` up to 1 - base_rate (or down to -base_rate with
    ``direction='decrease'``, returning a negative number). NaN means "not
    reachable": even the largest possible difference falls short of the target
    power, or a group is empty. With ``refine=True`` the crossing is refined by
    bisection (same random numbers) between the last grid point below the
    target and the first one at or above it.

    Simulated power has Monte Carlo error (SE about 0.009 at power 0.8 with
    n_sim=2000), so the result can move by a grid step between seeds;
    ``method='exact'`` uses exact enumeration instead.
    """
    n1, n0 = _check_sizes(n_exposed, n_unexposed)
    if not 0 < power < 1:
        raise ValueError("power must be in (0, 1)")
    if n1 == 0 or n0 == 0 or base_rate is None or not np.isfinite(base_rate):
        return float("nan")
    curve = power_curve(
        n1,
        n0,
        base_rate,
        alpha=alpha,
        test=test,
        n_sim=n_sim,
        seed=seed,
        n_jobs=n_jobs,
        step=step,
        direction=direction,
        method=method,
    )
    hits = np.flatnonzero(curve["power"].to_numpy() >= power)
    if len(hits) == 0:
        return float("nan")
    i = int(hits[0])
    found = float(curve["difference"].iloc[i])
    if not refine:
        return found
    lo = float(curve["difference"].iloc[i - 1]) if i > 0 else 0.0
    hi = found

    def power_at(diff: float) -> float:
        rate = min(max(base_rate + diff, 0.0), 1.0)
        if method == "exact":
            return exact_power(n1, n0, rate, base_rate, alpha=alpha, test=test)
        return simulated_power(
            n1, n0, rate, base_rate, alpha=alpha, test=test, n_sim=n_sim, seed=seed, n_jobs=n_jobs
        ).power

    for _ in range(12):  # |step| / 2**12 < 3e-6
        mid = 0.5 * (lo + hi)
        if power_at(mid) >= power:
            hi = mid
        else:
            lo = mid
    return hi


def power_table(
    frame: pd.DataFrame,
    exposure_cols: Sequence[str],
    outcome_col: str,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    test: PowerTest = "fisher",
    n_sim: int = 2000,
    seed=DEFAULT_SEED,
    n_jobs: int = 1,
    refine: bool = False,
    method: PowerMethod = "simulation",
    unit: str = "市町",
) -> pd.DataFrame:
    """Per measure: group sizes, base rate and minimal detectable difference.

    The base rate is the observed outcome rate among the unexposed (what the
    exposed group is compared against). Missing values are dropped pairwise,
    as in ``crosstab.measure_association_table``. Columns: measure,
    n_exposed, n_unexposed, n_dropped, base_rate, mdd, exposed_rate_at_mdd,
    reachable, power_at_max (power at the largest possible increase),
    sentence_ja. Rows follow ``exposure_cols``; the same seed is used for every
    measure, so the table is deterministic.
    """
    exposure_cols = list(exposure_cols)
    missing = [col for col in [*exposure_cols, outcome_col] if col not in frame.columns]
    if missing:
        raise KeyError(f"columns not in frame: {missing}")
    rows = []
    for col in exposure_cols:
        tab = two_by_two(frame[col], frame[outcome_col])
        n1, n0 = tab.n_exposed, tab.n_unexposed
        base = tab.risk_unexposed
        if n1 and n0:
            mdd = minimal_detectable_difference(
                n1, n0, base, alpha, power, test, n_sim, seed, n_jobs, refine=refine, method=method
            )
            if base < 1:
                power_at_max = (
                    exact_power(n1, n0, 1.0, base, alpha=alpha, test=test)
                    if method == "exact"
                    else simulated_power(
                        n1, n0, 1.0, base, alpha=alpha, test=test, n_sim=n_sim, seed=seed, n_jobs=n_jobs
                    ).power
                )
            else:
                power_at_max = float("nan")
        else:
            mdd = power_at_max = float("nan")
        rows.append(
            {
                "measure": col,
                "n_exposed": n1,
                "n_unexposed": n0,
                "n_dropped": tab.n_dropped,
                "base_rate": base,
                "mdd": mdd,
                "exposed_rate_at_mdd": base + mdd if np.isfinite(mdd) else float("nan"),
                "reachable": bool(np.isfinite(mdd)),
                "power_at_max": power_at_max,
                "sentence_ja": power_sentence_ja(mdd, n1, n0, alpha=alpha, power=power, unit=unit),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "measure",
            "n_exposed",
            "n_unexposed",
            "n_dropped",
            "base_rate",
            "mdd",
            "exposed_rate_at_mdd",
            "reachable",
            "power_at_max",
            "sentence_ja",
        ],
    )


def _percent(x: float) -> str:
    return f"{round(x * 100, 6):g}%"


def power_sentence_ja(
    mdd: float,
    n_exposed: int,
    n_unexposed: int,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    unit: str = "市町",
    exposed_label: str = "支援あり",
    unexposed_label: str = "なし",
    test_label: str = "Fisherの正確検定",
) -> str:
    """Plain Japanese sentence on what the comparison can and cannot rule out.

    Says that below the minimal detectable difference the test's power is *less than* the
    target ("検出力は80%未満"), not that such differences "cannot be detected": a smaller
    difference can still come out significant, just with probability below the target. The
    difference is in percentage points, rounded down, so the sentence never claims more
    sensitivity than the data have. ``test_label`` names the test the power refers to (the
    simulation is for the two-sided Fisher exact test). NaN (not reachable) gets a sentence
    saying the comparison cannot decide.
    """
    sizes = f"この{unit}数（{exposed_label}{n_exposed}{unit}、{unexposed_label}{n_unexposed}{unit}）では、"
    if mdd is None or not np.isfinite(mdd):
        return (
            sizes + f"実施率の差がどれほど大きくても、{test_label}（有意水準{_percent(alpha)}）で"
            f"有意となる確率（検出力）は{_percent(power)}に届かないため、この比較から関連の有無は判断できません。"
        )
    points = int(math.floor(round(abs(mdd) * 100, 6)))
    return (
        sizes + f"実施率の差が{points}ポイント未満のとき、{test_label}（有意水準{_percent(alpha)}）で"
        f"有意となる確率（検出力）は{_percent(power)}未満です。"
        f"有意差がないことは、{points}ポイント未満の差がないことを意味しません。"
    )


def mdd_summary(
    n_exposed: int,
    n_unexposed: int,
    base_rate: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    n_sim: int = 2000,
    seed=DEFAULT_SEED,
    method: MDDMethod | None = None,
) -> dict:
    """The numbers behind the power sentence, for one comparison (JSON-ready dict).

    Keys: ``test`` ("fisher_two_sided", or "z_two_proportions" when both groups exceed
    LARGE_GROUP), ``alpha``, ``target_power``, ``method`` ("exact" enumeration for groups up to
    LARGE_GROUP by default, "normal" above), ``mdd`` (smallest increase over the base rate with
    power >= target; NaN if none), ``mdd_points`` (floored percentage points, the number the
    sentence quotes), ``exposed_rate_at_mdd``, ``power_at_mdd``, ``power_below_mdd`` (power at
    the largest difference below the MDD on the 1-point grid: the "less than 80 %" the sentence
    states), ``power_at_max`` (power at the largest possible increase) and ``sentence_ja``.
    """
    n1, n0 = _check_sizes(n_exposed, n_unexposed)
    nan = float("nan")
    large = min(n1, n0) > LARGE_GROUP
    method = method or ("normal" if large else "exact")
    out: dict[str, Any] = {
        "test": "z_two_proportions" if method == "normal" else "fisher_two_sided",
        "alpha": alpha,
        "target_power": power,
        "method": method,
        "n_exposed": n1,
        "n_unexposed": n0,
        "base_rate": float(base_rate) if base_rate is not None else nan,
    }
    if n1 == 0 or n0 == 0 or base_rate is None or not np.isfinite(base_rate):
        out.update(
            mdd=nan,
            mdd_points=None,
            exposed_rate_at_mdd=nan,
            power_at_mdd=nan,
            power_below_mdd=nan,
            power_at_max=nan,
            sentence_ja=power_sentence_ja(nan, n1, n0, alpha=alpha, power=power),
        )
        return out
    if method == "normal":
        from scipy.stats import norm

        def pw(p1: float) -> float:
            p0 = float(base_rate)
            pbar = (n1 * p1 + n0 * p0) / (n1 + n0)
            se0 = math.sqrt(pbar * (1 - pbar) * (1 / n1 + 1 / n0))
            se1 = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
            if se1 == 0:
                return 1.0 if p1 != p0 else 0.0
            return float(norm.sf((norm.ppf(1 - alpha / 2) * se0 - (p1 - p0)) / se1))

        mdd = normal_mdd(n1, n0, base_rate, alpha=alpha, power=power)

        def at(d: float) -> float:
            return pw(min(base_rate + d, 1.0))
    else:
        if method not in ("exact", "simulation"):
            raise ValueError("method must be 'exact', 'simulation' or 'normal'")
        mdd = minimal_detectable_difference(n1, n0, base_rate, alpha, power, n_sim=n_sim, seed=seed, method=method)

        def at(d: float) -> float:
            rate = min(base_rate + d, 1.0)
            if method == "exact":
                return exact_power(n1, n0, rate, base_rate, alpha=alpha)
            return simulated_power(n1, n0, rate, base_rate, alpha=alpha, n_sim=n_sim, seed=seed).power

    finite = bool(np.isfinite(mdd))
    step = 0.001 if method == "normal" else 0.01
    out.update(
        mdd=float(mdd),
        mdd_points=int(math.floor(round(mdd * 100, 6))) if finite else None,
        exposed_rate_at_mdd=float(base_rate + mdd) if finite else nan,
        power_at_mdd=at(mdd) if finite else nan,
        power_below_mdd=at(round(mdd - step, 10)) if finite and mdd - step > 0 else nan,
        power_at_max=at(1.0 - base_rate) if base_rate < 1 else nan,
        sentence_ja=power_sentence_ja(
            mdd,
            n1,
            n0,
            alpha=alpha,
            power=power,
            test_label="2群の割合のz検定" if method == "normal" else "Fisherの正確検定",
        ),
    )
    return out


LARGE_GROUP = 200  # above this group size the exact/simulated methods are slow and unnecessary


def normal_mdd(
    n_exposed: int, n_unexposed: int, base_rate: float, alpha: float = 0.05, power: float = 0.8, step: float = 0.001
) -> float:
    """Smallest increase detectable by the two-proportion z test (normal approximation).

    For national-scale data (both groups > LARGE_GROUP), where enumerating Fisher tables costs
    seconds per measure and the normal approximation is accurate: the first p1 on a fine grid
    with z_{1-a/2} sqrt(pbar(1-pbar)(1/n1+1/n0)) + z_{power} sqrt(p1 q1/n1 + p0 q0/n0) <= p1 - p0.
    """
    from scipy.stats import norm

    n1, n0 = _check_sizes(n_exposed, n_unexposed)
    if n1 == 0 or n0 == 0 or not np.isfinite(base_rate):
        return float("nan")
    za, zb = norm.ppf(1 - alpha / 2), norm.ppf(power)
    p0 = float(base_rate)
    p1 = np.arange(p0 + step, 1.0 + 1e-12, step)
    pbar = (n1 * p1 + n0 * p0) / (n1 + n0)
    need = za * np.sqrt(pbar * (1 - pbar) * (1 / n1 + 1 / n0)) + zb * np.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    ok = np.flatnonzero(need <= p1 - p0)
    return float(round(p1[ok[0]] - p0, 6)) if len(ok) else float("nan")
