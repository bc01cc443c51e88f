"""The municipality × fiscal-year panel: outcome, exposures (with lag) and covariates.

`full_implementation` is True when every main item of the codebook is implemented, False when
at least one is known not to be, and missing (<NA>) when the answers are incomplete but none is
'not implemented' (the assumptions log explains this choice).
"""
from __future__ import annotations

import pandas as pd

from .codebook import Codebook
from .datasets import Dataset

OUTCOME = "full_implementation"


def add_outcome(tidy: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    """Add full_implementation and jusou (重層 implemented) to a tidy survey frame."""
    out = tidy.copy()
    items = out[book.main_items].astype("boolean")
    any_false = (items == False).any(axis=1)  # noqa: E712 (nullable comparison)
    all_true = items.fillna(False).all(axis=1)  # NA is not "implemented"
    out[OUTCOME] = pd.array([False if f else (True if t else pd.NA) for f, t in zip(any_false, all_true)],
                            dtype="boolean")
    status = out["jusou_status"].astype("string")
    out["jusou"] = pd.array([pd.NA if pd.isna(s) else s == "implemented" for s in status], dtype="boolean")
    return out


def build_panel(dataset: Dataset, book: Codebook, years: list[int] | None = None,
                preread: dict | None = None) -> pd.DataFrame:
    """Read every survey of the dataset (or `years`) and return the long panel with covariates.

    Lagged exposures `<measure>_lag1` hold support in the previous fiscal year (missing in the
    first year observed). Sorted by (code, fiscal_year).
    """
    years = dataset.years if years is None else sorted(years)
    frames = []
    for y in years:
        result = (preread or {}).get(y) or dataset.read(y, book)
        if not result.ok:
            from .io import SurveyError
            raise SurveyError(
                f"{result.path}: 調査ファイルにエラーが {len(result.errors)} 件あります。"
                f"`python -m analysis validate {result.path}` で内容を確認してください / "
                f"{len(result.errors)} errors in the survey file", result.issues)
        frames.append(result.tidy)
    panel = add_outcome(pd.concat(frames, ignore_index=True), book)
    master = dataset.master()
    covs = [c["variable"] for c in book.covariates if c["variable"] in master.columns]
    panel = panel.merge(master[["code", *covs]], on="code", how="left", validate="many_to_one")
    panel = panel.sort_values(["code", "fiscal_year"]).reset_index(drop=True)
    return add_lags(panel, book.support_measures)


def add_lags(panel: pd.DataFrame, columns: list[str], lag: int = 1) -> pd.DataFrame:
    """Add `<col>_lag<lag>`: the value in fiscal year t - lag (missing when not observed)."""
    out = panel.copy()
    prev = panel[["code", "fiscal_year", *columns]].copy()
    prev["fiscal_year"] = prev["fiscal_year"] + lag
    prev = prev.rename(columns={c: f"{c}_lag{lag}" for c in columns})
    return out.merge(prev, on=["code", "fiscal_year"], how="left")


def cross_section(panel: pd.DataFrame, fiscal_year: int, exposure_lag: int = 0,
                  measures: list[str] | None = None) -> pd.DataFrame:
    """Rows of one fiscal year; with exposure_lag=1 the measure columns hold last year's support."""
    if exposure_lag not in (0, 1):
        raise ValueError("exposure_lag は 0 か 1 です / exposure_lag must be 0 or 1")
    year = panel[panel["fiscal_year"] == fiscal_year].copy()
    if year.empty:
        raise ValueError(f"{fiscal_year}年度のデータがありません / no data for FY{fiscal_year}")
    if exposure_lag == 1:
        for m in measures or []:
            year[m] = year[f"{m}_lag1"]
    return year.reset_index(drop=True)
