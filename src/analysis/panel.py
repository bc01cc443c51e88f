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
    out[OUTCOME] = pd.array(
        [False if f else (True if t else pd.NA) for f, t in zip(any_false, all_true, strict=False)], dtype="boolean"
    )
    status = out["jusou_status"].astype("string")
    out["jusou"] = pd.array([pd.NA if pd.isna(s) else s == "implemented" for s in status], dtype="boolean")
    return out


def build_panel(
    dataset: Dataset, book: Codebook, years: list[int] | None = None, preread: dict | None = None
) -> pd.DataFrame:
    """Read every survey of the dataset (or `years`) and return the long panel with covariates.

    Lagged exposures `<measure>_lag1` hold support in the previous fiscal year (missing in the
    first year observed). Sorted by (code, fiscal_year).
    """
    years = dataset.years if years is None else sorted(years)
    frames = []
    for y in years:
        result = (preread or {}).get(y) or dataset.read(y, book)
        if not result.ok:
            from .survey import SurveyError

            raise SurveyError(
                f"{result.path}: 調査ファイルにエラーが {len(result.errors)} 件あります。"
                f"`python -m analysis validate {result.path}` で内容を確認してください / "
                f"{len(result.errors)} errors in the survey file",
                result.issues,
            )
        frames.append(result.tidy)
    panel = add_outcome(pd.concat(frames, ignore_index=True), book)
    master = dataset.master()
    covs = [c["variable"] for c in book.covariates if c["variable"] in master.columns]
    panel = panel.merge(master[["code", *covs]], on="code", how="left", validate="many_to_one")
    panel = panel.sort_values(["code", "fiscal_year"]).reset_index(drop=True)
    panel = add_official_fiscal_strength(panel)
    return add_lags(panel, book.support_measures)


def add_official_fiscal_strength(panel: pd.DataFrame) -> pd.DataFrame:
    """Fill 財政力指数 the master leaves empty from the bundled 総務省 workbooks, year by year.

    The master's own value, where given, is kept. For each survey year the latest published
    value at or before it is used (analysis.official.fiscal_strength); a code or year the
    workbooks do not cover stays missing. ``panel.attrs["fiscal_strength_notes"]`` holds, per
    fiscal year, the sentence that states the vintage, for the reports.
    """
    if "fiscal_strength" not in panel.columns or not panel["fiscal_strength"].isna().any():
        return panel
    from .official import fiscal_strength

    out = panel.copy()
    out["fiscal_strength"] = out["fiscal_strength"].astype(float)
    notes = {}
    for year, rows in out[out["fiscal_strength"].isna()].groupby("fiscal_year"):
        fs = fiscal_strength(rows["code"].astype(str), int(year))
        values = fs.frame["fiscal_strength"].to_numpy()
        out.loc[rows.index, "fiscal_strength"] = values
        notes[int(year)] = fs.note_ja
    out.attrs["fiscal_strength_notes"] = notes
    return out


def add_lags(panel: pd.DataFrame, columns: list[str], lag: int = 1) -> pd.DataFrame:
    """Add `<col>_lag<lag>`: the value in fiscal year t - lag (missing when not observed)."""
    out = panel.copy()
    prev = panel[["code", "fiscal_year", *columns]].copy()
    prev["fiscal_year"] = prev["fiscal_year"] + lag
    prev = prev.rename(columns={c: f"{c}_lag{lag}" for c in columns})
    return out.merge(prev, on=["code", "fiscal_year"], how="left")


def cross_section(
    panel: pd.DataFrame, fiscal_year: int, exposure_lag: int = 0, measures: list[str] | None = None
) -> pd.DataFrame:
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


def load_panel(
    dataset: str = "sample",
    years: list[int] | None = None,
    book: Codebook | None = None,
    covariates: list[str] | None = None,
) -> pd.DataFrame:
    """The analysis-ready municipality × fiscal-year panel of a dataset, for one's own models.

    Unlike the reader's tidy frame (nullable booleans that keep 無回答 distinct), every column
    here has a dtype that statsmodels, firthmodels, patsy and seaborn accept directly: answers
    and the outcome are float 0/1 with NaN for a missing answer, counts are int, status and
    code are categorical, and the model's covariate terms (e.g. ``log_population``) are added.
    `describe_panel()` names every column in Japanese and English with its source.

    Parameters
    ----------
    dataset : str, default "sample"
        Name of a dataset under data/raw/ (``"sample"`` is the bundled fictional prefecture).
    years : list of int, optional
        Fiscal years to read; by default all years of the dataset.
    book : Codebook, optional
        The codebook; by default data/codebook/survey.yaml.
    covariates : list of str, optional
        Covariate terms to add (e.g. ``"aging_rate"``); by default the codebook's
        ``analysis.covariates``.

    Returns
    -------
    DataFrame
        One row per municipality and fiscal year, model-ready dtypes.

    Examples
    --------
    >>> from analysis import load_panel, firth_logit
    >>> panel = load_panel("sample", years=[2025])
    >>> fit = firth_logit("full_implementation ~ sup_advisor + log_population + kaso", panel)
    >>> fit.nobs
    35
    """
    from .association import add_terms, covariates_of
    from .codebook import load_codebook
    from .datasets import load_dataset

    book = book or load_codebook()
    raw = build_panel(load_dataset(dataset), book, years)
    out = pd.DataFrame(
        {
            "code": pd.Categorical(raw["code"].astype(str)),
            "name": raw["name"].astype(str).to_numpy(),
            "fiscal_year": raw["fiscal_year"].astype(int).to_numpy(),
            "jusou_status": pd.Categorical(
                raw["jusou_status"].astype(object), categories=["not_implemented", "preparing", "implemented"]
            ),
        }
    )
    binary = [
        OUTCOME,
        "jusou",
        *book.main_items,
        *book.support_measures,
        *book.challenges,
        *[f"{m}_lag1" for m in book.support_measures],
    ]
    for col in binary:
        out[col] = raw[col].astype("Float64").astype(float).to_numpy()
    for c in book.covariates:
        if c["variable"] in raw.columns:
            out[c["variable"]] = pd.to_numeric(raw[c["variable"]], errors="coerce").astype(float).to_numpy()
    add_terms(out, out, [t for t in covariates_of(book, covariates) if t not in out.columns])
    return out


def describe_panel(book: Codebook | None = None) -> pd.DataFrame:
    """Data dictionary of `load_panel`: column, Japanese and English label, type and source.

    Parameters
    ----------
    book : Codebook, optional
        The codebook whose questions and measures are described; by default
        data/codebook/survey.yaml.

    Returns
    -------
    DataFrame
        One row per column of `load_panel`'s frame.

    Examples
    --------
    >>> from analysis import describe_panel
    >>> d = describe_panel()
    >>> d.iloc[0].tolist()[:2]
    ['code', '全国地方公共団体コード（6桁）']
    >>> "full_implementation" in set(d["column"])
    True
    """
    from .codebook import load_codebook

    book = book or load_codebook()
    rows = [
        (
            "code",
            "全国地方公共団体コード（6桁）",
            "municipality code (6 digits, JIS X 0402)",
            "category",
            "調査ファイル",
        ),
        ("name", "市町村名", "municipality name", "str", "調査ファイル"),
        ("fiscal_year", "年度（西暦の年度開始年）", "fiscal year (start year)", "int", "調査ファイル"),
        (
            "jusou_status",
            "重層的支援体制整備事業の実施状況",
            "multi-layered support project status",
            "category",
            "調査ファイル",
        ),
        (
            OUTCOME,
            "指針の主要項目を全て実施（1/0、欠測は NaN）",
            "all main guideline items implemented (1/0, NaN)",
            "float",
            "主要項目から算出（コードブック main_items）",
        ),
        (
            "jusou",
            "重層的支援体制整備事業を実施（1/0）",
            "runs the multi-layered support project (1/0)",
            "float",
            "jusou_status から算出",
        ),
    ]
    for v in [*book.main_items, *book.support_measures, *book.challenges]:
        rows.append((v, book.label(v), book.label(v, "en"), "float", "調査ファイル（1=○, 0=×, NaN=無回答）"))
    for m in book.support_measures:
        rows.append(
            (
                f"{m}_lag1",
                f"{book.label(m)}（前年度）",
                f"{book.label(m, 'en')} (previous year)",
                "float",
                "前年度の調査ファイル",
            )
        )
    for c in book.covariates:
        rows.append((c["variable"], c["label_ja"], c["label_en"], "float", "市町村マスタ（municipalities.csv）"))
    for t in book.model_covariates:
        if t.startswith("log_"):
            rows.append((t, book.term_label(t), book.term_label(t, "en"), "float", f"log({t[4:]})"))
    return pd.DataFrame(rows, columns=["column", "label_ja", "label_en", "dtype", "source"])


__all__ = [
    "OUTCOME",
    "add_lags",
    "add_official_fiscal_strength",
    "add_outcome",
    "build_panel",
    "cross_section",
    "describe_panel",
    "load_panel",
]
