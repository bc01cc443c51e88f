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
"""
from __future__ import annotations

import math
from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import scipy.stats

from .codebook import Codebook, load_codebook
from .association import hazard_frame
from .models import discrete_time_hazard, firth_logit, single_blas_thread
from .panel import add_lags
from .paths import data_dir
from .synthetic import Truth, fictional_municipalities, national_municipalities, simulate_panel

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
    out = {"seed": seed, "n_events": int(pp["event"].sum()), "n_rows": len(pp)}
    try:
        fit = firth_logit(formula, pp)
        ci = fit.conf_int(0.05) if size != "national" else None
        z = scipy.stats.norm.ppf(0.975)
        for m in FOCUS:
            t = f"{m}_lag1"
            est, se = float(fit.params[t]), float(fit.bse[t])
            lo, hi = (float(ci.loc[t, "lower"]), float(ci.loc[t, "upper"])) if ci is not None else (est - z * se, est + z * se)
            # a profile bound that is never reached (flat penalised likelihood, few events) is infinite
            out[f"{m}:unbounded"] = bool(math.isnan(lo) or math.isnan(hi))
            lo = -math.inf if math.isnan(lo) else lo
            hi = math.inf if math.isnan(hi) else hi
            out[f"{m}:est"], out[f"{m}:lo"], out[f"{m}:hi"] = est, lo, hi
            out[f"{m}:p_lr"] = float(fit.pvalues[t])
        haz = discrete_time_hazard(formula, pp, cluster_col="code", method="firth", inference="wild_bootstrap",
                                   n_boot=n_boot, seed=seed, test_terms=[f"{m}_lag1" for m in FOCUS])
        for m in FOCUS:
            out[f"{m}:p"] = float(haz.pvalues[f"{m}_lag1"])
    except Exception as exc:  # noqa: BLE001 - a failed fit is counted, not hidden
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def run(n_rep: int, size: str, confounded: bool, seed0: int = 7_000, n_jobs: int = 1, n_boot: int = 199,
        progress: bool = False) -> pd.DataFrame:
    """`n_rep` replications (joblib, seeded per replication: identical for any n_jobs)."""
    from joblib import Parallel, delayed

    book = load_codebook()
    truth = Truth() if confounded else truth_without_confounding()
    seeds = [seed0 + i for i in range(n_rep)]
    rows = Parallel(n_jobs=n_jobs, verbose=5 if progress else 0)(
        delayed(one_replication)(s, truth, size, book, n_boot) for s in seeds)
    return pd.DataFrame(rows)


def summarise(reps: pd.DataFrame, truth: Truth, alpha: float = 0.05) -> pd.DataFrame:
    """Per focus measure: true value, mean estimate, bias, empirical SD, CI coverage, rejection rate."""
    ok = reps[reps.get("error", pd.Series(index=reps.index, dtype=object)).isna()] if "error" in reps else reps
    rows = []
    for m in FOCUS:
        beta = truth.full["beta"][m]
        est = ok[f"{m}:est"]
        cover = ((ok[f"{m}:lo"] <= beta) & (beta <= ok[f"{m}:hi"])).mean()
        rows.append({"measure": m, "true_log_or": beta, "n_ok": len(ok), "n_failed": len(reps) - len(ok),
                     "mean_estimate": est.mean(), "bias": est.mean() - beta, "sd": est.std(ddof=1),
                     "mc_se_bias": est.std(ddof=1) / math.sqrt(len(ok)) if len(ok) > 1 else math.nan,
                     "coverage_95": cover, "unbounded_ci_share": ok[f"{m}:unbounded"].mean(),
                     "reject_rate_wild": (ok[f"{m}:p"] < alpha).mean(),
                     "reject_rate_lr": (ok[f"{m}:p_lr"] < alpha).mean(),
                     "mean_events": ok["n_events"].mean()})
    return pd.DataFrame(rows)


def truth_dict(confounded: bool) -> dict:
    return asdict(Truth() if confounded else truth_without_confounding())
