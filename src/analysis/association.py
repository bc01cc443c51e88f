"""How each support measure relates to full implementation: per year and across years.

Per fiscal year (cross-section): 2×2 counts and rates, the risk difference with an exact
unconditional interval, Fisher's exact p, a Firth odds ratio adjusted for a small fixed covariate
set (profile CI, likelihood-ratio p), Holm and BH adjustment across measures, the smallest
difference the data could detect, and separation stated in words.

Across years: a discrete-time hazard model of first reaching full implementation with period
effects and last year's support, one measure at a time, Firth-penalised (few events) with a wild
cluster restricted score bootstrap over municipalities (honest with ~35 clusters).
Every estimate is an association, not an effect (docs/assumptions.md).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import crosstab, power
from .codebook import Codebook
from .models import discrete_time_hazard, firth_logit, person_period, separation_message_ja
from .panel import OUTCOME

COVARIATE_TERMS = ["log_population", "kaso"]  # assumptions log A4
SEED = 20251001
N_SIM = 2000
N_BOOT = 1999


def _model_frame(year: pd.DataFrame, measures: list[str]) -> pd.DataFrame:
    out = pd.DataFrame({"y": year[OUTCOME].astype("Float64").astype(float)})
    for m in measures:
        out[m] = year[m].astype("Float64").astype(float)
    out["log_population"] = np.log(year["population"].astype(float))
    out["kaso"] = year["kaso"].astype(float)
    return out


def association_table(year: pd.DataFrame, book: Codebook, seed: int = SEED, n_sim: int = N_SIM) -> pd.DataFrame:
    """One row per support measure (English column names; see `association_table_ja`)."""
    measures = book.support_measures
    frame = _model_frame(year, measures)
    # exact intervals and simulated power are for small groups; at national scale they cost
    # minutes per measure and the large-sample methods are accurate (assumptions log A6, A8)
    large = len(frame) > 2 * power.LARGE_GROUP
    crude = crosstab.measure_association_table(frame, measures, "y", ci_method="newcombe" if large else "exact")
    rows = []
    for i, m in enumerate(measures):
        c = crude.iloc[i]
        rec = {"measure": m, "label": book.label(m), "viewpoint": book.viewpoint_of(m)}
        rec.update({k: c[k] for k in ("n_exposed", "n_unexposed", "n_dropped", "events_exposed", "events_unexposed",
                                      "rate_exposed", "rate_unexposed", "rd", "rd_lower", "rd_upper", "p_fisher")})
        rec.update(_firth(frame, m))
        n1, n0 = int(c["n_exposed"]), int(c["n_unexposed"])
        if not (n1 and n0):
            rec["mdd"] = math.nan
        elif min(n1, n0) > power.LARGE_GROUP:
            rec["mdd"] = power.normal_mdd(n1, n0, float(c["rate_unexposed"]))
        else:
            rec["mdd"] = power.minimal_detectable_difference(n1, n0, float(c["rate_unexposed"]), n_sim=n_sim,
                                                             seed=seed + i)
        rows.append(rec)
    out = pd.DataFrame(rows)
    adj = crosstab.adjust_pvalues(out["p_lr"], methods=("holm", "fdr_bh"))
    out["p_holm"] = adj["holm"].to_numpy()
    out["p_bh"] = adj["fdr_bh"].to_numpy()
    return out


def _firth(frame: pd.DataFrame, measure: str) -> dict:
    data = frame[["y", measure, *COVARIATE_TERMS]].dropna()
    nan = {"or": math.nan, "or_lower": math.nan, "or_upper": math.nan, "p_lr": math.nan, "separation": "", "note": ""}
    if data[measure].nunique() < 2 or data["y"].nunique() < 2:
        return {**nan, "note": "活用あり・なしの一方、または全項目実施の有無の一方しかないため、オッズ比は推定できません。"}
    res = firth_logit(f"y ~ {measure} + {' + '.join(COVARIATE_TERMS)}", data)
    ci = res.conf_int(0.05).loc[measure]
    sep = [t for t in res.separation if t == measure]
    return {"or": float(np.exp(res.params[measure])), "or_lower": float(np.exp(ci["lower"])),
            "or_upper": float(np.exp(ci["upper"])), "p_lr": float(res.pvalues[measure]),
            "separation": ",".join(res.separation),
            "note": separation_message_ja(sep) if sep else ""}


def _fmt_p(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _fmt_ci(lo: float, hi: float, scale: float = 1.0, digits: int = 1) -> str:
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (lo, hi)):
        return "—"
    return f"{lo * scale:.{digits}f}〜{hi * scale:.{digits}f}"


def _fmt(v: float, scale: float = 1.0, digits: int = 1) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v * scale:.{digits}f}"


def association_table_ja(table: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    """The report's table: Japanese headers, percentages in points, formatted CIs and p-values."""
    return pd.DataFrame({
        "施策の視点": table["viewpoint"],
        "支援施策": table["label"],
        "活用あり(市町数)": table["n_exposed"].astype(int),
        "全項目実施率・あり(%)": [_fmt(v, 100) for v in table["rate_exposed"]],
        "活用なし(市町数)": table["n_unexposed"].astype(int),
        "全項目実施率・なし(%)": [_fmt(v, 100) for v in table["rate_unexposed"]],
        "差(ポイント)": [_fmt(v, 100) for v in table["rd"]],
        "差の95%信頼区間": [_fmt_ci(lo, hi, 100) for lo, hi in zip(table["rd_lower"], table["rd_upper"])],
        "Fisher正確検定p値": [_fmt_p(p) for p in table["p_fisher"]],
        "調整オッズ比(Firth)": [_fmt(v, 1, 2) for v in table["or"]],
        "オッズ比の95%信頼区間": [_fmt_ci(lo, hi, 1, 2) for lo, hi in zip(table["or_lower"], table["or_upper"])],
        "尤度比検定p値": [_fmt_p(p) for p in table["p_lr"]],
        "Holm調整p値": [_fmt_p(p) for p in table["p_holm"]],
        "BH調整p値": [_fmt_p(p) for p in table["p_bh"]],
        "検出できる最小の差(ポイント)": [_fmt(v, 100, 0) for v in table["mdd"]],
        "注記": table["note"].fillna(""),
    })


def association_narrative_ja(table: pd.DataFrame, n_total: int) -> str:
    """Plain-Japanese reading of the table: what the data show and what they cannot rule out."""
    lines = [f"対象は{n_total}市町です。支援施策ごとに、活用した市町と活用しなかった市町の「主要項目を全て実施」の割合を比べました。"]
    adjusted_sig = [r for r in table.itertuples() if not math.isnan(r.p_holm) and r.p_holm < 0.05]
    if adjusted_sig:
        names = "、".join(f"「{r.label}」" for r in adjusted_sig)
        lines.append(f"複数の施策を同時に検定したことを補正（Holm法）しても、{names}の活用と全項目実施の間に統計的に有意な関連がありました。"
                     "ただし、これは関連であり、施策の効果を示すものではありません。")
    else:
        lines.append("複数の施策を同時に検定したことを補正（Holm法）すると、どの施策についても統計的に有意な関連は認められませんでした。"
                     "これは「関連がない」ことを意味しません。この市町数で検出できる差には限りがあります。")
    mdds = [r.mdd for r in table.itertuples() if not math.isnan(r.mdd)]
    if mdds:
        lines.append(f"この市町数で（検出力80%、有意水準5%で）検出できる最小の差は、施策により約{min(mdds) * 100:.0f}〜"
                     f"{max(mdds) * 100:.0f}ポイントです。これより小さい差は、あっても検出できません。")
    for r in table.itertuples():
        if r.note:
            lines.append(f"「{r.label}」: {r.note}")
    lines.append("これらはすべて関連であり、支援施策の効果を示すものではありません。"
                 "支援を活用する市町と活用しない市町は、人口規模や体制などがもともと異なります。"
                 "調整オッズ比は人口（対数）と過疎地域指定を考慮していますが、それ以外の違いは残ります。")
    return "\n\n".join(lines)


# --- across years ----------------------------------------------------------------------------

def hazard_frame(panel: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    """Person-period data for first reaching full implementation, with last year's support.

    Municipalities already fully implementing in the first observed year are left-censored
    (when they got there is unknown) and excluded; the first year has no lagged support and
    serves only to define who is at risk.
    """
    first = int(panel["fiscal_year"].min())
    p = panel.copy()
    p["event"] = p[OUTCOME].astype("boolean").fillna(False).astype(int)
    already = set(p.loc[(p["fiscal_year"] == first) & (p["event"] == 1), "code"])
    p = p[~p["code"].isin(already) & (p["fiscal_year"] > first)]
    pp = person_period(p, "code", "fiscal_year", "event")
    pp["fiscal_year"] = pp["fiscal_year"].astype(int)
    pp["code"] = pp["code"].astype(str)
    pp["log_population"] = np.log(pp["population"].astype(float))
    pp["kaso"] = pp["kaso"].astype(float)
    for m in book.support_measures:
        pp[f"{m}_lag1"] = pp[f"{m}_lag1"].astype("Float64").astype(float)
    return pp.reset_index(drop=True)


FEW_EVENTS = 50  # below this many events the Firth LR test is the primary test (docs/recovery.md)


def hazard_table(panel: pd.DataFrame, book: Codebook, seed: int = SEED, n_boot: int = N_BOOT) -> pd.DataFrame:
    """One Firth logit hazard model per measure: OR of last year's support and two tests.

    The penalised likelihood-ratio test is model-based; the wild cluster restricted score
    bootstrap is robust to within-municipality dependence. The recovery study measured, for a
    measure with no effect at prefecture size (≈5 events), 4 % rejections for the LR test and
    12 % for the bootstrap (nominal 5 %), while at national size both are calibrated. So with few
    events the LR test is primary; with many the bootstrap is. Holm adjusts the primary p-values.
    """
    pp = hazard_frame(panel, book)
    rows = []
    for i, m in enumerate(book.support_measures):
        term = f"{m}_lag1"
        data = pp.dropna(subset=[term])
        formula = f"event ~ C(fiscal_year) + {term} + {' + '.join(COVARIATE_TERMS)}"
        res = discrete_time_hazard(formula, data, cluster_col="code", method="firth", inference="wild_bootstrap",
                                   n_boot=n_boot, seed=seed + i, test_terms=[term])
        p_lr = float(firth_logit(formula, data).pvalues[term])
        treated = data.groupby("code")[term].max()
        primary = "lr" if res.n_events < FEW_EVENTS else "wild"
        rows.append({"measure": m, "label": book.label(m), "n_person_years": res.nobs, "n_events": res.n_events,
                     "n_clusters": res.n_clusters, "n_clusters_supported": int((treated > 0).sum()),
                     "or": float(np.exp(res.params[term])), "p_lr": p_lr, "p_wild": float(res.pvalues[term]),
                     "p_cr1": float(res.cr1.loc[term, "p_cr1"]) if term in res.cr1.index else math.nan,
                     "primary": primary, "p_primary": p_lr if primary == "lr" else float(res.pvalues[term]),
                     "separation": term if term in res.separation else ""})
    out = pd.DataFrame(rows)
    out["p_holm"] = crosstab.adjust_pvalues(out["p_primary"], methods=("holm",))["holm"].to_numpy()
    return out


def hazard_table_ja(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "支援施策（前年度の活用）": table["label"],
        "市町・年度の数": table["n_person_years"],
        "全項目実施に到達した数": table["n_events"],
        "市町数": table["n_clusters"],
        "うち前年度に活用した市町": table["n_clusters_supported"],
        "オッズ比(Firth)": [_fmt(v, 1, 2) for v in table["or"]],
        "p値(尤度比検定)": [_fmt_p(p) for p in table["p_lr"]],
        "p値(ワイルド・クラスター・ブートストラップ)": [_fmt_p(p) for p in table["p_wild"]],
        "主たる検定": ["尤度比検定" if p == "lr" else "ブートストラップ" for p in table["primary"]],
        "Holm調整p値(主たる検定)": [_fmt_p(p) for p in table["p_holm"]],
        "注記": [separation_message_ja([lab]) if s else "" for s, lab in zip(table["separation"], table["label"])],
    })
