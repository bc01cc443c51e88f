"""Regression models with small-sample-honest inference.

What lives here and why:

* :func:`firth_logit` -- Firth-penalised logistic regression (via the
  ``firthmodels`` package) with the defaults of R ``logistf``: profile
  penalised-likelihood confidence intervals and penalised likelihood-ratio
  p-values.  With 17-41 municipalities per prefecture, events are sparse and
  (quasi-)complete separation is common, where plain maximum likelihood gives
  infinite odds ratios.
* :func:`detect_separation_terms` -- which terms have infinite plain-ML
  estimates (linear-programming check of Konis 2007, as in R
  ``detectseparation``), and :func:`separation_message_ja` to say so in
  Japanese.
* :func:`person_period` and :func:`discrete_time_hazard` -- a logit
  discrete-time hazard model (Singer & Willett 2003, ch. 11) with inference
  that stays honest with ~35 clusters (prefectures): a wild cluster
  restricted *score* bootstrap or a cluster-level permutation test, plus the
  usual CR1 standard errors from statsmodels for comparison.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import patsy
import scipy.linalg
import scipy.stats
from firthmodels import FirthLogisticRegression, detect_separation

# The public firthmodels API does not return the coefficient vector of a fit
# with some coefficients held at zero (it only uses it internally for the
# LRT).  The score bootstrap and logistf's global LR test need exactly that
# vector, so we drive firthmodels' own Newton-Raphson solver and its own
# penalised-likelihood quantities rather than re-implementing Firth's method.
# tests/test_models.py checks this path against the public lrt() output.
from firthmodels._solvers import newton_raphson
from firthmodels.logistic import _Workspace, compute_logistic_quantities
from statsmodels.genmod import families as sm_families
from statsmodels.genmod.generalized_linear_model import GLM
from threadpoolctl import ThreadpoolController

from .display import captioned_table
from .simchunks import boot_chunk  # a worker chunk: in a module that imports numpy only

__all__ = [
    "FirthResult",
    "HazardResult",
    "detect_separation_terms",
    "discrete_time_hazard",
    "firth_logit",
    "person_period",
    "separation_message_ja",
    "single_blas_thread",
]

INTERCEPT = "Intercept"
FitMethod = Literal["firth", "ml"]  # Firth's penalised likelihood or plain maximum likelihood
Inference = Literal["wild_bootstrap", "permutation"]  # how the hazard model's p-values are drawn
WeightType = Literal["rademacher", "webb"]  # wild-bootstrap weights

# Tight convergence so that results agree with R logistf to better than 1e-6.
# With thousands of person-period rows the penalised log-likelihood cannot
# always resolve a gradient of 1e-8 (step-halving then stalls at the optimum),
# so fits fall back to looser tolerances; 1e-4 is firthmodels' and logistf's
# default.
_TOLS = (1e-8, 1e-6, 1e-4)
_MAX_ITER = 100
_PL_TOL = 1e-6
_FIRTH_PENALTY = 0.5  # Jeffreys prior, Firth (1993)


# ---------------------------------------------------------------------------
# One BLAS thread: results independent of the core count and of n_jobs
# ---------------------------------------------------------------------------

_BLAS_CONTROLLER: ThreadpoolController | None = None


def single_blas_thread():
    """Context manager: BLAS/LAPACK run on one thread inside it.

    Why: OpenBLAS splits some small LAPACK solves across its threads; with its Haswell
    kernels (most x86-64 machines) ``dgetrs`` with two right-hand sides, which firthmodels
    calls at every step of a profile-likelihood bound, rounds differently when split.
    joblib's loky workers get ``cpu_count() // n_jobs`` BLAS threads and the main process
    ``cpu_count()``, so the same fit in the two differed by ~5e-14 in profile CI bounds
    (validation/blas_threads.py shows it). Every estimator here runs under this limit, in
    the main process and in workers alike, so the numbers depend on neither. The matrices
    are small (k <= 20 columns), so one thread costs nothing measurable.
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:  # created on first use, once numpy's and scipy's BLAS are loaded
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def _one_blas_thread(func):
    """Decorator form of :func:`single_blas_thread`."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with single_blas_thread():
            return func(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------
# Design matrices
# ---------------------------------------------------------------------------


def _plain_dtypes(data: pd.DataFrame) -> pd.DataFrame:
    """Nullable numeric/boolean columns as float64 (NA -> NaN); other columns untouched."""
    nullable = [
        c
        for c, t in data.dtypes.items()
        if isinstance(t, pd.api.extensions.ExtensionDtype)
        and (pd.api.types.is_bool_dtype(t) or pd.api.types.is_numeric_dtype(t))
    ]
    if not nullable:
        return data
    out = data.copy()
    for c in nullable:
        out[c] = out[c].astype("Float64").astype(float)
    return out


def _design(formula: str, data: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame, patsy.DesignInfo]:
    """Build (y, X, design info) with patsy; rows with NAs are dropped (like R).

    pandas' nullable columns (boolean, Int64, Float64: what the survey reader returns, with
    <NA> for 無回答) are turned into float with NaN first, since patsy cannot read them.
    """
    y, X = patsy.dmatrices(formula, _plain_dtypes(data), return_type="dataframe", NA_action="drop")
    info = X.design_info
    if y.shape[1] != 1:
        raise ValueError(f"The outcome of {formula!r} must be a single 0/1 column, got columns {list(y.columns)}.")
    y = y.iloc[:, 0]
    values = set(np.unique(y.to_numpy()))
    if not values <= {0.0, 1.0}:
        raise ValueError(f"The outcome must be coded 0/1, got values {sorted(values)}.")
    if len(values) < 2:
        raise ValueError("The outcome has only one class; nothing can be estimated.")
    return y.astype(float), X.astype(float), info


# ---------------------------------------------------------------------------
# Constrained (penalised) fits via firthmodels internals
# ---------------------------------------------------------------------------


@dataclass
class _Quantities:
    loglik: float
    modified_score: np.ndarray
    fisher_info: np.ndarray


@dataclass
class _ConstrainedFit:
    beta: np.ndarray  # full-length coefficient vector, fixed entries are 0
    loglik: float  # (penalised) log-likelihood at beta
    residual: np.ndarray  # per-row (modified) score residual
    info: np.ndarray  # (augmented) Fisher information at beta, full k x k
    converged: bool


@_one_blas_thread
def _constrained_fit(
    X: np.ndarray,
    y: np.ndarray,
    fixed: Sequence[int],
    penalty_weight: float,
    beta_init: np.ndarray | None = None,
) -> _ConstrainedFit:
    """Maximise the (Firth-penalised) log-likelihood with ``beta[fixed] = 0``.

    The penalty is always computed from the *full* design, as logistf does for
    its null model and its likelihood-ratio tests.  The returned residuals
    ``r_i`` give the per-row score contributions ``x_i * r_i``: for ML
    ``r_i = y_i - p_i``; for Firth the modified score
    ``r_i = y_i - p_i + h_i (1/2 - p_i)`` (Firth 1993).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, k = X.shape
    fixed_set = set(int(i) for i in fixed)
    free = np.array([i for i in range(k) if i not in fixed_set], dtype=np.intp)
    ws = _Workspace(n=n, k=k)
    sample_weight = np.ones(n)
    offset = np.zeros(n)
    beta_full = np.zeros(k)
    grid = np.ix_(free, free)

    def full_quantities(beta: np.ndarray):
        return compute_logistic_quantities(
            X=X,
            y=y,
            beta=beta,
            sample_weight=sample_weight,
            offset=offset,
            workspace=ws,
            penalty_weight=penalty_weight,
        )

    def free_quantities(beta_free: np.ndarray) -> _Quantities:
        beta_full[:] = 0.0
        beta_full[free] = beta_free
        q = full_quantities(beta_full)
        return _Quantities(
            loglik=q.loglik,
            modified_score=q.modified_score[free],
            fisher_info=q.fisher_info[grid],
        )

    converged = True
    if free.size:
        init = None if beta_init is None else np.asarray(beta_init, float)[free]
        for tol in _TOLS:
            res = newton_raphson(
                compute_quantities=free_quantities,
                n_features=free.size,
                max_iter=_MAX_ITER,
                max_step=5.0,
                max_halfstep=25,
                gtol=tol,
                xtol=tol,
                beta_init=init,
                warn_on_failure=False,
            )
            converged = bool(res.converged)
            if converged:
                break
        beta_full[:] = 0.0
        beta_full[free] = res.beta
    q = full_quantities(beta_full)
    return _ConstrainedFit(
        beta=beta_full.copy(),
        loglik=float(q.loglik),
        residual=ws.residual.copy(),
        info=np.array(q.fisher_info, copy=True),
        converged=converged,
    )


def _fit_firthmodels(X: pd.DataFrame, y: pd.Series, penalty_weight: float) -> FirthLogisticRegression:
    """Unconstrained fit through the public firthmodels estimator."""
    for tol in _TOLS:
        model = FirthLogisticRegression(
            fit_intercept=False,
            max_iter=_MAX_ITER,
            gtol=tol,
            xtol=tol,
            penalty_weight=penalty_weight,
        )
        with warnings.catch_warnings():
            # Non-convergence is reported through `converged` and our own warning.
            warnings.simplefilter("ignore")
            model.fit(X, y.to_numpy())
        if model.converged_:
            break
    return model


# ---------------------------------------------------------------------------
# Separation
# ---------------------------------------------------------------------------


def detect_separation_terms(X: pd.DataFrame, y: pd.Series | np.ndarray) -> pd.Series:
    """Direction of the plain-ML estimate of each column: +1/-1 infinite, 0 finite.

    Uses the linear program of Konis (2007, eq. 4.23), implemented in
    ``firthmodels.detect_separation`` after R ``detectseparation``.  Unlike
    watching for huge coefficients or non-convergence in an ML fit, the LP is
    exact: a coefficient is infinite iff the LP finds a separating direction
    with a non-zero component for it.  ``X`` must already contain the
    intercept column (if any).
    """
    result = detect_separation(X, np.asarray(y), fit_intercept=False)
    return pd.Series(result.directions.astype(int), index=list(X.columns), name="direction")


def separation_message_ja(terms: Sequence[str]) -> str:
    """Plain Japanese sentence on (quasi-)complete separation, for reports."""
    terms = list(terms)
    if not terms:
        return "データの完全分離は検出されませんでした（通常の最尤推定でも有限の推定値が得られます）。"
    joined = "、".join(f"「{t}」" for t in terms)
    return f"{joined}ではデータが完全に分離しており、通常の最尤推定ではオッズ比が無限大になります（Firth法で推定）。"


# ---------------------------------------------------------------------------
# Firth logistic regression
# ---------------------------------------------------------------------------


class FirthResult:
    """Result of :func:`firth_logit`, laid out like R ``logistf`` output.

    Attributes are pandas objects indexed by the design-matrix column names
    (the constant is ``Intercept``).  p-values and profile CIs are computed on
    first access and cached, since each needs extra constrained fits.
    """

    def __init__(
        self,
        model: FirthLogisticRegression,
        exog: pd.DataFrame,
        endog: pd.Series,
        formula: str,
        separation_directions: pd.Series,
    ) -> None:
        self._model = model
        self.exog = exog
        self.endog = endog
        self.formula = formula
        self.exog_names = list(exog.columns)
        self.params = pd.Series(model.coef_, index=self.exog_names, name="estimate")
        # Wald SEs from the inverse (augmented) information, as logistf's vcov.
        self.bse = pd.Series(model.bse_, index=self.exog_names, name="std_err")
        self.loglik = float(model.loglik_)  # penalised log-likelihood
        self.converged = bool(model.converged_)
        self.nobs = int(len(endog))
        self.separation_directions = separation_directions
        self.separation = [t for t, d in separation_directions.items() if d != 0]
        self._pvalues: pd.Series | None = None
        self._lr_p: dict[str, float] = {}
        self._ci: dict[float, pd.DataFrame] = {}

    def __repr__(self) -> str:
        return f"FirthResult(formula={self.formula!r}, nobs={self.nobs})"

    @property
    def pvalues(self) -> pd.Series:
        """Penalised likelihood-ratio p-value per coefficient (logistf default)."""
        if self._pvalues is None:
            self._pvalues = self.pvalues_of(self.exog_names)
        return self._pvalues.copy()

    @_one_blas_thread
    def pvalues_of(self, terms: Sequence[str]) -> pd.Series:
        """The penalised LR p-values of `terms` only: one constrained fit per term, not per coefficient.

        Each test is its own constrained fit, so a term's p-value is the same whether it is
        computed alone or with the others (a report that needs one term's p pays for one fit).
        """
        terms = list(terms)
        unknown = [t for t in terms if t not in self.exog_names]
        if unknown:
            raise KeyError(
                f"モデルにない項です: {unknown} / unknown terms {unknown}; design columns are {self.exog_names}."
            )
        todo = [t for t in terms if t not in self._lr_p]
        if todo:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._model.lrt([self.exog_names.index(t) for t in todo])
            for name in todo:
                k = self.exog_names.index(name)
                p = float(self._model.lrt_pvalues_[k])
                # firthmodels' lrt() gives NaN when its constrained fit stalls at a tight
                # tolerance; redo those with our constrained fit and its tolerance ladder.
                if math.isnan(p):
                    fit0 = _constrained_fit(self.exog.to_numpy(float), self.endog.to_numpy(float), [k], _FIRTH_PENALTY)
                    if fit0.converged:
                        stat = max(2.0 * (self.loglik - fit0.loglik), 0.0)
                        p = float(scipy.stats.chi2.sf(stat, 1))
                self._lr_p[name] = p
        return pd.Series([self._lr_p[t] for t in terms], index=terms, name="p_value", dtype=float)

    @_one_blas_thread
    def conf_int(self, alpha: float = 0.05, terms: Sequence[str] | None = None) -> pd.DataFrame:
        """Profile penalised-likelihood CIs (Heinze & Schemper 2002), as logistf.

        `terms` limits the (costly) profile searches to those rows; each bound is its own search,
        so a row is the same whether computed alone or with all the others.
        """
        key = float(alpha)
        if terms is None:
            if key not in self._ci:
                self._ci[key] = self._profile(key, self.exog_names)
            return self._ci[key].copy()
        terms = list(terms)
        unknown = [t for t in terms if t not in self.exog_names]
        if unknown:
            raise KeyError(
                f"モデルにない項です: {unknown} / unknown terms {unknown}; design columns are {self.exog_names}."
            )
        if key in self._ci:
            return self._ci[key].loc[terms].copy()
        return self._profile(key, terms)

    def _profile(self, alpha: float, terms: list[str]) -> pd.DataFrame:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ci = np.asarray(
                self._model.conf_int(
                    alpha=alpha, method="pl", tol=_PL_TOL, features=[self.exog_names.index(t) for t in terms]
                )
            )
        rows = [self.exog_names.index(t) for t in terms]
        return pd.DataFrame(ci[rows], index=terms, columns=["lower", "upper"])

    def odds_ratios(self, alpha: float = 0.05) -> pd.DataFrame:
        """Odds ratios with profile-likelihood CIs (exp of coefficient scale)."""
        ci = self.conf_int(alpha)
        return pd.DataFrame(
            {
                "odds_ratio": np.exp(self.params),
                "lower": np.exp(ci["lower"]),
                "upper": np.exp(ci["upper"]),
            },
            index=self.exog_names,
        )

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per term: estimate, SE, profile CI, odds ratio and its CI, LRT p."""
        ci = self.conf_int(alpha)
        return pd.DataFrame(
            {
                "estimate": self.params,
                "std_err": self.bse,
                "ci_lower": ci["lower"],
                "ci_upper": ci["upper"],
                "odds_ratio": np.exp(self.params),
                "or_lower": np.exp(ci["lower"]),
                "or_upper": np.exp(ci["upper"]),
                "p_value": self.pvalues,
            },
            index=self.exog_names,
        )

    @_one_blas_thread
    def summary(self, alpha: float = 0.05) -> str:
        """Plain-text summary like statsmodels': model, data, convergence, separation, the table."""
        chi2, df, p = self.lr_test()
        head = [
            f"Firth logistic regression (penalised likelihood, as R logistf): {self.formula}",
            f"observations: {self.nobs}   events: {int(self.endog.sum())}   converged: {self.converged}",
            f"penalised log-likelihood: {self.loglik:.4f}   global LR test: chi2 = {chi2:.3f}, df = {df}, p = {p:.4g}",
            "separated terms (plain ML infinite): " + (", ".join(self.separation) or "none"),
            f"profile penalised-likelihood {100 * (1 - alpha):.0f} % intervals; LR p-values",
        ]
        return "\n".join(head) + "\n\n" + self.summary_frame(alpha).round(4).to_string()

    def _repr_html_(self) -> str:
        import html as _html

        return (
            f"<p><strong>Firth logistic regression</strong>: {_html.escape(self.formula)} — n = {self.nobs}, "
            f"events = {int(self.endog.sum())}, converged = {self.converged}, separated: "
            f"{_html.escape(', '.join(self.separation) or 'none')}</p>"
            + captioned_table(self.summary_frame().round(4).to_html(), f"Firth logit: {self.formula}")
        )

    def lr_test(self) -> tuple[float, int, float]:
        """Global penalised LR test against the intercept-only model.

        As in logistf, the null model keeps the full-design penalty and only
        frees the intercept.  Returns ``(chi2, df, p_value)``.
        """
        names = self.exog_names
        free = [names.index(INTERCEPT)] if INTERCEPT in names else []
        fixed = [i for i in range(len(names)) if i not in free]
        null = _constrained_fit(self.exog.to_numpy(), self.endog.to_numpy(), fixed, _FIRTH_PENALTY)
        chi2 = max(0.0, 2.0 * (self.loglik - null.loglik))
        df = len(fixed)
        return chi2, df, float(scipy.stats.chi2.sf(chi2, df))


@_one_blas_thread
def firth_logit(formula: str, data: pd.DataFrame) -> FirthResult:
    """Firth-penalised logistic regression from an R-style formula.

    Parameters
    ----------
    formula : str
        patsy formula, e.g. ``"full ~ support + C(region)"``.  The constant is
        named ``Intercept``; use ``"y ~ 0 + ..."`` to drop it.
    data : DataFrame
        Rows with a missing value in any used column are dropped.

    Returns
    -------
    FirthResult
        Estimates agree with R ``logistf`` (default settings): penalised
        likelihood-ratio p-values, profile penalised-likelihood CIs, and the
        list of terms whose plain-ML estimate would be infinite.

    Examples
    --------
    >>> from analysis import firth_logit, load_panel
    >>> panel = load_panel("sample", years=[2025])
    >>> fit = firth_logit("full_implementation ~ sup_advisor + log_population + kaso", panel)
    >>> fit.nobs, fit.exog_names
    (35, ['Intercept', 'sup_advisor', 'log_population', 'kaso'])
    >>> round(float(fit.params["sup_advisor"]), 2)
    0.4
    """
    y, X, _ = _design(formula, data)
    model = _fit_firthmodels(X, y, _FIRTH_PENALTY)
    if not model.converged_:
        warnings.warn(
            f"Firth fit of {formula!r} did not converge in {_MAX_ITER} iterations.",
            RuntimeWarning,
            stacklevel=2,
        )
    directions = detect_separation_terms(X, y)
    return FirthResult(model, X, y, formula, directions)


# ---------------------------------------------------------------------------
# Discrete-time hazard
# ---------------------------------------------------------------------------


def person_period(frame: pd.DataFrame, id_col: str, time_col: str, event_col: str) -> pd.DataFrame:
    """Turn a unit x period panel into a person-period (risk-set) data set.

    ``frame`` has one row per unit and period; ``event_col`` is 1 in the
    period the unit first reaches the state (it may stay 1 afterwards, as a
    state indicator).  Each unit keeps its rows up to and including the first
    period with ``event == 1``; later rows are dropped because the unit is no
    longer at risk.  Units never reaching the state keep all rows (right
    censored).  A unit with ``event == 1`` in its first observed period keeps
    that single row: if it may have reached the state before observation
    began (left truncation), drop it before calling this function.
    """
    for col in (id_col, time_col, event_col):
        if col not in frame.columns:
            raise KeyError(f"Column {col!r} not in frame.")
        if frame[col].isna().any():
            raise ValueError(f"Column {col!r} has missing values.")
    if frame.duplicated([id_col, time_col]).any():
        raise ValueError(f"Duplicate ({id_col}, {time_col}) rows in frame.")
    event = frame[event_col].astype(float)
    if not set(np.unique(event)) <= {0.0, 1.0}:
        raise ValueError(f"Column {event_col!r} must be 0/1.")

    out = frame.sort_values([id_col, time_col], kind="stable").copy()
    out[event_col] = out[event_col].astype(int)
    events_before = out.groupby(id_col, sort=False)[event_col].cumsum() - out[event_col]
    out = out.loc[events_before == 0].reset_index(drop=True)
    return out


@dataclass
class HazardResult:
    """Result of :func:`discrete_time_hazard`.

    ``params``/``bse`` are the point estimates and model-based SEs of
    ``method``.  ``tests`` holds, for each tested term, the cluster-robust
    score statistic and its bootstrap or permutation p-value.  ``cr1``
    (computed on first access) holds the ML estimates with statsmodels' CR1
    cluster-robust SEs and p-values from t(G-1), for comparison only: with
    few clusters they tend to over-reject (Cameron, Gelbach & Miller 2008).
    """

    formula: str
    method: FitMethod
    inference: Inference
    params: pd.Series
    bse: pd.Series
    tests: pd.DataFrame
    n_clusters: int
    nobs: int
    n_events: int
    n_boot: int
    seed: int | None
    weight_type: WeightType
    converged: bool
    separation: list[str]
    loglik: float = math.nan  # log-likelihood (penalised when method="firth")
    # set by discrete_time_hazard (keyword-only, no default, so that their types need no None)
    _endog: pd.Series = field(repr=False, compare=False, kw_only=True)
    _exog: pd.DataFrame = field(repr=False, compare=False, kw_only=True)
    _codes: np.ndarray = field(repr=False, compare=False, kw_only=True)
    _cr1: pd.DataFrame | None = field(repr=False, compare=False, default=None)
    _model: FirthLogisticRegression = field(repr=False, compare=False, kw_only=True)
    _ci: dict = field(repr=False, compare=False, default_factory=dict)
    # separation directions of every column, or the error their detection raised
    _directions: pd.Series | Exception | None = field(repr=False, compare=False, default=None)
    _firth: FirthResult | None = field(repr=False, compare=False, default=None)

    def firth_result(self) -> FirthResult:
        """The same Firth fit as :func:`firth_logit` would return, without fitting it again.

        ``discrete_time_hazard(formula, frame, ..., method="firth")`` fits exactly the model of
        ``firth_logit(formula, frame)`` (same design, same estimator), so its penalised LR
        p-values and profile intervals come from this one fit. Raises what `firth_logit` would
        have raised when the separation check failed, and warns as it does on non-convergence.
        """
        if self.method != "firth":
            raise ValueError("firth_result() needs method='firth'.")
        if isinstance(self._directions, Exception):
            raise self._directions
        if self._firth is None:
            if not self._model.converged_:
                warnings.warn(
                    f"Firth fit of {self.formula!r} did not converge in {_MAX_ITER} iterations.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            directions = self._directions
            if directions is None:
                directions = detect_separation_terms(self._exog, self._endog)
            self._firth = FirthResult(self._model, self._exog, self._endog, self.formula, directions)
        return self._firth

    @property
    def cr1(self) -> pd.DataFrame:
        """ML estimates with statsmodels CR1 SEs and t(G-1) p-values."""
        if self._cr1 is None:
            self._cr1 = _cr1_table(self._endog, self._exog, self._codes, self.n_clusters)
        return self._cr1

    @property
    def pvalues(self) -> pd.Series:
        """Bootstrap/permutation p-values of the tested terms."""
        return self.tests["p_value"]

    @_one_blas_thread
    def conf_int(self, alpha: float = 0.05, terms: Sequence[str] | None = None) -> pd.DataFrame:
        """Profile-likelihood CIs on the log-odds scale for ``terms`` (default: the tested terms).

        With ``method="firth"`` these are profile *penalised* likelihood intervals (Heinze &
        Schemper 2002), computed exactly as :meth:`FirthResult.conf_int` and R ``logistf``; with
        ``method="ml"`` plain profile-likelihood intervals. A bound the (penalised) likelihood
        never reaches, as happens with very few events or separation, is NaN: that side of the
        interval is unbounded. Columns ``lower``, ``upper``; computed on first request, cached.
        """
        names = list(self.params.index)
        terms = list(self.tests.index) if terms is None else list(terms)
        unknown = [t for t in terms if t not in names]
        if unknown:
            raise KeyError(f"モデルにない項です: {unknown} / unknown terms {unknown}; design columns are {names}.")
        key = float(alpha)
        cached = self._ci.setdefault(key, {})
        todo = [t for t in terms if t not in cached]
        if todo:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an unreached bound is reported as NaN
                ci = np.asarray(
                    self._model.conf_int(alpha=key, method="pl", tol=_PL_TOL, features=[names.index(t) for t in todo])
                )
            for t in todo:
                cached[t] = (float(ci[names.index(t), 0]), float(ci[names.index(t), 1]))
        return pd.DataFrame([cached[t] for t in terms], index=terms, columns=["lower", "upper"])

    def odds_ratios(self, alpha: float = 0.05, terms: Sequence[str] | None = None) -> pd.DataFrame:
        """Odds ratios with their profile-likelihood CIs (exp of :meth:`conf_int`; NaN = unbounded).

        Columns ``odds_ratio``, ``lower``, ``upper``, one row per term (default: tested terms).
        """
        ci = self.conf_int(alpha, terms)
        return pd.DataFrame(
            {"odds_ratio": np.exp(self.params[ci.index]), "lower": np.exp(ci["lower"]), "upper": np.exp(ci["upper"])},
            index=ci.index,
        )

    def summary_frame(self) -> pd.DataFrame:
        """Estimates, odds ratios, honest p-values and CR1 comparison columns."""
        out = pd.DataFrame(
            {
                "estimate": self.params,
                "std_err": self.bse,
                "odds_ratio": np.exp(self.params),
                "p_value": self.tests["p_value"].reindex(self.params.index),
                "se_cr1": self.cr1["se_cr1"],
                "p_cr1": self.cr1["p_cr1"],
            }
        )
        return out

    def summary(self) -> str:
        """Plain-text summary: model, clusters, events, inference, separation, the table."""
        head = [
            f"Discrete-time hazard ({self.method}): {self.formula}",
            f"person-periods: {self.nobs}   events: {self.n_events}   clusters: {self.n_clusters}   "
            f"converged: {self.converged}",
            f"p-values: {self.inference} ({self.n_boot} draws, {self.weight_type} weights, seed {self.seed}); "
            "CR1 columns for comparison only",
            "separated terms (plain ML infinite): " + (", ".join(self.separation) or "none"),
        ]
        return "\n".join(head) + "\n\n" + self.summary_frame().round(4).to_string()

    def _repr_html_(self) -> str:
        import html as _html

        return (
            f"<p><strong>Discrete-time hazard ({_html.escape(self.method)})</strong>: {_html.escape(self.formula)} — "
            f"{self.nobs} person-periods, {self.n_events} events, {self.n_clusters} clusters, p-values by "
            f"{_html.escape(self.inference)} ({self.n_boot} draws, seed {self.seed})</p>"
            + captioned_table(self.summary_frame().round(4).to_html(), f"Discrete-time hazard: {self.formula}")
        )


def _cluster_score_stat(X: np.ndarray, fit: _ConstrainedFit, codes: np.ndarray, n_clusters: int, k: int) -> np.ndarray:
    """Per-cluster efficient scores u_g for coefficient k at the restricted fit.

    u_g = S_gk - H_{k,-k} H_{-k,-k}^{-1} S_{g,-k}, where S_g sums the score
    contributions of cluster g and H is the (augmented) information.  The
    projection removes the effect of estimating the nuisance coefficients
    (Kline & Santos 2012).
    """
    scores = X * fit.residual[:, None]
    S = np.zeros((n_clusters, X.shape[1]))
    np.add.at(S, codes, scores)
    others = [j for j in range(X.shape[1]) if j != k]
    if not others:
        return S[:, k]
    H = fit.info
    coef = scipy.linalg.lstsq(H[np.ix_(others, others)], H[others, k])[0]
    return S[:, k] - S[:, others] @ coef


def _studentised(u: np.ndarray) -> float:
    denom = math.sqrt(float(np.sum(u**2)))
    return float(np.sum(u)) / denom if denom > 0 else math.nan


def _draw_weights(
    rng: np.random.Generator, n_boot: int, n_clusters: int, kind: WeightType
) -> tuple[np.ndarray, np.ndarray]:
    """Wild-bootstrap weights as (indices, points): the weights are ``points[indices]``.

    The same draws as ``rng.choice(points, size=(n_boot, n_clusters))`` (int64 indices drawn
    block by block continue one stream), kept as int8: 1 byte per draw instead of the 16 that
    rng.choice's int64 indices and float64 result take (1,999 × 17,410 clusters: 35 MB, not 557 MB).
    """
    if kind == "rademacher":
        pts = np.array([-1.0, 1.0])
    elif kind == "webb":
        s = math.sqrt(0.5)
        pts = np.array([-math.sqrt(1.5), -1.0, -s, s, 1.0, math.sqrt(1.5)])
    else:
        raise ValueError(f"weight_type must be 'rademacher' or 'webb', got {kind!r}.")
    idx = np.empty((n_boot, n_clusters), dtype=np.int8)
    step = max(1, (1 << 20) // max(1, n_clusters))  # blocks of about 8 MB of int64
    for a in range(0, n_boot, step):
        b = min(n_boot, a + step)
        idx[a:b] = rng.integers(0, len(pts), size=(b - a, n_clusters), dtype=np.int64)
    return idx, pts


@_one_blas_thread
def _perm_chunk(
    perms: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    k: int,
    profile: np.ndarray,
    codes: np.ndarray,
    tcodes: np.ndarray,
    n_clusters: int,
    penalty_weight: float,
    beta_init: np.ndarray,
) -> np.ndarray:
    """Score statistics after reassigning cluster profiles of column k."""
    out = np.empty(len(perms))
    Xp = X.copy()
    for b, perm in enumerate(perms):
        Xp[:, k] = profile[perm[codes], tcodes]
        fit = _constrained_fit(Xp, y, [k], penalty_weight, beta_init=beta_init)
        u = _cluster_score_stat(Xp, fit, codes, n_clusters, k)
        out[b] = _studentised(u) if fit.converged else math.nan
    return out


def _pvalue(t_obs: float, t_star: np.ndarray) -> float:
    """(1 + #{|t*| >= |t|}) / (B + 1); valid for randomisation tests."""
    if not math.isfinite(t_obs):
        return math.nan
    t_star = t_star[np.isfinite(t_star)]
    tol = 1e-12 * max(1.0, abs(t_obs))
    count = int(np.sum(np.abs(t_star) >= abs(t_obs) - tol))
    return (1 + count) / (len(t_star) + 1)


def _chunks(n: int, n_jobs: int) -> list[slice]:
    n_chunks = max(1, min(n, 4 * max(1, n_jobs if n_jobs > 0 else 2)))
    edges = np.linspace(0, n, n_chunks + 1).astype(int)
    return [slice(a, b) for a, b in itertools.pairwise(edges) if b > a]


@_one_blas_thread
def _cr1_table(y: pd.Series, X: pd.DataFrame, codes: np.ndarray, n_clusters: int) -> pd.DataFrame:
    """ML fit with statsmodels' CR1 cluster-robust SEs; p-values from t(G-1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = GLM(y, X, family=sm_families.Binomial()).fit(
                cov_type="cluster", cov_kwds={"groups": codes, "use_correction": True}
            )
            est, se = res.params.to_numpy(), res.bse.to_numpy()
        except Exception:  # e.g. perfect separation errors in some versions
            est = se = np.full(X.shape[1], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = est / se
    p = 2 * scipy.stats.t.sf(np.abs(z), df=max(n_clusters - 1, 1))
    return pd.DataFrame({"estimate_ml": est, "se_cr1": se, "z_cr1": z, "p_cr1": p}, index=X.columns)


def _period_columns(info: patsy.DesignInfo, period_col: str | None) -> list[str]:
    """Design columns generated by terms that involve ``period_col``."""
    if period_col is None:
        return []
    pattern = re.compile(rf"\b{re.escape(period_col)}\b")
    cols: list[str] = []
    for term, sl in info.term_slices.items():
        if any(pattern.search(f.name()) for f in term.factors):
            cols.extend(info.column_names[sl])
    return cols


@_one_blas_thread
def discrete_time_hazard(
    formula: str,
    person_period_frame: pd.DataFrame,
    cluster_col: str,
    method: FitMethod = "firth",
    inference: Inference = "wild_bootstrap",
    n_boot: int = 999,
    seed: int | None = 0,
    *,
    period_col: str | None = None,
    test_terms: Sequence[str] | None = None,
    weight_type: WeightType = "rademacher",
    n_jobs: int = 1,
) -> HazardResult:
    """Logit discrete-time hazard model with small-cluster-honest inference.

    The model is ``logit h(t_ij) = alpha_t + x_ij' beta`` fitted to
    person-period data (Singer & Willett 2003, ch. 11).  Period effects come
    from the formula (e.g. ``"event ~ 0 + C(year) + support"``); if
    ``period_col`` is given and the formula does not mention it,
    ``+ C(period_col)`` is added.  Period-effect and intercept columns are not
    tested by default.

    Estimation (``method``): ``"firth"`` uses Firth's penalised likelihood
    (firthmodels), finite even when a support measure separates the events;
    ``"ml"`` is plain maximum likelihood (the textbook estimator).

    Inference (``inference``), one test of ``beta_k = 0`` per tested term.
    Both use the cluster-robust score statistic
    ``t = sum_g u_g / sqrt(sum_g u_g^2)`` where ``u_g`` is cluster g's
    efficient score for ``beta_k`` evaluated at the *restricted* estimate
    (``beta_k = 0`` imposed; Firth-modified scores when ``method="firth"``).

    * ``"wild_bootstrap"`` (default) -- wild cluster restricted score
      bootstrap (Kline & Santos 2012; the "score bootstrap" that Roodman,
      MacKinnon, Nielsen & Webb 2019 ``boottest`` uses after ML estimation):
      ``t*_b = sum_g w_gb u_g / sqrt(sum_g (w_gb u_g)^2)`` with Rademacher
      (or Webb six-point) weights.  Chosen as default because imposing the
      null (WCR) is what keeps the bootstrap accurate with few clusters
      (Cameron, Gelbach & Miller 2008; MacKinnon & Webb 2017), it works for
      any regressor (cluster-level or not), and it needs no re-estimation
      per replication, so 999+ replications are cheap.  With Rademacher
      weights it is a sign-flip randomisation test of the cluster scores,
      exact when they are symmetric under the null.  With ~35 clusters there
      are 2^35 sign patterns, so Rademacher weights are adequate; prefer
      ``weight_type="webb"`` below about 12 clusters.
    * ``"permutation"`` -- randomisation test over clusters: the tested
      column's cluster profiles (one value per cluster, or per cluster and
      period when ``period_col`` is given) are reassigned among clusters and
      the restricted model is refitted each time.  Exact under the sharp
      null when the support measure is assigned at the cluster level and
      clusters are exchangeable; requires the tested column to be constant
      within cluster (x period).  Slower (one refit per permutation).

    Caution: when only a few clusters have the support measure (or lack
    it), no cluster bootstrap is reliable (MacKinnon & Webb 2017); report
    the number of treated clusters with the p-value.

    p-values are ``(1 + #{|t*| >= |t|}) / (n_boot + 1)``.  All random draws
    come from ``numpy.random.default_rng(seed)`` in the calling process
    before the replications are split across ``n_jobs`` joblib workers, so
    results are identical on re-run and for any ``n_jobs`` (``seed=None``
    draws fresh OS entropy and is not reproducible).

    CR1 standard errors (statsmodels ``cov_type="cluster"``) of the ML fit
    are returned in ``HazardResult.cr1`` for comparison.

    Parameters
    ----------
    formula : str
        patsy formula with the event indicator on the left, period effects
        and (lagged) exposures on the right.
    person_period_frame : DataFrame
        One row per unit and period at risk (``association.hazard_frame``).
    cluster_col : str
        Column identifying the cluster (the municipality code).
    method : {"firth", "ml"}, default "firth"
        Penalised (finite under separation) or plain maximum likelihood.
    inference : {"wild_bootstrap", "permutation"}, default "wild_bootstrap"
        How the p-values of the tested terms are computed (above).
    n_boot : int, default 999
        Bootstrap replications or permutations.
    seed : int or None, default 0
        Seed of every random draw (None: not reproducible).
    period_col : str, optional
        Period column added as ``C(period_col)`` when the formula lacks it.
    test_terms : sequence of str, optional
        Design columns to test; by default all but intercept and periods.
    weight_type : {"rademacher", "webb"}, default "rademacher"
        Wild-bootstrap weights.
    n_jobs : int, default 1
        joblib workers for the replications (results do not depend on it).

    Returns
    -------
    HazardResult
        Estimates, odds ratios, the small-cluster p-values of the tested
        terms, CR1 standard errors, clusters and events.

    Examples
    --------
    >>> from analysis import discrete_time_hazard, load_panel
    >>> from analysis.association import hazard_frame
    >>> from analysis.codebook import load_codebook
    >>> pp = hazard_frame(load_panel("sample"), load_codebook())
    >>> fit = discrete_time_hazard("event ~ C(fiscal_year) + sup_advisor_lag1", pp,
    ...                            cluster_col="code", n_boot=199, seed=1, test_terms=["sup_advisor_lag1"])
    >>> fit.n_clusters, fit.n_events
    (34, 6)
    >>> round(float(fit.pvalues["sup_advisor_lag1"]), 3)  # (1 + 0) / (199 + 1): no replication as extreme
    0.005
    """
    from joblib import delayed

    from .parallelism import parallel as simulation_parallel

    if method not in ("firth", "ml"):
        raise ValueError(f"method must be 'firth' or 'ml', got {method!r}.")
    if inference not in ("wild_bootstrap", "permutation"):
        raise ValueError(f"inference must be 'wild_bootstrap' or 'permutation', got {inference!r}.")
    if n_boot < 1:
        raise ValueError("n_boot must be positive.")
    if cluster_col not in person_period_frame.columns:
        raise KeyError(f"Column {cluster_col!r} not in frame.")

    if period_col is not None:
        lhs, _, rhs = formula.partition("~")
        if not re.search(rf"\b{re.escape(period_col)}\b", rhs):
            formula = f"{lhs.strip()} ~ {rhs.strip()} + C({period_col})"

    frame = person_period_frame.reset_index(drop=True)
    y, X, design_info = _design(formula, frame)
    rows = frame.loc[X.index]
    if rows[cluster_col].isna().any():
        raise ValueError(f"Column {cluster_col!r} has missing values.")
    codes, cluster_labels = pd.factorize(rows[cluster_col], sort=True)
    n_clusters = len(cluster_labels)
    if n_clusters < 2:
        raise ValueError("At least two clusters are needed.")

    names = list(X.columns)
    period_cols = _period_columns(design_info, period_col)
    if test_terms is None:
        test_terms = [c for c in names if c != INTERCEPT and c not in period_cols]
    unknown = [t for t in test_terms if t not in names]
    if unknown:
        raise KeyError(f"Unknown test terms {unknown}; design columns are {names}.")

    penalty = _FIRTH_PENALTY if method == "firth" else 0.0
    model = _fit_firthmodels(X, y, penalty)
    converged = bool(model.converged_)
    found: pd.Series | Exception
    try:
        found = directions = detect_separation_terms(X, y)
        separation = [t for t, d in directions.items() if d != 0]
    except (scipy.linalg.LinAlgError, RuntimeError) as exc:
        found, separation = exc, []
    if method == "ml" and separation:
        warnings.warn(
            "Plain ML estimates are infinite for " + ", ".join(separation) + "; use method='firth'.",
            RuntimeWarning,
            stacklevel=2,
        )
    if not converged:
        warnings.warn("Hazard model fit did not converge.", RuntimeWarning, stacklevel=2)

    params = pd.Series(model.coef_, index=names, name="estimate")
    bse = pd.Series(model.bse_, index=names, name="std_err")
    Xa = X.to_numpy(dtype=np.float64)
    ya = y.to_numpy(dtype=np.float64)

    rng = np.random.default_rng(seed)
    if inference == "wild_bootstrap":
        w_idx, w_pts = _draw_weights(rng, n_boot, n_clusters, weight_type)
    else:
        perms = np.array([rng.permutation(n_clusters) for _ in range(n_boot)])
        if period_col is not None:
            tcodes, t_labels = pd.factorize(rows[period_col], sort=True)
        else:
            tcodes, t_labels = np.zeros(len(rows), dtype=np.intp), [0]

    parallel = simulation_parallel(n_jobs)
    records = []
    for term in test_terms:
        k = names.index(term)
        fit0 = _constrained_fit(Xa, ya, [k], penalty)
        u = _cluster_score_stat(Xa, fit0, codes, n_clusters, k)
        t_obs = _studentised(u) if fit0.converged else math.nan
        if inference == "wild_bootstrap":
            parts = parallel(delayed(boot_chunk)(w_idx[sl], w_pts, u) for sl in _chunks(n_boot, n_jobs))
        else:
            if _constant_within(Xa[:, k], codes):
                # cluster-level (time-invariant) column: one value per cluster
                tc, n_t = np.zeros(len(codes), dtype=np.intp), 1
            else:
                tc, n_t = tcodes, len(t_labels)
            profile = _cluster_profile(Xa[:, k], codes, tc, n_clusters, n_t, term)
            parts = parallel(
                delayed(_perm_chunk)(perms[sl], Xa, ya, k, profile, codes, tc, n_clusters, penalty, fit0.beta)
                for sl in _chunks(n_boot, n_jobs)
            )
        t_star = np.concatenate(parts)
        records.append(
            {
                "term": term,
                "estimate": params[term],
                "statistic": t_obs,
                "p_value": _pvalue(t_obs, t_star),
                "n_reps": int(np.isfinite(t_star).sum()),
            }
        )
    columns = ["term", "estimate", "statistic", "p_value", "n_reps"]
    tests = pd.DataFrame.from_records(records, columns=columns).set_index("term")

    return HazardResult(
        formula=formula,
        method=method,
        inference=inference,
        params=params,
        bse=bse,
        tests=tests,
        n_clusters=n_clusters,
        nobs=int(len(y)),
        n_events=int(ya.sum()),
        n_boot=int(n_boot),
        seed=seed,
        weight_type=weight_type,
        converged=converged,
        separation=separation,
        loglik=float(model.loglik_),
        _endog=y,
        _exog=X,
        _codes=codes,
        _model=model,
        _directions=found,
    )


def _constant_within(x: np.ndarray, codes: np.ndarray) -> bool:
    """True if ``x`` takes a single value within every cluster."""
    return bool(pd.Series(x).groupby(codes).nunique().max() <= 1)


def _cluster_profile(
    x: np.ndarray,
    codes: np.ndarray,
    tcodes: np.ndarray,
    n_clusters: int,
    n_periods: int,
    term: str,
) -> np.ndarray:
    """G x T table of the tested column; it must be constant within each cell."""
    profile = np.full((n_clusters, n_periods), np.nan)
    seen = np.zeros((n_clusters, n_periods), dtype=bool)
    for g, t, v in zip(codes, tcodes, x, strict=False):
        if seen[g, t]:
            if profile[g, t] != v:
                raise ValueError(
                    f"Permutation test needs {term!r} constant within cluster"
                    + (" and period" if n_periods > 1 else "")
                    + "; it varies. Use inference='wild_bootstrap'."
                )
        else:
            profile[g, t] = v
            seen[g, t] = True
    # Every cluster must have a value in every period some cluster is observed
    # in, otherwise a reassigned profile would be undefined there.
    used = np.zeros_like(seen)
    used[:, np.unique(tcodes)] = True
    if (used & ~seen).any():
        raise ValueError(
            f"Permutation test needs a value of {term!r} for every cluster in every "
            "period; some clusters have no rows in some periods."
        )
    return profile
