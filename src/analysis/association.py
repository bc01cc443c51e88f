"""How each support measure relates to full implementation: per year and across years.

Per fiscal year (cross-section): 2×2 counts and rates, the risk difference with an exact
unconditional interval, Fisher's exact p, a Firth odds ratio adjusted for a small fixed covariate
set (profile CI, likelihood-ratio p), Holm and BH adjustment across measures, the smallest
difference the data could detect, and separation stated in words.

Across years: a discrete-time hazard model of first reaching full implementation with period
effects and last year's support, one measure at a time, Firth-penalised (few events) with a wild
cluster restricted score bootstrap over municipalities (honest with ~35 clusters).
Every estimate is an association, not an effect (docs/assumptions.md).

Tables here are numeric (English column names, then Japanese headers in the `*_ja` functions);
formatting happens only at display (`analysis.display`).

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import crosstab, power
from .codebook import Codebook, check_covariate_terms
from .display import captioned_table
from .models import discrete_time_hazard, firth_logit, person_period
from .panel import OUTCOME
from .sentences import hazard_sentence_ja, measure_sentence_ja, measure_sentences_ja

SEED = 20251001
N_BOOT = 1999


def covariates_of(book: Codebook, covariates: Sequence[str] | None = None) -> list[str]:
    """The model's covariate terms: the given ones (checked) or the codebook's `analysis.covariates`."""
    if covariates is None:
        return book.model_covariates
    terms = list(covariates)
    check_covariate_terms(terms, book)
    return terms


def covariate_labels(book: Codebook, covariates: Sequence[str]) -> str:
    """「人口（対数）・過疎地域指定」: the terms as the reader reads them."""
    return "・".join(book.term_label(t) for t in covariates)


def add_terms(frame: pd.DataFrame, source: pd.DataFrame, terms: Sequence[str]) -> pd.DataFrame:
    """Add each covariate term as a float column (log_x = log of x; missing stays missing)."""
    for t in terms:
        if t.startswith("log_"):
            frame[t] = np.log(pd.to_numeric(source[t[4:]], errors="coerce").astype(float)).to_numpy()
        else:
            frame[t] = pd.to_numeric(source[t], errors="coerce").astype(float).to_numpy()
    return frame


def _model_frame(year: pd.DataFrame, measures: list[str], covariates: Sequence[str]) -> pd.DataFrame:
    out = pd.DataFrame({"y": year[OUTCOME].astype("Float64").astype(float)})
    for m in measures:
        out[m] = year[m].astype("Float64").astype(float)
    return add_terms(out, year, covariates)


COLLINEAR_NOTE_JA = (
    "活用の有無が人口・過疎地域指定や年度と完全に重なっている（多重共線性）ため、"
    "調整したオッズ比とp値は推定できません。"
)


def adjust_keeping_family(p: pd.Series, methods=("holm", "fdr_bh")) -> pd.DataFrame:
    """Holm/BH across all measures; a p-value that could not be computed counts as 1.

    The family keeps its size (a measure whose test failed is still a hypothesis the report set
    out to test), which is conservative for the others; its own adjusted p stays missing.
    """
    p = pd.Series(p, dtype=float).reset_index(drop=True)
    adj = crosstab.adjust_pvalues(p.fillna(1.0), methods=methods)
    adj.loc[p.isna().to_numpy(), :] = math.nan
    return adj


def association_table(year: pd.DataFrame, book: Codebook, covariates: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per support measure (English column names; see `association_table_ja`).

    The smallest detectable difference is computed by exact enumeration of all 2×2 outcomes
    (power.exact_power), not by simulation: it is deterministic and, at these group sizes,
    cheaper; the tests show it matches the simulated value within simulation error.
    """
    measures = book.support_measures
    covariates = covariates_of(book, covariates)
    frame = _model_frame(year, measures, covariates)
    rows = []
    for m in measures:
        tab = crosstab.two_by_two(frame[m], frame["y"])
        method = crosstab.ci_method_for(tab.n_exposed, tab.n_unexposed)
        c = crosstab.measure_association_table(frame, [m], "y", ci_method=method, adjust=()).iloc[0]
        rec: dict[str, Any] = {
            "measure": m,
            "label": book.label(m),
            "viewpoint": book.viewpoint_of(m),
            "ci_method": method,
        }
        rec.update({k: c[k] for k in crosstab.MEASURE_COLUMNS})
        rec.update(_firth(frame, m, book, covariates))
        n1, n0 = int(c["n_exposed"]), int(c["n_unexposed"])
        if not (n1 and n0):
            rec["mdd"] = math.nan
        elif min(n1, n0) > power.LARGE_GROUP:
            rec["mdd"] = power.normal_mdd(n1, n0, float(c["rate_unexposed"]))
        else:
            rec["mdd"] = power.minimal_detectable_difference(n1, n0, float(c["rate_unexposed"]), method="exact")
        rows.append(rec)
    out = pd.DataFrame(rows)
    adj = adjust_keeping_family(out["p_lr"])
    out["p_holm"] = adj["holm"].to_numpy()
    out["p_bh"] = adj["fdr_bh"].to_numpy()
    outcome_rate = float(frame["y"].mean()) if frame["y"].notna().any() else math.nan
    return _with_evalues(out, outcome_rate)


def _with_evalues(table: pd.DataFrame, outcome_rate: float) -> pd.DataFrame:
    """E-values (VanderWeele & Ding 2017) for each odds ratio and its limit nearer 1.

    The outcome counts as rare below 15 %, where the odds ratio approximates the risk ratio;
    otherwise RR = sqrt(OR) (as R's EValue::evalues.OR). A side of the interval that is
    unbounded or was not computed leaves the confidence-limit E-value missing.
    """
    from .sensitivity import evalue_columns, is_rare

    table = table.copy()
    rare = bool(not math.isnan(outcome_rate) and is_rare(outcome_rate))
    ev = evalue_columns(table, rare=rare)
    table["evalue"], table["evalue_ci"] = ev["evalue"].to_numpy(), ev["evalue_ci"].to_numpy()
    table["evalue_rare"] = rare
    return table


def unbounded_side(lower: float, upper: float, direction: int) -> tuple[float, float]:
    """An odds-ratio interval with the side that separation leaves open made explicit.

    Under separation towards +∞ (−∞) the profile (penalised) likelihood need not fall below the
    cut-off on that side, and the profile search returns no bound (NaN): that side is unbounded,
    shown as 「上限なし」 (「下限なし」). A missing bound without separation stays missing.
    """
    if direction > 0 and math.isnan(upper):
        upper = math.inf
    if direction < 0 and math.isnan(lower):
        lower = 0.0
    return lower, upper


def separation_note_ja(
    directions: dict[str, int], measure: str, label: str, covariate_labels: dict[str, str] | None = None
) -> str:
    """Which terms are separated, in which direction, said in words with Japanese labels."""
    parts = []
    d = directions.get(measure, 0)
    if d:
        towards = "無限大" if d > 0 else "0"
        parts.append(
            f"「{label}」では活用の有無で全項目実施がほぼ完全に分かれており（データの分離）、"
            f"通常の最尤推定ではオッズ比が{towards}になります。Firth法で有限の推定値を求めましたが、不確実性は大きいです。"
        )
    covs = [lab for t, lab in (covariate_labels or {}).items() if directions.get(t, 0)]
    if covs:
        parts.append(
            f"共変量（{'、'.join(covs)}）でもデータが分離しており、通常の最尤推定ではその係数が発散します（Firth法で推定）。"
        )
    return "".join(parts)


def _firth(frame: pd.DataFrame, measure: str, book: Codebook, covariates: Sequence[str]) -> dict:
    data = frame[["y", measure, *covariates]].dropna()
    nan = {
        "or": math.nan,
        "or_lower": math.nan,
        "or_upper": math.nan,
        "p_lr": math.nan,
        "separation": "",
        "separation_direction": 0,
        "converged": math.nan,
        "note": "",
    }
    if data[measure].nunique() < 2 or data["y"].nunique() < 2:
        return {
            **nan,
            "note": "活用あり・なしの一方、または全項目実施の有無の一方しかないため、オッズ比とp値は計算できません。",
        }
    try:
        with warnings.catch_warnings():  # non-convergence is said in the note below
            warnings.simplefilter("ignore", RuntimeWarning)
            res = firth_logit(" + ".join([f"y ~ {measure}", *covariates]), data)
        ci = res.conf_int(0.05, [measure]).loc[measure]  # profile and LR test for this term only
    except np.linalg.LinAlgError:
        return {**nan, "note": COLLINEAR_NOTE_JA}
    directions = {t: int(d) for t, d in res.separation_directions.items() if t != "Intercept"}
    lo, hi = unbounded_side(float(np.exp(ci["lower"])), float(np.exp(ci["upper"])), directions.get(measure, 0))
    p = float(res.pvalues_of([measure])[measure])
    note = separation_note_ja(directions, measure, book.label(measure), {t: book.term_label(t) for t in covariates})
    if not res.converged:
        note += "調整オッズ比の推定が収束しませんでした。値は参考程度にとどめてください。"
    if math.isnan(p):
        note += "尤度比検定のp値は計算できませんでした（制約付きの推定が収束しませんでした）。"
    if math.isnan(lo) or math.isnan(hi):
        note += "信頼区間の一方の端は計算できませんでした（プロファイル尤度の探索が収束しませんでした）。"
    return {
        "or": float(np.exp(res.params[measure])),
        "or_lower": lo,
        "or_upper": hi,
        "p_lr": p,
        "separation": ",".join(t for t, d in directions.items() if d),
        "separation_direction": directions.get(measure, 0),
        "converged": bool(res.converged),
        "note": note,
    }


def association_table_ja(table: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    """The report's table: Japanese headers, numbers as numbers (percentages in points).

    Intervals are two columns (・下限 / ・上限); `analysis.display` merges them for HTML.
    """
    pts = lambda col: table[col].astype(float) * 100  # noqa: E731
    return pd.DataFrame(
        {
            "施策の視点": table["viewpoint"],
            "支援施策": table["label"],
            "活用あり(市町数)": table["n_exposed"].astype(int),
            "全項目実施率・あり(%)": pts("rate_exposed"),
            "活用なし(市町数)": table["n_unexposed"].astype(int),
            "全項目実施率・なし(%)": pts("rate_unexposed"),
            "差(ポイント)": pts("rd"),
            "差・下限(ポイント)": pts("rd_lower"),
            "差・上限(ポイント)": pts("rd_upper"),
            "Fisher正確検定p値": table["p_fisher"].astype(float),
            "調整オッズ比(Firth)": table["or"].astype(float),
            "調整オッズ比・下限": table["or_lower"].astype(float),
            "調整オッズ比・上限": table["or_upper"].astype(float),
            "尤度比検定p値": table["p_lr"].astype(float),
            "Holm調整p値": table["p_holm"].astype(float),
            "BH調整p値": table["p_bh"].astype(float),
            "E値(推定値)": table["evalue"].astype(float),
            "E値(信頼限界)": table["evalue_ci"].astype(float),
            "検出できる最小の差(ポイント)": pts("mdd"),
            "注記": table["note"].fillna(""),
        }
    )


def association_narrative_ja(
    table: pd.DataFrame, n_total: int, timing_ja: str = "同じ年度", covariates_ja: str = "人口（対数）・過疎地域指定"
) -> str:
    """Plain-Japanese reading of the table: what the data show and what they cannot rule out."""
    lines = [
        f"対象は{n_total}市町です。支援施策ごとに、{timing_ja}に活用した市町と活用しなかった市町の"
        "「主要項目を全て実施」の割合を比べました。"
    ]
    dropped = [r for r in table.itertuples() if r.n_dropped]
    if dropped:
        lines.append(
            "回答が欠けている市町は、その施策の比較から除きました（"
            + "、".join(f"「{r.label}」{int(r.n_dropped)}市町" for r in dropped)
            + "）。"
        )
    adjusted_sig = [r for r in table.itertuples() if not math.isnan(r.p_holm) and r.p_holm < 0.05]
    if adjusted_sig:
        names = "、".join(f"「{r.label}」" for r in adjusted_sig)
        lines.append(
            f"複数の施策を同時に検定したことを補正（Holm法）しても、{names}の活用と全項目実施の間に統計的に有意な関連がありました。"
            "ただし、これは関連であり、施策の効果を示すものではありません。"
        )
    else:
        lines.append(
            "複数の施策を同時に検定したことを補正（Holm法）すると、どの施策についても統計的に有意な関連は認められませんでした。"
            "これは「関連がない」ことを意味しません。この市町数で検出できる差には限りがあります。"
        )
    missing_p = [r for r in table.itertuples() if math.isnan(r.p_lr)]
    if missing_p:
        names = "、".join(f"「{r.label}」" for r in missing_p)
        lines.append(
            f"{names}は尤度比検定のp値を計算できませんでした。Holm法・BH法の補正では、検定した施策の数"
            f"（{len(table)}）を変えないよう、これらのp値を1として扱いました（他の施策の補正は控えめになります）。"
        )
    mdds = [r.mdd for r in table.itertuples() if not math.isnan(r.mdd)]
    if mdds:
        lines.append(
            f"この市町数では、施策により約{min(mdds) * 100:.0f}〜{max(mdds) * 100:.0f}ポイントより小さい差は、"
            "実際にあっても見つけられる確率（検出力）が80%未満です（Fisherの正確検定、有意水準5%）。"
            "有意でない結果は、それより小さな差を否定するものではありません。"
        )
    lines.append(evalue_explanation_ja(table))
    for r in table.itertuples():
        if r.note:
            lines.append(r.note if r.note.startswith("「") else f"「{r.label}」: {r.note}")
    lines.append(
        "これらはすべて関連であり、支援施策の効果を示すものではありません。"
        "支援を活用する市町と活用しない市町は、人口規模や体制などがもともと異なります。"
        f"調整オッズ比は{covariates_ja}を考慮していますが、それ以外の違いは残ります。"
    )
    return "\n\n".join(lines)


# --- across years ----------------------------------------------------------------------------

MIN_HAZARD_YEARS = 3  # one year defines the risk set, the next ones give lagged support and events


def hazard_frame(
    panel: pd.DataFrame, book: Codebook, counts: dict | None = None, covariates: Sequence[str] | None = None
) -> pd.DataFrame:
    """Person-period data for first reaching full implementation, with last year's support.

    * Municipalities already fully implementing in the first observed year are left-censored
      (when they got there is unknown) and excluded.
    * A municipality whose outcome is missing in a year leaves the risk set from that year on
      (censored): whether it reached full implementation then is unknown, so it is counted
      neither as an event nor as "not yet" (assumptions log A2).
    * The first year has no lagged support and serves only to define who is at risk.

    When `counts` is a dict, it receives how many municipalities were left-censored, censored
    at a missing outcome, and had a missing outcome in the first year.
    """
    first = int(panel["fiscal_year"].min())
    p = panel.sort_values(["code", "fiscal_year"], kind="stable").copy()
    outcome = p[OUTCOME].astype("boolean")
    p["_missing"] = outcome.isna().to_numpy()
    p["event"] = outcome.fillna(False).astype(int).to_numpy()
    first_rows = p["fiscal_year"] == first
    left = set(p.loc[first_rows & (p["event"] == 1), "code"])
    unknown_start = set(p.loc[first_rows & p["_missing"], "code"])
    # censor from the first missing outcome on
    seen_missing = p.groupby("code", sort=False)["_missing"].cummax()
    reached_before = (p.groupby("code", sort=False)["event"].cumsum() - p["event"]) > 0
    censored = set(p.loc[p["_missing"] & ~reached_before & ~p["code"].isin(left | unknown_start), "code"])
    keep = ~p["code"].isin(left | unknown_start) & ~seen_missing & (p["fiscal_year"] > first)
    if counts is not None:
        counts.update(
            {
                "left_censored": len(left),
                "missing_first_year": len(unknown_start),
                "censored_missing": len(censored),
                "first_year": first,
            }
        )
    p = p[keep].drop(columns="_missing")
    pp = person_period(p, "code", "fiscal_year", "event")
    pp["fiscal_year"] = pp["fiscal_year"].astype(int)
    pp["code"] = pp["code"].astype(str)
    add_terms(pp, pp, covariates_of(book, covariates))
    for m in book.support_measures:
        pp[f"{m}_lag1"] = pp[f"{m}_lag1"].astype("Float64").astype(float)
    return pp.reset_index(drop=True)


FEW_EVENTS = 50  # below this many events the Firth LR test is the primary test (docs/recovery.md)


def hazard_table(
    panel: pd.DataFrame,
    book: Codebook,
    seed: int = SEED,
    n_boot: int = N_BOOT,
    pp: pd.DataFrame | None = None,
    covariates: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One Firth logit hazard model per measure: OR of last year's support and two tests.

    The penalised likelihood-ratio test is model-based; the wild cluster restricted score
    bootstrap is robust to within-municipality dependence. With few events the LR test is
    primary; with many the bootstrap is (docs/recovery.md). Holm adjusts the primary p-values,
    keeping the family's size when a p-value cannot be computed. A measure whose model cannot
    be fitted (no events, no variation in support) gets a row with missing estimates and a note.
    """
    covariates = covariates_of(book, covariates)
    pp = hazard_frame(panel, book, covariates=covariates) if pp is None else pp
    labels = {t: book.term_label(t) for t in covariates}
    rows = []
    for i, m in enumerate(book.support_measures):
        term = f"{m}_lag1"
        data = pp.dropna(subset=[term])
        treated = data.groupby("code")[term].max()
        n_events = int(data["event"].sum())
        rec: dict[str, Any] = {
            "measure": m,
            "label": book.label(m),
            "n_person_years": len(data),
            "n_events": n_events,
            "n_clusters": int(data["code"].nunique()),
            "n_clusters_supported": int((treated > 0).sum()),
            "or": math.nan,
            "or_lower": math.nan,
            "or_upper": math.nan,
            "p_lr": math.nan,
            "p_wild": math.nan,
            "p_cr1": math.nan,
            "primary": "lr" if n_events < FEW_EVENTS else "wild",
            "separation": "",
            "converged": math.nan,
            "note": "",
        }
        if n_events == 0 or n_events == len(data):
            rec["note"] = (
                "全項目実施に初めて到達した市町がないため、推定できません。"
                if n_events == 0
                else "対象の市町・年度がすべて到達しているため、推定できません。"
            )
        elif data[term].nunique() < 2:
            rec["note"] = "前年度に活用した市町・年度（または活用しなかった市町・年度）がないため、推定できません。"
        else:
            formula = " + ".join([f"event ~ C(fiscal_year) + {term}", *covariates])
            try:
                res = discrete_time_hazard(
                    formula,
                    data,
                    cluster_col="code",
                    method="firth",
                    inference="wild_bootstrap",
                    n_boot=n_boot,
                    seed=seed + i,
                    test_terms=[term],
                )
                fit = res.firth_result()  # the same Firth fit, not fitted a second time
                p_lr = float(fit.pvalues_of([term])[term])
            except np.linalg.LinAlgError:
                rec["note"] = COLLINEAR_NOTE_JA
                rec["p_primary"] = math.nan
                rows.append(rec)
                continue
            ors = res.odds_ratios(0.05, [term]).loc[term]
            lo, hi = unbounded_side(
                float(ors["lower"]), float(ors["upper"]), int(fit.separation_directions.get(term, 0))
            )
            rec.update(
                {
                    "or": float(ors["odds_ratio"]),
                    "or_lower": lo,
                    "or_upper": hi,
                    "p_lr": p_lr,
                    "p_wild": float(res.pvalues[term]),
                    "p_cr1": float(res.cr1.loc[term, "p_cr1"]) if term in res.cr1.index else math.nan,
                    "separation": term if term in res.separation else "",
                }
            )
            directions = {t: int(d) for t, d in fit.separation_directions.items()}
            rec["converged"] = bool(fit.converged and res.converged)
            rec["note"] = separation_note_ja(directions, term, book.label(m), labels)
            if not (fit.converged and res.converged):
                rec["note"] += "推定が収束しませんでした。値は参考程度にとどめてください。"
            if math.isnan(p_lr):
                rec["note"] += "尤度比検定のp値は計算できませんでした。"
            del fit, res  # free both fits (their design copies and work arrays) before the next measure's
        rec["p_primary"] = rec["p_lr"] if rec["primary"] == "lr" else rec["p_wild"]
        rows.append(rec)
    out = pd.DataFrame(rows)
    out["p_holm"] = adjust_keeping_family(out["p_primary"], methods=("holm",))["holm"].to_numpy()
    return _with_evalues(out, float(pp["event"].mean()) if len(pp) else math.nan)


def hazard_table_ja(table: pd.DataFrame) -> pd.DataFrame:
    """The trends report's hazard table: Japanese headers, numbers as numbers."""
    return pd.DataFrame(
        {
            "支援施策（前年度の活用）": table["label"],
            "市町・年度の数": table["n_person_years"].astype(int),
            "全項目実施に到達した数": table["n_events"].astype(int),
            "市町数": table["n_clusters"].astype(int),
            "うち前年度に活用した市町": table["n_clusters_supported"].astype(int),
            "オッズ比(Firth)": table["or"].astype(float),
            "オッズ比・下限": table["or_lower"].astype(float),
            "オッズ比・上限": table["or_upper"].astype(float),
            "E値(推定値)": table["evalue"].astype(float),
            "E値(信頼限界)": table["evalue_ci"].astype(float),
            "p値(尤度比検定)": table["p_lr"].astype(float),
            "p値(ワイルド・クラスター・ブートストラップ)": table["p_wild"].astype(float),
            "主たる検定": ["尤度比検定" if p == "lr" else "ブートストラップ" for p in table["primary"]],
            "Holm調整p値(主たる検定)": table["p_holm"].astype(float),
            "注記": table["note"].fillna(""),
        }
    )


def hazard_sample_ja(counts: dict, n_years: int) -> str:
    """Who is in the hazard model: left-censored and censored municipalities, said in words."""
    lines = []
    if counts.get("left_censored"):
        lines.append(
            f"最初の調査年度（FY{counts['first_year']}）に既に全項目を実施していた{counts['left_censored']}市町は、"
            "いつ到達したかが分からないため、このモデルの対象から除いています（左側打ち切り）。"
        )
    if counts.get("missing_first_year"):
        lines.append(
            f"最初の調査年度に全項目実施かどうかが無回答のため分からない{counts['missing_first_year']}市町も除いています。"
        )
    if counts.get("censored_missing"):
        lines.append(
            f"途中の年度で全項目実施かどうかが無回答だった{counts['censored_missing']}市町は、"
            "その年度以降を対象から外しています（到達の有無が分からないため、「未到達」とは数えません）。"
        )
    return "\n\n".join(lines)


def hazard_unavailable_ja(n_years: int, n_events: int | None = None) -> str | None:
    """Why the hazard section is empty, or None when the model can be fitted."""
    if n_years < MIN_HAZARD_YEARS:
        return (
            f"調査年度が{n_years}年度分しかないため、年度をまたぐ分析（離散時間ハザードモデル）は行いません。"
            f"対象を決める最初の年度と、前年度の支援・到達を見る年度が必要で、{MIN_HAZARD_YEARS}年度分以上の調査が必要です。"
        )
    if n_events == 0:
        return "対象期間中に全項目実施に初めて到達した市町がないため、支援との関連は推定できません。"
    return None


def evalue_explanation_ja(table: pd.DataFrame, exposure: str = "支援の活用") -> str:
    """One plain sentence on what the E-values mean, with the largest one as the example."""
    from .sensitivity import evalue_or, evalue_sentence_ja

    text = (
        "表の「E値」は、まだ考慮していない要因（未測定の交絡）がどれほど強ければ関連を説明し尽くせるかの目安です"
        "（値が大きいほど、未測定の要因だけでは説明しにくい関連です）。"
    )
    rows = table.dropna(subset=["evalue"])
    if rows.empty:
        return text
    r = rows.loc[rows["evalue"].idxmax()]
    ev = evalue_or(r["or"], r["or_lower"], r["or_upper"], rare=bool(r["evalue_rare"]))
    return text + f"例えば「{r['label']}」では、" + evalue_sentence_ja(ev, exposure=exposure)


# --- result objects, for researchers and the analyst appendix --------------------------------


@dataclass(frozen=True)
class Analysis:
    """A numeric result table plus what produced it (frozen; formatted only at display).

    ``table`` has English column names (one row per measure); ``spec`` records the model:
    covariates, exposure timing, methods, seeds and replication counts; ``facts`` what the data
    did (events, separation, convergence). ``summary()`` is plain text, ``_repr_html_`` shows it
    in a notebook.
    """

    kind: str
    table: pd.DataFrame = field(repr=False)
    spec: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{self.kind}"] + [f"  {k}: {v}" for k, v in {**self.spec, **self.facts}.items()]
        cols = [
            c
            for c in (
                "measure",
                "n_exposed",
                "n_unexposed",
                "n_person_years",
                "n_events",
                "rd",
                "rd_lower",
                "rd_upper",
                "or",
                "or_lower",
                "or_upper",
                "p_fisher",
                "p_lr",
                "p_wild",
                "p_holm",
                "evalue",
                "evalue_ci",
                "separation",
                "converged",
            )
            if c in self.table.columns
        ]
        return "\n".join(lines) + "\n\n" + self.table[cols].round(4).to_string(index=False)

    def _repr_html_(self) -> str:
        import html as _html

        items = "".join(
            f"<li>{_html.escape(str(k))}: {_html.escape(str(v))}</li>" for k, v in {**self.spec, **self.facts}.items()
        )
        # one column per measure, one row per field: the full numeric table has ~30 fields, which
        # fit no page as columns but read well as rows (and print on A4 portrait)
        shown = self.table.round(4)
        if "measure" in shown.columns:
            shown = shown.set_index("measure")
        shown = shown.T.rename_axis(index="field", columns="measure")
        table = captioned_table(shown.to_html(), f"{self.kind} (numeric results, one column per measure)")
        return f"<p><strong>{_html.escape(self.kind)}</strong></p><ul>{items}</ul>{table}"


def analyse_year(
    year: pd.DataFrame, book: Codebook, covariates: Sequence[str] | None = None, exposure_lag: int = 0
) -> Analysis:
    """The per-year association analysis as a result object (the report formats it at display)."""
    covariates = covariates_of(book, covariates)
    table = association_table(year, book, covariates)
    spec = {
        "covariates": list(covariates),
        "exposure_lag": exposure_lag,
        "risk difference interval": f"Chan-Zhang exact unconditional (Newcombe when both groups > {power.LARGE_GROUP})",
        "odds ratio": "Firth logistic regression, profile penalised-likelihood CI, penalised LR test",
        "multiplicity": "Holm and Benjamini-Hochberg over all measures (missing p counted as 1)",
        "detectable difference": "Fisher exact test, alpha 0.05, power 0.8, exact enumeration",
        "e-values": "VanderWeele & Ding 2017; OR as RR when the outcome is rare (<15 %), else sqrt(OR)",
    }
    facts = {
        "municipalities": len(year),
        "fully implementing": int(year[OUTCOME].astype("boolean").sum()),
        "separated": ", ".join(
            f"{m}: {sep}" for m, sep in zip(table["measure"], table["separation"], strict=False) if sep
        )
        or "none",
        "not converged": ", ".join(table.loc[table["converged"].eq(False), "measure"]) or "none",
    }
    return Analysis("per-year association (support measure vs full implementation)", table, spec, facts)


def analyse_hazard(
    panel: pd.DataFrame, book: Codebook, covariates: Sequence[str] | None = None, n_boot: int = N_BOOT, seed: int = SEED
) -> Analysis:
    """The cross-year hazard analysis as a result object, with who is in the risk set."""
    covariates = covariates_of(book, covariates)
    counts: dict = {}
    pp = hazard_frame(panel, book, counts=counts, covariates=covariates)
    table = hazard_table(panel, book, seed=seed, n_boot=n_boot, pp=pp, covariates=covariates)
    events = pp.groupby("fiscal_year")["event"].agg(["size", "sum"])
    spec = {
        "covariates": list(covariates),
        "model": "Firth logit discrete-time hazard, fiscal-year effects, one lagged measure at a time",
        "bootstrap": f"wild cluster restricted score, {n_boot} Rademacher draws, seeds {seed}..{seed + len(table) - 1}",
        "primary test": f"LR below {FEW_EVENTS} events, else bootstrap",
    }
    facts = {
        "risk set": counts,
        "events per year": {int(y): f"{int(r['sum'])} of {int(r['size'])}" for y, r in events.iterrows()},
        "separated": ", ".join(s for s in table["separation"] if s) or "none",
        "not converged": ", ".join(table.loc[table["converged"].eq(False), "measure"]) or "none",
    }
    return Analysis("cross-year discrete-time hazard (first reaching full implementation)", table, spec, facts)


# --- results in words (analysis.sentences, re-exported) ----------------------------------------


# --- methods, for readers and for specialists ---------------------------------------------------
# Method facts are generated from the constants the code uses, so the text cannot drift from it.


def methods_plain_ja(covs: str) -> str:
    """How the per-year comparison works, for a reader who is not a statistician."""
    return (
        "市町の数が少ないと、偶然によるばらつきが大きくなります。そこで、少ない数でも信頼できる計算方法を使い、"
        "結果には必ず「95%信頼区間」（真の値がこの範囲にあると考えてよい幅）を付けています。"
        f"市町の規模などの違いを考えるため、{covs}をそろえた比較（調整オッズ比）も示します。"
        "複数の施策を同時に調べると偶然の「有意」が出やすくなるため、その分を補正したp値も示します。"
    )


def methods_detail_ja(n_measures: int, covs: str) -> list[str]:
    """The technical description (shown in a collapsible 「分析方法の詳細」 section)."""
    return [
        "全項目実施率の差の95%信頼区間は、Chan–Zhang の正確な無条件法（スコア統計量）で求めました。"
        f"両群とも{power.LARGE_GROUP}市町を超える場合は Newcombe の方法を使います（結果はほぼ同じで、計算が速いため）。",
        "p値は Fisher の正確検定です。",
        f"調整オッズ比は、{covs}を共変量とする Firth 法（罰則付き尤度）のロジスティック回帰で推定し、"
        "信頼区間はプロファイル罰則付き尤度、p値は罰則付き尤度比検定によります（R の logistf と同じ方法）。"
        "データの分離（活用の有無で結果が完全に分かれること）があっても有限の推定値が得られます。",
        f"{n_measures}つの施策を同時に検定するため、尤度比検定のp値を Holm 法と Benjamini–Hochberg 法で調整しました。",
        "「検出できる最小の差」は、この市町数と活用しなかった市町の実施率のもとで、Fisher の正確検定（有意水準5%）が"
        "80%の確率で有意になる最小の差を、起こりうるすべての結果を数え上げて（正確に）求めたものです。",
        "欠けている回答は「未実施」とはみなさず、その施策の比較から除きました（除いた数は本文に示します）。",
    ]


def hazard_methods_plain_ja(covs: str) -> str:
    return (
        "まだ全項目を実施していない市町が、翌年度に初めて全項目実施に到達するかどうかと、前年度の支援施策の活用との関連を、"
        f"年度の違いと{covs}をそろえて調べました（離散時間ハザードモデル）。"
    )


def hazard_methods_detail_ja(covs: str, n_municipalities: int | None = None, n_events: int | None = None) -> list[str]:
    return [
        f"モデルは、年度のダミー変数・前年度の施策の活用・{covs}を含む Firth 法のロジスティック回帰"
        "（離散時間ハザードモデル、Singer & Willett 2003 第11章）です。施策ごとに1つずつ推定します。",
        "p値は2種類示します。罰則付き尤度比検定（モデルに基づく）と、市町を単位とするワイルド・クラスター・"
        f"ブートストラップ（帰無仮説を課したスコア・ブートストラップ、{N_BOOT:,}回。同じ市町の年度間の相関に頑健）です。",
        f"全項目実施への到達が{FEW_EVENTS}件未満のときは尤度比検定を、それ以上のときはブートストラップを主たる検定とし、"
        "主たる検定のp値を Holm 法で調整しました。",
        *_size_sentence(n_municipalities, n_events),
        "オッズ比の95%信頼区間はプロファイル罰則付き尤度によります。E値は VanderWeele & Ding (2017) により、"
        "到達がまれな（15%未満の）ときはオッズ比をリスク比とみなして求めました。",
    ]


def _size_sentence(n_municipalities: int | None, n_events: int | None) -> list[str]:
    """The measured size of both tests for this report's own model, at the closest measured size."""
    if n_municipalities is None or n_events is None:
        return []
    from .recovery import size_figures_for

    f = size_figures_for(n_municipalities, n_events)
    where = (
        "この県と同じ規模"
        if f["applies"]
        else f"この県に最も近い規模（{f['n_municipalities']:,}市町、到達 平均{f['mean_events']:.0f}件）"
    )
    return [
        f"このモデル（施策1つ＋年度＋共変量）で効果のない施策を{f['n_rep']:,}回シミュレーションしたところ、{where}で"
        f"「有意」（5%水準）になった割合は尤度比検定で{100 * f['reject_rate_lr']:.1f}%、ブートストラップで"
        f"{100 * f['reject_rate_wild']:.1f}%でした（名目5%）。主たる検定の選び方はこの結果に基づきます。"
    ]


__all__ = [
    "COLLINEAR_NOTE_JA",
    "FEW_EVENTS",
    "MIN_HAZARD_YEARS",
    "N_BOOT",
    "SEED",
    "Analysis",
    "add_terms",
    "adjust_keeping_family",
    "analyse_hazard",
    "analyse_year",
    "association_narrative_ja",
    "association_table",
    "association_table_ja",
    "covariate_labels",
    "covariates_of",
    "evalue_explanation_ja",
    "hazard_frame",
    "hazard_methods_detail_ja",
    "hazard_methods_plain_ja",
    "hazard_sample_ja",
    "hazard_sentence_ja",
    "hazard_table",
    "hazard_table_ja",
    "hazard_unavailable_ja",
    "measure_sentence_ja",
    "measure_sentences_ja",
    "methods_detail_ja",
    "methods_plain_ja",
    "separation_note_ja",
    "unbounded_side",
]
