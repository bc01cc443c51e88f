"""Municipality profiles (市町別カルテ): one printable A4 page per municipality and fiscal year.

An adviser visiting one 市町 needs, on one page, where the town stands (main guideline items
and 重層 status, this year and every earlier year), which prefectural support it used, what it
reported as challenges, its covariates beside the prefecture's median, and how a few similar
towns stand. Facts only: nothing here predicts or rates a municipality.

Layout under ``reports/<dataset>/``::

    profiles/index.html             市町一覧 (write_profile_index)
    profiles/FY<yyyy>/<code>.html   one profile per municipality (write_profiles)

A profile of fiscal year t uses only panel rows of years <= t, so adding a later year never
changes an earlier profile (incremental runs stay valid). Pages are rendered from jinja2
templates in ``templates/profile/`` with autoescape, no scripts and no external resources, and
are byte-deterministic (sorted, no clock).

Free-text answers (questions with ``answers: text``) appear only when the codebook marks the
question ``publishable: true``; the default is not to publish them.

API for the runner and the other pages::

    write_profiles(ds, panel, book, fiscal_year, reports_dir / profile_dir(fiscal_year)) -> [Path]
    write_profile_index(ds, panel, book, years, reports_dir) -> reports_dir / "profiles/index.html"
    profile_href(code, fiscal_year)  # "profiles/FY2025/992011.html", relative to reports/<dataset>/;
                                     # from FY<yyyy>/report.html link "../" + profile_href(...)
    profile_index_html(ds, panel, book, years, href=..., back_href=...) -> str  # to place it elsewhere

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np
import pandas as pd

from .codebook import Codebook
from .errors import AnalysisError
from .htmlexport import TEMPLATE_DIR, find_offline_violations, write_text_if_changed
from .texts import SYNTHETIC_BANNER_JA
from .wareki import wareki_fy

if TYPE_CHECKING:  # only for annotations: any object with name, label_ja and synthetic will do
    from .datasets import Dataset

__all__ = [
    "N_SIMILAR",
    "PROFILE_DIR",
    "PROFILE_INDEX_HREF",
    "ProfileError",
    "profile_dir",
    "profile_href",
    "profile_index_html",
    "publishable_text_columns",
    "render_profile",
    "similar_municipalities",
    "write_profile_index",
    "write_profiles",
]

#: Folder of the profiles under reports/<dataset>/.
PROFILE_DIR = "profiles"
#: The 市町一覧 page, relative to reports/<dataset>/.
PROFILE_INDEX_HREF = f"{PROFILE_DIR}/index.html"
#: Size of the comparison group (the brief allows 3–5).
N_SIMILAR = 5
#: At most this many fiscal years in a profile's year grids (the latest ones), so it stays on one A4 page.
MAX_YEARS_SHOWN = 10
#: Covariates compared on the log scale when finding similar municipalities.
LOG_COVARIATES = ("population",)

MARK = {True: "○", False: "×", None: "—"}
MISSING = "—"
_CODE_RE = re.compile(r"^\d{5,6}$")
_STALE_RE = re.compile(r"^\d{5,6}\.html$")


class ProfileError(AnalysisError):
    """The panel cannot make a profile (no such year or municipality, unsafe code) (ja / en)."""


# --- small helpers ------------------------------------------------------------------------------


def profile_dir(fiscal_year: int) -> str:
    """Folder of one year's profiles relative to reports/<dataset>/, e.g. ``profiles/FY2025``."""
    return f"{PROFILE_DIR}/FY{int(fiscal_year)}"


def profile_href(code: str, fiscal_year: int) -> str:
    """Path of a profile relative to reports/<dataset>/, e.g. ``profiles/FY2025/992011.html``."""
    return f"{profile_dir(fiscal_year)}/{_safe_code(code)}.html"


def _safe_code(code) -> str:
    code = str(code)
    if not _CODE_RE.fullmatch(code):
        raise ProfileError(
            f"市町村コード『{code}』はファイル名に使えません（5〜6桁の数字のみ）",
            f"municipality code {code!r} cannot name a file (5-6 digits only)",
        )
    return code


def _value(v):
    """None for missing (pd.NA, NaN, None), else the plain Python value."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _mark(v) -> str:
    v = _value(v)
    return MARK[None] if v is None else MARK[bool(v)]


def publishable_text_columns(book: Codebook) -> list[str]:
    """Free-text questions (``answers: text``) the codebook marks ``publishable: true``.

    Free text may name people or cases, so a column is published only when the codebook says so.
    """
    out = []
    for q in book.raw["questions"]:
        flag = q.get("publishable", False)
        if not isinstance(flag, bool):
            raise ProfileError(
                f"質問 {q.get('variable')} の publishable は true か false で指定してください（{flag!r}）",
                f"publishable of question {q.get('variable')} must be true or false, not {flag!r}",
                where=str(book.path),
            )
        if flag and q.get("answers") == "text":
            out.append(q["variable"])
    return out


def _covariates(book: Codebook, panel: pd.DataFrame) -> list[dict]:
    return [c for c in book.covariates if c["variable"] in panel.columns]


def _is_binary(values: pd.Series) -> bool:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return len(v) > 0 and set(v.unique()) <= {0, 1}


def _format_cov(var: str, value, binary: bool, unit: str) -> str:
    value = _value(value)
    if value is None:
        return MISSING
    if binary:
        return (
            "指定あり" if var == "kaso" and value else ("指定なし" if var == "kaso" else ("あり" if value else "なし"))
        )
    if var == "population":
        return f"{value:,.0f}{unit}"
    if var == "aging_rate":
        return f"{value:.1f}{unit}"
    if var == "fiscal_strength":
        return f"{value:.2f}"
    return f"{value:,.2f}{unit}"


# --- similar municipalities ---------------------------------------------------------------------


def _standardised(year: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    """Standardised covariates (z-scores over this year's municipalities; NaN stays NaN), index code.

    Population (and any covariate in LOG_COVARIATES) is logged first; a constant covariate
    (standard deviation 0) cannot tell municipalities apart and is left out.
    """
    out = {}
    for c in _covariates(book, year):
        var = c["variable"]
        x = pd.to_numeric(year[var], errors="coerce").astype(float)
        if var in LOG_COVARIATES:
            x = np.log(x.where(x > 0))
        sd = x.std(ddof=0)
        if x.notna().sum() >= 2 and sd > 0:
            out[var] = ((x - x.mean()) / sd).to_numpy()
    z = pd.DataFrame(out, index=year["code"].astype(str).to_numpy())
    return z.sort_index()


class _Neighbours:
    """Nearest municipalities over standardised covariates (z, sorted by code), for many queries.

    The arrays are taken from z once, and each query keeps only the candidates as close as the
    k-th nearest (np.partition, linear) before sorting them, instead of sorting every
    municipality: a national dataset's 1,741 profiles a year, or 17,410 at ten times that size,
    each compare with all the others, and sorting them all made the profiles grow with n² log n.
    """

    def __init__(self, z: pd.DataFrame):
        self.values = z.to_numpy(dtype=float)
        self.codes = z.index.to_numpy()
        self.position = {str(c): i for i, c in enumerate(self.codes)}

    def nearest(self, code: str, k: int) -> list[tuple[str, float]]:
        """The k rows nearest to `code` (Euclidean over the covariates `code` has), ties by code.

        z is sorted by code, so a stable sort on the (rounded) distance breaks ties by code. A
        candidate missing any of the covariates used is not compared (nothing is filled in).
        """
        i = self.position[str(code)]
        used = ~np.isnan(self.values[i])
        if not used.any() or k <= 0:
            return []
        diff = self.values[:, used] - self.values[i, used]
        ok = ~np.isnan(diff).any(axis=1)
        ok[i] = False
        candidates = np.flatnonzero(ok)
        dist = np.sqrt((diff[candidates] ** 2).sum(axis=1))
        rounded = np.round(dist, 9)
        keep = np.arange(len(rounded))
        if len(rounded) > k:  # only those as near as the k-th nearest can be among the first k
            keep = np.flatnonzero(rounded <= np.partition(rounded, k - 1)[k - 1])
        order = keep[np.argsort(rounded[keep], kind="stable")][:k]
        return [(str(c), float(d)) for c, d in zip(self.codes[candidates[order]], dist[order], strict=True)]


def _nearest(z: pd.DataFrame, code: str, k: int) -> list[tuple[str, float]]:
    """The k rows of z nearest to `code` (see :class:`_Neighbours`)."""
    return _Neighbours(z).nearest(code, k)


def similar_municipalities(
    panel: pd.DataFrame, book: Codebook, code: str, fiscal_year: int, k: int = N_SIMILAR
) -> list[tuple[str, float]]:
    """The `k` municipalities of `fiscal_year` most similar to `code`: [(code, distance)], nearest first.

    Covariates (log population, aging rate, 過疎, fiscal strength: the codebook's covariates) are
    standardised over that year's municipalities; distance is Euclidean over the covariates the
    municipality has; equal distances are ordered by code.
    """
    year = _year_rows(panel, fiscal_year)
    z = _standardised(year, book)
    if str(code) not in z.index:
        raise ProfileError(
            f"{fiscal_year}年度のパネルに市町村コード {code} はありません",
            f"no municipality {code} in the FY{fiscal_year} panel",
        )
    return _nearest(z, str(code), k)


def _year_rows(panel: pd.DataFrame, fiscal_year: int) -> pd.DataFrame:
    year = panel[panel["fiscal_year"] == int(fiscal_year)]
    if year.empty:
        raise ProfileError(f"{fiscal_year}年度のデータがパネルにありません", f"no FY{fiscal_year} rows in the panel")
    if year["code"].astype(str).duplicated().any():
        raise ProfileError(
            f"{fiscal_year}年度のパネルに同じ市町村コードが複数あります",
            f"duplicate municipality codes in the FY{fiscal_year} panel",
        )
    return year.sort_values("code", key=lambda s: s.astype(str)).reset_index(drop=True)


# --- one fiscal year's facts ---------------------------------------------------------------------


@dataclass
class _Year:
    """Everything the profiles of one fiscal year share, computed once."""

    fiscal_year: int
    book: Codebook
    history: dict[str, list[dict]]  # code -> rows of years <= fiscal_year, oldest first
    rows: dict[str, dict]  # code -> this year's row
    z: pd.DataFrame
    neighbours: _Neighbours  # nearest municipalities over z
    covariates: list[dict]  # codebook entries with "binary" and "median" added
    n_year: int
    n_jusou: int  # municipalities running 重層 this year
    n_full: int  # municipalities implementing every main item this year
    median_items: float | None  # median number of implemented main items this year
    years: list[int]  # every fiscal year of the panel up to fiscal_year


def _prepare(panel: pd.DataFrame, book: Codebook, fiscal_year: int) -> _Year:
    fiscal_year = int(fiscal_year)
    year = _year_rows(panel, fiscal_year)
    upto = panel[panel["fiscal_year"] <= fiscal_year].copy()
    upto["code"] = upto["code"].astype(str)
    upto = upto.sort_values(["code", "fiscal_year"])
    records = upto.to_dict("records")
    history: dict[str, list[dict]] = {}
    for r in records:
        history.setdefault(r["code"], []).append(r)
    rows = {str(c): history[str(c)][-1] for c in year["code"]}
    covs = []
    for c in _covariates(book, year):
        x = pd.to_numeric(year[c["variable"]], errors="coerce")
        covs.append(
            {
                **c,
                "binary": _is_binary(x),
                "median": _value(x.median()) if x.notna().any() else None,
                "n": int(x.notna().sum()),
                "n_yes": int((x == 1).sum()),
            }
        )
    n_yes = [_n_items(r, book)[0] for r in rows.values()]
    z = _standardised(year, book)
    return _Year(
        fiscal_year,
        book,
        history,
        rows,
        z,
        _Neighbours(z),
        covs,
        len(year),
        int((year["jusou_status"].astype("string") == "implemented").sum()),
        int((year["full_implementation"].astype("boolean") == True).sum()),  # noqa: E712
        float(np.median(n_yes)) if n_yes else None,
        sorted(int(y) for y in upto["fiscal_year"].unique()),
    )


def _n_items(row: dict, book: Codebook) -> tuple[int, int, int]:
    """(implemented, not implemented, missing) main items of one row."""
    vals = [_value(row.get(i)) for i in book.main_items]
    return (sum(v is True for v in vals), sum(v is False for v in vals), sum(v is None for v in vals))


def _fmt_median(v: float | None) -> str:
    if v is None:
        return MISSING
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def _items_text(row: dict, book: Codebook) -> str:
    yes, _, missing = _n_items(row, book)
    text = f"{yes}/{len(book.main_items)}"
    return text + (f"（無回答{missing}）" if missing else "")


def _status(row: dict, book: Codebook) -> str:
    s = _value(row.get("jusou_status"))
    return MISSING if s is None else book.status_label(str(s))


def _labels(row: dict, variables: list[str], book: Codebook, value: bool | None) -> list[str]:
    return [book.label(v) for v in variables if _value(row.get(v)) is value]


def _cov_cells(y: _Year, row: dict) -> list[dict]:
    return [
        {
            "var": c["variable"],
            "label": c["label_ja"],
            "text": _format_cov(c["variable"], row.get(c["variable"]), c["binary"], c.get("unit_ja", "")),
        }
        for c in y.covariates
    ]


def _context(y: _Year, ds: Dataset, code: str) -> dict:
    book, fy = y.book, y.fiscal_year
    row = y.rows[code]
    hist = y.history[code]
    shown = hist[-MAX_YEARS_SHOWN:]
    years = [
        {
            "fy": int(r["fiscal_year"]),
            "era_year": wareki_fy(int(r["fiscal_year"])).removesuffix("年度"),
            "current": int(r["fiscal_year"]) == fy,
        }
        for r in shown
    ]

    def line(var: str, label: str, show: Callable[[dict], str]) -> dict:
        """One row of a year grid: `show(row)` for every year shown."""
        return {
            "var": var,
            "label": label,
            "cells": [
                {"fy": int(r["fiscal_year"]), "text": show(r), "current": int(r["fiscal_year"]) == fy} for r in shown
            ],
        }

    def grid(variables: list[str]) -> list[dict]:
        # v=v binds each variable; mypy cannot type a lambda with a default argument (python/mypy#15459)
        return [line(v, book.label(v), lambda r, v=v: _mark(r.get(v))) for v in variables]  # type: ignore[misc]

    yes, _, missing = _n_items(row, book)
    summary = {
        "status": _status(row, book),
        "n_items": len(book.main_items),
        "n_yes": yes,
        "n_missing": missing,
        "full": _mark(row.get("full_implementation")),
        "not_implemented": _labels(row, book.main_items, book, False),
        "items_missing": _labels(row, book.main_items, book, None),
        "measures": _labels(row, book.support_measures, book, True),
        "measures_missing": _labels(row, book.support_measures, book, None),
        "challenges": _labels(row, book.challenges, book, True),
        "challenges_missing": _labels(row, book.challenges, book, None),
    }
    status_row = line("jusou_status", book.label("jusou_status"), lambda r: _status(r, book))
    count_row = line("n_items", "主要項目の実施数", lambda r: _items_text(r, book))
    full_row = line("full_implementation", "主要項目を全て実施", lambda r: _mark(r.get("full_implementation")))

    pref: dict[str, Any] = {
        "covs": [],
        "status": f"実施{y.n_jusou}市町",
        "n_items": f"中央値{_fmt_median(y.median_items)}/{len(book.main_items)}",
        "full": f"{y.n_full}市町",
        "n": y.n_year,
    }
    for c in y.covariates:
        if c["binary"]:
            text = f"{c['n_yes']}/{c['n']}市町" if c["n"] else MISSING
        else:
            text = _format_cov(c["variable"], c["median"], False, c.get("unit_ja", ""))
        pref["covs"].append({"var": c["variable"], "label": c["label_ja"], "text": text})

    similar = []
    if code in y.z.index:
        for other, _dist in y.neighbours.nearest(code, N_SIMILAR):
            r = y.rows[other]
            similar.append(_peer(y, r, self_row=False))
    own = y.neighbours.position.get(code)
    own_values = [] if own is None else zip(y.z.columns, y.neighbours.values[own], strict=True)
    used = [c for c, v in own_values if not math.isnan(v)]
    used_labels = [book.term_label(f"log_{v}") if v in LOG_COVARIATES else book.label(v) for v in used]

    texts = []
    for var in publishable_text_columns(book):
        if var in row:
            value = _value(row.get(var))
            texts.append({"label": book.label(var), "text": str(value).strip() if value is not None else ""})

    return {
        "title": f"{row['name']}（{code}）市町別カルテ {wareki_fy(fy)}",
        "name": str(row["name"]),
        "code": code,
        "fy": fy,
        "wareki": wareki_fy(fy),
        "dataset_label": ds.label_ja,
        "synthetic": ds.synthetic,
        "banner": ds.banner_ja or SYNTHETIC_BANNER_JA,
        "years": years,
        "years_cut": len(hist) > len(shown),
        "n_years_total": len(hist),
        "status_row": status_row,
        "item_rows": grid(book.main_items),
        "count_row": count_row,
        "full_row": full_row,
        "measure_rows": grid(book.support_measures),
        "summary": summary,
        "covariates": y.covariates,
        "pref": pref,
        "n_year": y.n_year,
        "self_peer": _peer(y, row, self_row=True),
        "similar": similar,
        "similar_features": used_labels,
        "n_similar": N_SIMILAR,
        "texts": texts,
        "index_href": "../../index.html",
        "report_href": f"../../FY{fy}/report.html",
        "list_href": "../index.html",
        "survey_title": book.raw.get("survey", {}).get("title_ja", ""),
        "first_year": wareki_fy(y.years[0]),
    }


def _peer(y: _Year, row: dict, self_row: bool) -> dict:
    return {
        "code": str(row["code"]),
        "name": str(row["name"]),
        "href": f"{row['code']}.html",
        "self": self_row,
        "status": _status(row, y.book),
        "n_items": _items_text(row, y.book),
        "full": _mark(row.get("full_implementation")),
        "covs": _cov_cells(y, row),
    }


def _replace(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path` and rename it over `path`.

    Like htmlexport.write_text_atomic (readers never see half a page) but without one fsync per
    file: a year has as many pages as municipalities (1,741 nationally, ~9 ms each here), and a
    page lost in a crash is rebuilt by the next run.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- rendering ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR / "profile")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _checked(html: str, what: str) -> str:
    violations = find_offline_violations(html)
    if violations:  # pragma: no cover - guards future template edits
        raise ValueError(f"{what} is not self-contained: " + "; ".join(violations))
    return html


def render_profile(ds: Dataset, panel: pd.DataFrame, book: Codebook, code: str, fiscal_year: int) -> str:
    """HTML of one municipality's profile for one fiscal year (for a single page; see write_profiles)."""
    y = _prepare(panel, book, fiscal_year)
    code = _safe_code(code)
    if code not in y.rows:
        raise ProfileError(
            f"{fiscal_year}年度のパネルに市町村コード {code} はありません",
            f"no municipality {code} in the FY{fiscal_year} panel",
        )
    return _render(y, ds, code)


def _render(y: _Year, ds: Dataset, code: str, check: bool = True) -> str:
    html = _environment().get_template("profile.html.j2").render(_context(y, ds, code))
    return _checked(html, f"profile {code}") if check else html


def write_profiles(ds: Dataset, panel: pd.DataFrame, book: Codebook, fiscal_year: int, out_dir: Path) -> list[Path]:
    """Write ``out_dir/<code>.html`` for every municipality of `fiscal_year`; return the paths (sorted).

    `out_dir` is normally ``reports/<dataset>/profiles/FY<yyyy>/`` (the pages link to
    ``../../index.html``, ``../../FY<yyyy>/report.html`` and ``../index.html``). Profiles of
    municipalities no longer in that year (``<code>.html`` files not written now) are removed.
    Each file is written atomically and only when its bytes change.
    """
    y = _prepare(panel, book, fiscal_year)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for code in sorted(y.rows):
        path = out_dir / f"{_safe_code(code)}.html"
        html = _render(y, ds, code, check=not written)  # the template is checked once per year
        data = html.encode("utf-8")
        if not (path.is_file() and path.read_bytes() == data):
            _replace(path, data)
        written.append(path)
    keep = {p.name for p in written}
    for old in sorted(out_dir.iterdir()):
        if _STALE_RE.fullmatch(old.name) and old.name not in keep and old.is_file():
            old.unlink()
    return written


def profile_index_html(
    ds: Dataset,
    panel: pd.DataFrame,
    book: Codebook,
    years: list[int],
    href: Callable[[str, int], str] | None = None,
    back_href: str = "../index.html",
) -> str:
    """The 市町一覧 page: every municipality with a link to its profile of each fiscal year.

    `href(code, fiscal_year)` gives each link; the default is relative to
    ``reports/<dataset>/profiles/index.html`` (``FY2025/992011.html``). `back_href` links back to
    the report index. A municipality without a row in a year shows 「—」 there.
    """
    href = href or (lambda code, fy: f"FY{int(fy)}/{_safe_code(code)}.html")
    years = sorted(int(y) for y in years)
    sub = panel[panel["fiscal_year"].isin(years)].copy()
    sub["code"] = sub["code"].astype(str)
    by_key = {(r["code"], int(r["fiscal_year"])): r for r in sub.to_dict("records")}
    names: dict[str, str] = {}
    for r in sub.sort_values("fiscal_year").to_dict("records"):
        names[r["code"]] = str(r["name"])  # the latest name
    rows = []
    for code in sorted(names):
        cells = []
        for fy in years:
            r = by_key.get((code, fy))
            cells.append(
                None
                if r is None
                else {"href": href(code, fy), "status": _status(r, book), "n_items": _items_text(r, book)}
            )
        rows.append({"code": code, "name": names[code], "cells": cells})
    context = {
        "title": f"市町別カルテ一覧 — {ds.label_ja}",
        "dataset_label": ds.label_ja,
        "synthetic": ds.synthetic,
        "banner": ds.banner_ja or SYNTHETIC_BANNER_JA,
        "back_href": back_href,
        "years": [{"fy": fy, "wareki": wareki_fy(fy)} for fy in years],
        "rows": rows,
        "n_items": len(book.main_items),
    }
    return _checked(_environment().get_template("index.html.j2").render(context), "profile index")


def write_profile_index(ds: Dataset, panel: pd.DataFrame, book: Codebook, years: list[int], reports_dir: Path) -> Path:
    """Write the 市町一覧 page to ``reports_dir/profiles/index.html`` (atomically, and only when its
    bytes change, like the profiles: 7.7 MB at 10× national size) and return its path."""
    return write_text_if_changed(Path(reports_dir) / PROFILE_INDEX_HREF, profile_index_html(ds, panel, book, years))
