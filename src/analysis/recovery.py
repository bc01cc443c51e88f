"""Recovery of the true effects on synthetic data (bias, CI coverage, test size and power).

The sample's data-generating process (analysis.synthetic) is re-drawn many times, at national
size on the real 1,741 municipality codes and at prefecture size (35), and the hazard estimator
of the reports is fitted each time. Because the DGP is known, the estimates can be compared with
the truth: bias, coverage of the 95 % interval, rejection rates.

Two confounding settings are run: with the unobserved capacity u switched off in the hazard
(gamma_u = 0: the model is correctly specified, so the estimator should recover the truth) and
with the default DGP (gamma_u = 0.8: u drives both support uptake and progress; no estimator
that ignores u can recover the truth, and the bias shows how far an association can stray from
an effect). `validation/recovery.py` runs it on demand; the test suite runs a small version.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from .association import hazard_frame
from .codebook import Codebook, load_codebook
from .models import discrete_time_hazard, firth_logit, single_blas_thread
from .panel import add_lags
from .paths import data_dir
from .synthetic import Truth, fictional_municipalities, municipality_covariates, national_municipalities, simulate_panel

FOCUS = ["sup_advisor", "sup_staff_training", "sup_workshop"]  # two true effects and one null


def truth_without_confounding() -> Truth:
    t = Truth()
    return replace(t, full={**t.full, "gamma_u": 0.0})


def _hazard_data(panel: pd.DataFrame, munis: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    """Person-period data built by the same code as the reports' hazard table, plus 重層 status."""
    p = add_lags(panel.merge(munis[["code", "population", "kaso"]], on="code"), book.support_measures)
    pp = hazard_frame(p, book)
    pp["jusou"] = (pp["jusou_status"] == "implemented").astype(float)
    return pp


def one_replication(seed: int, truth: Truth, size: str, book: Codebook, n_boot: int = 199) -> dict:
    """Draw one dataset, fit the Firth hazard model with every lagged measure, return estimates.

    Runs with one BLAS thread (models.single_blas_thread), in the main process and in joblib
    workers alike, so that a replication's numbers do not depend on n_jobs or the machine.
    """
    with single_blas_thread():
        return _one_replication(seed, truth, size, book, n_boot)


def _one_replication(seed: int, truth: Truth, size: str, book: Codebook, n_boot: int) -> dict:
    rng = np.random.default_rng(seed)
    if size == "national":
        munis = national_municipalities(rng, data_dir() / "external" / "municipality_codes.csv")
    else:
        munis = fictional_municipalities(rng)
    panel = simulate_panel(munis, truth, rng, book)
    pp = _hazard_data(panel, munis, book)
    terms = [f"{m}_lag1" for m in book.support_measures]
    formula = f"event ~ C(fiscal_year) + {' + '.join(terms)} + jusou + log_population"
    out: dict[str, Any] = {"seed": seed, "n_events": int(pp["event"].sum()), "n_rows": len(pp), "converged": True}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # non-convergence is counted below
            fit = firth_logit(formula, pp)
        out["converged"] = bool(fit.converged)
        ci = fit.conf_int(0.05) if size != "national" else None
        z = scipy.stats.norm.ppf(0.975)
        for m in FOCUS:
            t = f"{m}_lag1"
            est, se = float(fit.params[t]), float(fit.bse[t])
            lo, hi = (
                (float(ci.loc[t, "lower"]), float(ci.loc[t, "upper"]))
                if ci is not None
                else (est - z * se, est + z * se)
            )
            # a profile bound that is never reached (flat penalised likelihood, few events) is infinite
            out[f"{m}:unbounded"] = bool(math.isnan(lo) or math.isnan(hi))
            lo = -math.inf if math.isnan(lo) else lo
            hi = math.inf if math.isnan(hi) else hi
            out[f"{m}:est"], out[f"{m}:lo"], out[f"{m}:hi"] = est, lo, hi
            out[f"{m}:p_lr"] = float(fit.pvalues[t])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            haz = discrete_time_hazard(
                formula,
                pp,
                cluster_col="code",
                method="firth",
                inference="wild_bootstrap",
                n_boot=n_boot,
                seed=seed,
                test_terms=[f"{m}_lag1" for m in FOCUS],
            )
        out["converged"] = out["converged"] and bool(haz.converged)
        for m in FOCUS:
            out[f"{m}:p"] = float(haz.pvalues[f"{m}_lag1"])
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def run(
    n_rep: int,
    size: str,
    confounded: bool,
    seed0: int = 7_000,
    n_jobs: int = 1,
    n_boot: int = 199,
    progress: bool = False,
) -> pd.DataFrame:
    """`n_rep` replications (joblib, seeded per replication: identical for any n_jobs)."""
    from joblib import delayed

    from .parallelism import parallel

    book = load_codebook()
    truth = Truth() if confounded else truth_without_confounding()
    seeds = [seed0 + i for i in range(n_rep)]
    rows = parallel(n_jobs, verbose=5 if progress else 0)(
        delayed(one_replication)(s, truth, size, book, n_boot) for s in seeds
    )
    return pd.DataFrame(rows)


def _split(reps: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """(usable replications, number that raised an error, number whose fit did not converge)."""
    failed = reps["error"].notna() if "error" in reps else pd.Series(False, index=reps.index)
    converged = (
        reps["converged"].fillna(False).astype(bool) if "converged" in reps else pd.Series(True, index=reps.index)
    )
    nonconverged = ~failed & ~converged
    return reps[~failed & converged], int(failed.sum()), int(nonconverged.sum())


def summarise(reps: pd.DataFrame, truth: Truth, alpha: float = 0.05) -> pd.DataFrame:
    """Per focus measure: true value, mean estimate, bias, empirical SD, CI coverage, rejection rate.

    Replications whose fit raised an error (``n_failed``) or did not converge (``n_nonconverged``:
    the Firth fit or the hazard model stopped before its tolerance) are counted and left out of
    every other column; ``n_ok`` is what the other columns are computed from.
    """
    ok, n_failed, n_nonconverged = _split(reps)
    rows = []
    for m in FOCUS:
        beta = truth.full["beta"][m]
        est = ok[f"{m}:est"]
        cover = ((ok[f"{m}:lo"] <= beta) & (beta <= ok[f"{m}:hi"])).mean()
        rows.append(
            {
                "measure": m,
                "true_log_or": beta,
                "n_ok": len(ok),
                "n_failed": n_failed,
                "n_nonconverged": n_nonconverged,
                "mean_estimate": est.mean(),
                "bias": est.mean() - beta,
                "sd": est.std(ddof=1),
                "mc_se_bias": est.std(ddof=1) / math.sqrt(len(ok)) if len(ok) > 1 else math.nan,
                "coverage_95": cover,
                "unbounded_ci_share": ok[f"{m}:unbounded"].mean(),
                "reject_rate_wild": (ok[f"{m}:p"] < alpha).mean(),
                "reject_rate_lr": (ok[f"{m}:p_lr"] < alpha).mean(),
                "mean_events": ok["n_events"].mean(),
            }
        )
    return pd.DataFrame(rows)


def truth_dict(confounded: bool) -> dict:
    return asdict(Truth() if confounded else truth_without_confounding())


# --- size of the trends report's tests, for its own model ------------------------------------

SIZE_MEASURE = "sup_workshop"


def _municipalities(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """The sample's 35 fictional municipalities, or n of them in the sample's mix (2 cities : 5 towns)."""
    if n == 35:
        return fictional_municipalities(rng)
    if n < 3:
        raise ValueError("市町数は3以上でなければなりません / n_municipalities must be at least 3")
    kind = np.where(np.arange(n) < round(n * 10 / 35), "市", "町")
    code = [f"99{i:04d}" for i in range(n)]
    return municipality_covariates(code, code, kind, rng, kinds=("市", "町"))


def _truth_with_events(shift: float) -> Truth:
    t = Truth()
    return replace(t, full={**t.full, "alpha": {y: a + shift for y, a in t.full["alpha"].items()}})


def _null_hazard_data(seed: int, n_municipalities: int, shift: float, book: Codebook, measure: str) -> pd.DataFrame:
    """The sample's DGP at this size, with `measure` made a null: its whole yearly profile is
    reassigned among municipalities at random (a cluster permutation), so it keeps its uptake
    rate and persistence but is unrelated to the outcome and the covariates."""
    rng = np.random.default_rng(seed)
    munis = _municipalities(n_municipalities, rng)
    panel = simulate_panel(munis, _truth_with_events(shift), rng, book)
    wide = panel.pivot(index="code", columns="fiscal_year", values=measure)
    wide.index = rng.permutation(wide.index.to_numpy())
    shuffled = wide.stack().rename(measure).reset_index().rename(columns={"level_0": "code"})
    panel = panel.drop(columns=measure).merge(shuffled, on=["code", "fiscal_year"], how="left")
    return _hazard_data(panel, munis, book)


def _mean_events(n_municipalities: int, shift: float, seeds: list[int], book: Codebook) -> float:
    return float(
        np.mean([_null_hazard_data(s, n_municipalities, shift, book, SIZE_MEASURE)["event"].sum() for s in seeds])
    )


def calibrate_events(n_municipalities: int, target_events: float, seed: int = 12_000, n_pilot: int = 100) -> float:
    """Shift of the DGP's full-implementation intercepts that gives `target_events` on average.

    Bisection on the mean number of events over `n_pilot` seeded draws (the same draws at every
    step, so the search is deterministic).
    """
    book = load_codebook()
    seeds = [seed + i for i in range(n_pilot)]
    lo, hi = -6.0, 6.0
    for _ in range(25):
        mid = 0.5 * (lo + hi)
        if _mean_events(n_municipalities, mid, seeds, book) < target_events:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-2:
            break
    return round(0.5 * (lo + hi), 3)


def _size_replication(
    seed: int, n_municipalities: int, shift: float, n_boot: int, book: Codebook, measure: str
) -> dict:
    """One draw: the trends report's model for a null measure, LR and wild bootstrap p-values."""
    covariates = book.model_covariates  # the reports' own covariate terms

    with single_blas_thread():
        pp = _null_hazard_data(seed, n_municipalities, shift, book, measure)
        term = f"{measure}_lag1"
        data = pp.dropna(subset=[term])
        out: dict[str, Any] = {
            "seed": seed,
            "n_events": int(data["event"].sum()),
            "n_rows": len(data),
            "n_supported": int((data.groupby("code")[term].max() > 0).sum()),
            "converged": True,
        }
        if out["n_events"] == 0 or data[term].nunique() < 2:
            out["error"] = "no events or no variation in the measure"  # the report says so instead
            return out
        # exactly the trends report's model (association.hazard_table)
        formula = f"event ~ C(fiscal_year) + {term} + {' + '.join(covariates)}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                fit = firth_logit(formula, data)
                out["p_lr"] = float(fit.pvalues[term])
                haz = discrete_time_hazard(
                    formula,
                    data,
                    cluster_col="code",
                    method="firth",
                    inference="wild_bootstrap",
                    n_boot=n_boot,
                    seed=seed,
                    test_terms=[term],
                )
            out["p_wild"] = float(haz.pvalues[term])
            out["converged"] = bool(fit.converged and haz.converged)
        except Exception as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"
        return out


def size_study(
    n_municipalities: int = 35,
    n_rep: int = 1000,
    seed: int = 13_000,
    n_boot: int = 1999,
    *,
    target_events: float | None = None,
    shift: float | None = None,
    n_jobs: int = 1,
    measure: str = SIZE_MEASURE,
) -> pd.DataFrame:
    """Rejection rates of the trends report's two tests for a measure with no association.

    The model is the report's own (``event ~ C(fiscal_year) + <measure>_lag1 + log_population +
    kaso``, Firth, clusters = municipalities), fitted to the sample's DGP (``analysis.synthetic``,
    FY2021-FY2025) at ``n_municipalities``, with the measure made a null by reassigning its yearly
    profiles among municipalities. ``target_events`` (mean events in the person-period data) sets
    the intercept shift via :func:`calibrate_events`; or give ``shift`` directly (0 = the sample's
    DGP). One row per replication: seed, n_events, n_rows, n_supported, converged, p_lr, p_wild
    and ``error`` (replications with no events, where the report shows no test, are counted
    there). Summarise with :func:`size_summary`. Identical for any ``n_jobs``.
    """
    from joblib import delayed

    from .parallelism import parallel

    if shift is None:
        shift = 0.0 if target_events is None else calibrate_events(n_municipalities, target_events)
    book = load_codebook()
    rows = parallel(n_jobs)(
        delayed(_size_replication)(seed + i, n_municipalities, shift, n_boot, book, measure) for i in range(n_rep)
    )
    out = pd.DataFrame(rows)
    out.attrs.update(
        {
            "n_municipalities": n_municipalities,
            "shift": shift,
            "n_boot": n_boot,
            "seed": seed,
            "measure": measure,
            "target_events": target_events,
        }
    )
    return out


def size_summary(reps: pd.DataFrame, alpha: float = 0.05) -> dict:
    """Rejection rates (with Monte Carlo SEs) of the LR and wild bootstrap tests at ``alpha``.

    Replications without a test (no events) or whose fit failed or did not converge are counted
    and excluded. Returns a plain dict (JSON-ready).
    """
    ok, n_failed, n_nonconverged = _split(reps)

    def rate(col: str) -> tuple[float, float]:
        r = float((ok[col] < alpha).mean()) if len(ok) else math.nan
        return r, math.sqrt(r * (1 - r) / len(ok)) if len(ok) else math.nan

    lr, lr_se = rate("p_lr")
    wild, wild_se = rate("p_wild")
    return {
        "n_municipalities": int(reps.attrs.get("n_municipalities", 0)),
        "n_rep": int(len(reps)),
        "n_used": int(len(ok)),
        "n_without_test_or_failed": n_failed,
        "n_nonconverged": n_nonconverged,
        "mean_events": float(ok["n_events"].mean()),
        "median_events": float(ok["n_events"].median()),
        "mean_person_years": float(ok["n_rows"].mean()),
        "mean_supported_municipalities": float(ok["n_supported"].mean()),
        "alpha": alpha,
        "reject_rate_lr": lr,
        "mc_se_lr": lr_se,
        "reject_rate_wild": wild,
        "mc_se_wild": wild_se,
        "shift": float(reps.attrs.get("shift", math.nan)),
        "n_boot": int(reps.attrs.get("n_boot", 0)),
        "seed": int(reps.attrs.get("seed", 0)),
        "measure": reps.attrs.get("measure", SIZE_MEASURE),
    }


SIZE_FIGURES = Path(__file__).parent / "figures_data" / "size_sample.json"  # package data: reports read it


def size_figures(path=None) -> dict:
    """The committed size-study figures (analysis/figures_data/size_sample.json), for reports to quote."""
    import json

    path = SIZE_FIGURES if path is None else path
    return json.loads(Path(path).read_text(encoding="utf-8"))


def size_figures_for(n_municipalities: int, n_events: int, figures: dict | None = None) -> dict:
    """The committed size figures nearest to a dataset's numbers of municipalities and events.

    Returns that entry (see :func:`size_summary`) plus ``applies``: True when it was measured at
    the same number of municipalities and within one event of the dataset's (mean events), so
    the report can quote it as the figure that applies; otherwise it is only the nearest one.
    """
    figures = size_figures() if figures is None else figures
    entries = [figures["sample"], *figures.get("grid", [])]

    def distance(e: dict) -> float:
        return abs(math.log(e["n_municipalities"] / max(n_municipalities, 1))) + abs(
            math.log(max(e["mean_events"], 0.5) / max(n_events, 0.5))
        )

    nearest = min(entries, key=distance)
    best = dict(nearest)
    best["applies"] = bool(best["n_municipalities"] == n_municipalities and abs(best["mean_events"] - n_events) <= 1)
    return best


__all__ = [
    "FOCUS",
    "SIZE_FIGURES",
    "SIZE_MEASURE",
    "calibrate_events",
    "one_replication",
    "run",
    "size_figures",
    "size_figures_for",
    "size_study",
    "size_summary",
    "summarise",
    "truth_dict",
    "truth_without_confounding",
]
