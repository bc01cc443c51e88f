"""Official public covariates: 総務省「全市町村の主要財政指標」 read in the layout it is published in.

The ministry publishes one workbook per fiscal year (決算): a title row naming the year in 和暦,
a header row, one row per municipality keyed by the 6-digit 全国地方公共団体コード, 「-」 where a
value is not shown, and a last row 「全国市町村平均」. The workbooks sit unmodified in
``data/external/soumu_shuyo_zaisei_shihyo/``; this module reads them as they are (header found by
its text, columns by their names, the year from the title and the file name), so next year's file
drops in. Anything it does not recognise is an error naming file, sheet, cell and value.

Public functions:

- :func:`read_financial_indicators` one workbook → :class:`FinancialIndicators` (tidy frame,
  fiscal year, national average, what was skipped)
- :func:`load_financial_indicators` every bundled workbook → one long frame (code × fiscal year)
- :func:`fiscal_strength` 財政力指数 per code for a survey year, from the latest workbook at or
  before it, with the vintage used (:class:`FiscalStrength`)
- :func:`data_dictionary` the columns in Japanese and English with their source

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import codes as codes_mod
from .errors import AnalysisError
from .wareki import parse_fy, wareki_fy

SOURCE_JA = "総務省「全市町村の主要財政指標」"
SOURCE_EN = "MIC (総務省), Key financial indicators of all municipalities (全市町村の主要財政指標)"
SOURCE_URL = "https://www.soumu.go.jp/iken/shihyo_ichiran.html"
FOLDER = "soumu_shuyo_zaisei_shihyo"  # under data/external/

# Published header text → English column name. Matched after NFKC and with spaces removed.
IDENTITY_COLUMNS = {"団体コード": "code", "都道府県名": "prefecture", "団体名": "name"}
INDICATOR_COLUMNS = {
    "財政力指数": "fiscal_strength",
    "経常収支比率": "current_balance_ratio",
    "実質公債費比率": "real_debt_service_ratio",
    "将来負担比率": "future_burden_ratio",
    "ラスパイレス指数": "laspeyres_index",
}
COLUMNS = ["code", "prefecture", "name", "fiscal_year", *INDICATOR_COLUMNS.values()]

# Cells meaning "no value shown" (after NFKC, which turns 「－」 U+FF0D into "-").
_DASHES = {"-", "‐", "‑", "–", "—", "―", "ー", "−", "─"}
_NATIONAL_AVERAGE = re.compile(r"全国.*平均")
_SUBTOTAL = re.compile(r"(計|平均)$")
_HEADER_SEARCH_ROWS = 20

_DICTIONARY = [
    # column, label_ja, label_en, unit, note_ja, note_en
    (
        "code",
        "団体コード",
        "Municipality code",
        "",
        "全国地方公共団体コード（6桁、検査数字付き）",
        "6-digit local government code with check digit",
    ),
    ("prefecture", "都道府県名", "Prefecture", "", "", ""),
    (
        "name",
        "団体名",
        "Municipality",
        "",
        "公表どおり（ヶ/ケ などの表記はコード表と異なることがある）",
        "as published (may spell ヶ/ケ differently from the code master)",
    ),
    (
        "fiscal_year",
        "年度（決算）",
        "Fiscal year (settlement)",
        "年度",
        "決算の年度。表題（和暦）とファイル名から読み取る",
        "fiscal year of the accounts, read from the title (和暦) and file name",
    ),
    (
        "fiscal_strength",
        "財政力指数",
        "Fiscal strength index",
        "",
        "基準財政収入額÷基準財政需要額の過去3年度平均。1を超えると普通交付税の不交付団体の水準",
        "standard fiscal revenue / standard fiscal need, 3-year average; above 1 no ordinary local allocation tax is due",
    ),
    (
        "current_balance_ratio",
        "経常収支比率",
        "Current balance ratio",
        "%",
        "経常経費充当一般財源÷経常一般財源等。高いほど財政の硬直化",
        "recurrent spending met by recurrent general revenue; higher = less fiscal room",
    ),
    (
        "real_debt_service_ratio",
        "実質公債費比率",
        "Real debt service ratio",
        "%",
        "3か年平均。負の値がある（公表表では▲）",
        "3-year average; can be negative (shown with ▲ in the workbook)",
    ),
    (
        "future_burden_ratio",
        "将来負担比率",
        "Future burden ratio",
        "%",
        "「－」（欠測）は充当可能財源等が将来負担額を上回っている団体（実質的な将来負担なし）。0 ではなく欠測として扱う",
        "「－」 (NaN) means resources available exceed the future burden (no net burden); kept as NaN, not 0",
    ),
    (
        "laspeyres_index",
        "ラスパイレス指数",
        "Laspeyres index",
        "",
        "一般行政職の給与水準（国家公務員＝100）",
        "salary level of general administrative staff (national civil service = 100)",
    ),
]


class OfficialDataError(AnalysisError):
    """An official workbook whose layout or content the reader does not recognise."""


@dataclass(frozen=True)
class FinancialIndicators:
    """One workbook read: the tidy frame plus what the reader found around it.

    Attributes
    ----------
    frame : DataFrame
        One row per municipality, columns :data:`COLUMNS` (code, prefecture, name: str;
        fiscal_year: int; indicators: float, NaN where the workbook shows 「-」 or nothing).
    fiscal_year : int
        Fiscal year of the accounts (決算), e.g. 2021 for 令和3年度.
    national_average : Series
        The 「全国市町村平均」 row (not in `frame`), indexed by indicator name; NaN for 「－」.
    dashes : dict
        Number of 「-」 cells per indicator among the municipalities (NaN in `frame`).
    blanks : dict
        Number of empty cells per indicator among the municipalities (NaN in `frame`).
    skipped : tuple
        (row, label) of rows left out that are not municipalities: the national average and any
        prefecture subtotal rows.
    source, sheet, title, header_row
        Where it came from.
    """

    frame: pd.DataFrame
    fiscal_year: int
    national_average: pd.Series
    dashes: dict
    blanks: dict
    skipped: tuple
    source: Path
    sheet: str
    title: str
    header_row: int

    @property
    def citation(self) -> str:
        """出典：総務省「全市町村の主要財政指標」（令和3年度）"""
        return f"出典：{SOURCE_JA}（{wareki_fy(self.fiscal_year)}）"

    def report(self) -> str:
        """What was read and left out, in Japanese and English (for logs and notebooks)."""
        skipped = "、".join(f"{r}行「{label}」" for r, label in self.skipped) or "なし"
        dashes = "、".join(f"{_LABEL_JA[k]} {v}" for k, v in self.dashes.items() if v) or "なし"
        return (
            f"{self.source.name}: {self.citation}、{len(self.frame)} 市区町村"
            f"（除外した行: {skipped}; 「-」の数: {dashes}）/ FY{self.fiscal_year}, "
            f"{len(self.frame)} municipalities; rows left out: {len(self.skipped)}"
        )


_LABEL_JA = {c: ja for c, ja, *_ in _DICTIONARY}


def data_dictionary() -> pd.DataFrame:
    """The columns of the tidy frame: Japanese and English label, unit, note, source."""
    frame = pd.DataFrame(_DICTIONARY, columns=["column", "label_ja", "label_en", "unit", "note_ja", "note_en"])
    frame["source"] = f"{SOURCE_JA} {SOURCE_URL}"
    return frame


# --- reading one workbook -----------------------------------------------------------------------


def _text(value) -> str:
    """NFKC text of a cell with all spaces removed ('' for None)."""
    if value is None:
        return ""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(value)))


def _cell_ref(row: int, col: int) -> str:
    from openpyxl.utils import get_column_letter

    return f"{get_column_letter(col)}{row}"


def _where(path: Path, sheet: str, row: int | None = None, col: int | None = None) -> str:
    where = f"{path.name} [シート/sheet『{sheet}』]"
    if row is not None and col is not None:
        where += f" セル/cell {_cell_ref(row, col)}（{row}行/row {row}, {col}列/column {col}）"
    elif row is not None:
        where += f" {row}行/row {row}"
    return where


def _find_header(rows: list[tuple], path: Path, sheet: str) -> tuple[int, dict[str, int]]:
    """(row number, English name → column number) of the header row, found by its text."""
    wanted = {**IDENTITY_COLUMNS, **INDICATOR_COLUMNS}
    best: tuple[int, dict[str, int]] | None = None
    for i, row in enumerate(rows[:_HEADER_SEARCH_ROWS], start=1):
        found: dict[str, int] = {}
        for j, value in enumerate(row, start=1):
            key = _text(value)
            if key in wanted:
                name = wanted[key]
                if name in found:
                    raise OfficialDataError(
                        f"見出し「{key}」が2回あります（{_cell_ref(i, found[name])} と {_cell_ref(i, j)}）",
                        f"header {key!r} appears twice ({_cell_ref(i, found[name])} and {_cell_ref(i, j)})",
                        where=_where(path, sheet, i, j),
                    )
                found[name] = j
        if "code" in found and (best is None or len(found) > len(best[1])):
            best = (i, found)
    if best is None:
        raise OfficialDataError(
            f"見出し行（「団体コード」のある行）が先頭{_HEADER_SEARCH_ROWS}行に見つかりません。公表様式が変わった可能性があります",
            f"header row (the row with 団体コード) not found in the first {_HEADER_SEARCH_ROWS} rows; "
            "the published layout may have changed",
            where=_where(path, sheet),
        )
    header_row, found = best
    missing = [ja for ja, en in wanted.items() if en not in found]
    if missing:
        present = " | ".join(str(v).strip() for v in rows[header_row - 1] if v is not None)
        raise OfficialDataError(
            f"見出し行にない列があります: {'、'.join(missing)}（見出し行の内容: {present}）。公表様式が変わった可能性があります",
            f"header row lacks column(s): {', '.join(missing)} (header row reads: {present}); "
            "the published layout may have changed",
            where=_where(path, sheet, header_row),
        )
    return header_row, found


def _fiscal_year(title_rows: list[tuple], path: Path, sheet: str) -> tuple[int, str]:
    """Fiscal year from the title rows (和暦 or 西暦) and the file name; they must agree."""
    title, from_title = "", None
    for row in title_rows:
        for value in row:
            if value is None:
                continue
            year = parse_fy(_text(value))
            if year is not None:
                title, from_title = str(value).strip(), year
                break
        if from_title is not None:
            break
    from_name = parse_fy(path.stem)
    if from_title is not None and from_name is not None and from_title != from_name:
        raise OfficialDataError(
            f"表題の年度（{wareki_fy(from_title)}、FY{from_title}）とファイル名の年度（FY{from_name}）が一致しません",
            f"fiscal year in the title (FY{from_title}) differs from the one in the file name (FY{from_name})",
            where=_where(path, sheet),
        )
    year = from_title if from_title is not None else from_name
    if year is None:
        raise OfficialDataError(
            "年度が分かりません。表題に年度（例: 令和3年度）がなく、ファイル名も年度を表していません（例: R4.xlsx）",
            "fiscal year not found: the title names none and the file name is not a year (e.g. R4.xlsx)",
            where=_where(path, sheet),
        )
    return year, title


def _code(value, path: Path, sheet: str, row: int, col: int) -> str:
    """A 6-digit code from a code cell (a number lost its leading zeros in Excel: pad it)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(int(value)).zfill(6) if float(value).is_integer() else str(value)
    else:
        text = _text(value)
    if not codes_mod.is_valid(text):
        why = (
            ("検査数字が誤っています", "wrong check digit")
            if len(text) == 6 and text.isdigit()
            else ("6桁の団体コードではありません", "not a 6-digit municipality code")
        )
        raise OfficialDataError(
            f"{why[0]}: 値 {value!r}", f"{why[1]}: value {value!r}", where=_where(path, sheet, row, col)
        )
    return text


def _number(value, path: Path, sheet: str, row: int, col: int, header: str) -> tuple[float, str]:
    """(value, kind) of an indicator cell; kind is 'value', 'dash' or 'blank'. 「-」 is NaN, never 0."""
    if value is None:
        return np.nan, "blank"
    if isinstance(value, bool):
        pass
    elif isinstance(value, (int, float)):
        return float(value), "value"
    text = _text(value)
    if text == "":
        return np.nan, "blank"
    if text in _DASHES:
        return np.nan, "dash"
    sign = -1.0 if text[0] in "▲△" else 1.0  # Japanese accounts write negatives as ▲1.2
    body = text[1:] if sign < 0 else text
    try:
        return sign * float(body.replace(",", "")), "value"
    except ValueError:
        raise OfficialDataError(
            f"列「{header}」の値が数値でも「-」でもありません: {value!r}",
            f"column {header!r}: value {value!r} is neither a number nor 「-」",
            where=_where(path, sheet, row, col),
        ) from None


def read_financial_indicators(path: Path | str) -> FinancialIndicators:
    """Read one 「全市町村の主要財政指標」 workbook as published.

    The sheet is the one whose first rows hold the header 「団体コード … 財政力指数 …」; columns
    are found by their header text; every row below is a municipality (valid 6-digit code), the
    national average (「全国市町村平均」, kept aside), a subtotal (label ending in 計/平均, kept
    aside) or empty (ignored). Anything else raises :class:`OfficialDataError`.
    """
    from openpyxl import load_workbook

    path = Path(path)
    if not path.is_file():
        raise OfficialDataError("ファイルがありません", "file not found", where=str(path))
    try:
        wb = load_workbook(path, data_only=True)
    except Exception as exc:  # not an xlsx, or damaged
        raise OfficialDataError(
            f"Excel ファイル（.xlsx）として開けません（{type(exc).__name__}）",
            f"cannot open as an .xlsx workbook ({type(exc).__name__}: {exc})",
            where=str(path),
        ) from exc
    errors: list[OfficialDataError] = []
    for ws in wb.worksheets:
        rows = [tuple(c.value for c in r) for r in ws.iter_rows()]
        try:
            header_row, columns = _find_header(rows, path, ws.title)
        except OfficialDataError as exc:
            errors.append(exc)
            continue
        return _read_sheet(rows, header_row, columns, path, ws.title)
    if len(errors) == 1:
        raise errors[0]
    raise OfficialDataError(
        "どのシートにも見出し行（「団体コード」のある行）がありません",
        "no sheet has the header row (the row with 団体コード)",
        where=f"{path.name} [{', '.join(ws.title for ws in wb.worksheets)}]",
    )


def _read_sheet(
    rows: list[tuple], header_row: int, columns: dict[str, int], path: Path, sheet: str
) -> FinancialIndicators:
    year, title = _fiscal_year(rows[: header_row - 1], path, sheet)
    records: list[dict] = []
    seen: dict[str, int] = {}
    skipped: list[tuple[int, str]] = []
    national: pd.Series | None = None
    dashes = {k: 0 for k in INDICATOR_COLUMNS.values()}
    blanks = {k: 0 for k in INDICATOR_COLUMNS.values()}
    labels = {en: ja for ja, en in {**IDENTITY_COLUMNS, **INDICATOR_COLUMNS}.items()}
    code_col = columns["code"]
    for r, row in enumerate(rows[header_row:], start=header_row + 1):

        def cell(name: str, row=row):
            j = columns[name] - 1
            return row[j] if j < len(row) else None

        if all(v is None or _text(v) == "" for v in row):
            continue
        head = cell("code")
        head_text = _text(head)
        is_code = (isinstance(head, (int, float)) and not isinstance(head, bool)) or head_text.isdigit()
        if not is_code:
            label = head_text or _text(cell("name")) or _text(cell("prefecture"))
            values = {k: _number(cell(k), path, sheet, r, columns[k], labels[k])[0] for k in INDICATOR_COLUMNS.values()}
            if _NATIONAL_AVERAGE.search(label):
                if national is not None:
                    raise OfficialDataError(
                        f"全国平均の行が2つあります: {label!r}",
                        f"two national-average rows: {label!r}",
                        where=_where(path, sheet, r, code_col),
                    )
                national = pd.Series(values, name=label, dtype=float)
                skipped.append((r, str(head).strip() if head is not None else label))
                continue
            if _SUBTOTAL.search(label):
                skipped.append((r, label))
                continue
            raise OfficialDataError(
                f"団体コードの列に、コードでも全国平均・小計でもない値があります: {head!r}",
                f"the code column holds a value that is neither a code nor an average/subtotal label: {head!r}",
                where=_where(path, sheet, r, code_col),
            )
        code = _code(head, path, sheet, r, code_col)
        if code in seen:
            raise OfficialDataError(
                f"団体コード {code} が2回あります（{seen[code]}行と{r}行）",
                f"code {code} appears twice (rows {seen[code]} and {r})",
                where=_where(path, sheet, r, code_col),
            )
        seen[code] = r
        record = {"code": code, "fiscal_year": year}
        for name in ("prefecture", "name"):
            text = unicodedata.normalize("NFKC", str(cell(name) or "")).strip()
            if not text:
                raise OfficialDataError(
                    f"{code} の「{labels[name]}」が空です",
                    f"{code}: {name} is empty",
                    where=_where(path, sheet, r, columns[name]),
                )
            record[name] = text
        for name in INDICATOR_COLUMNS.values():
            value, kind = _number(cell(name), path, sheet, r, columns[name], labels[name])
            record[name] = value
            dashes[name] += kind == "dash"
            blanks[name] += kind == "blank"
        records.append(record)
    if not records:
        raise OfficialDataError(
            "見出し行の下に市区町村の行がありません",
            "no municipality rows below the header",
            where=_where(path, sheet, header_row),
        )
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    frame["fiscal_year"] = frame["fiscal_year"].astype("int64")
    frame[list(INDICATOR_COLUMNS.values())] = frame[list(INDICATOR_COLUMNS.values())].astype("float64")
    if national is None:
        national = pd.Series({k: np.nan for k in INDICATOR_COLUMNS.values()}, dtype=float, name=None)
    return FinancialIndicators(
        frame=frame,
        fiscal_year=year,
        national_average=national,
        dashes=dashes,
        blanks=blanks,
        skipped=tuple(skipped),
        source=path,
        sheet=sheet,
        title=title,
        header_row=header_row,
    )


# --- the bundled workbooks ----------------------------------------------------------------------


def default_folder() -> Path:
    from .paths import data_dir

    return data_dir() / "external" / FOLDER


def workbook_paths(folder: Path | str | None = None) -> list[Path]:
    """The workbooks in the folder (default data/external/soumu_shuyo_zaisei_shihyo), by name."""
    folder = Path(folder) if folder is not None else default_folder()
    paths = sorted(p for p in folder.glob("*.xlsx") if not p.name.startswith(("~$", ".")))
    if not paths:
        raise OfficialDataError(
            "「全市町村の主要財政指標」のファイル（.xlsx）がありません",
            "no 全市町村の主要財政指標 workbooks (.xlsx) found",
            where=str(folder),
        )
    return paths


@lru_cache(maxsize=8)
def _load(stamp: tuple) -> tuple[pd.DataFrame, tuple]:
    tables = [read_financial_indicators(p) for p, *_ in stamp]
    by_year: dict[int, Path] = {}
    for t in tables:
        if t.fiscal_year in by_year:
            raise OfficialDataError(
                f"同じ年度（FY{t.fiscal_year}）のファイルが2つあります: {by_year[t.fiscal_year].name} と {t.source.name}",
                f"two workbooks for FY{t.fiscal_year}: {by_year[t.fiscal_year].name} and {t.source.name}",
                where=str(t.source.parent),
            )
        by_year[t.fiscal_year] = t.source
    frame = pd.concat([t.frame for t in tables], ignore_index=True)
    frame = frame.sort_values(["fiscal_year", "code"], kind="stable").reset_index(drop=True)
    return frame, tuple(sorted(tables, key=lambda t: t.fiscal_year))


def _stamp(folder) -> tuple:
    return tuple((p, p.stat().st_mtime_ns, p.stat().st_size) for p in workbook_paths(folder))


def load_financial_indicators(folder: Path | str | None = None) -> pd.DataFrame:
    """All bundled workbooks as one long frame (code × fiscal_year), columns :data:`COLUMNS`.

    Cached per folder content (file names, sizes, modification times); returns a copy.
    """
    return _load(_stamp(folder))[0].copy()


def load_tables(folder: Path | str | None = None) -> tuple[FinancialIndicators, ...]:
    """Every bundled workbook read (with national averages and skipped rows), oldest first."""
    return _load(_stamp(folder))[1]


def available_years(folder: Path | str | None = None) -> list[int]:
    """Fiscal years of the bundled workbooks, e.g. [2018, 2019, 2020, 2021]."""
    return [t.fiscal_year for t in load_tables(folder)]


# --- 財政力指数 for a survey year ----------------------------------------------------------------


@dataclass(frozen=True)
class FiscalStrength:
    """財政力指数 per municipality for one survey year, and the vintage (決算年度) of each value.

    `frame` is indexed by code (in the order asked) with columns ``fiscal_strength`` (float64,
    NaN when unavailable) and ``vintage_fy`` (Int64, <NA> when unavailable). `note_ja` / `note_en`
    say which vintage was used and why anything is missing, for the report.
    """

    fiscal_year: int
    frame: pd.DataFrame
    available: tuple
    missing: tuple = field(default=())

    @property
    def vintages(self) -> tuple[int, ...]:
        """The distinct vintages used, oldest first."""
        return tuple(sorted(int(v) for v in self.frame["vintage_fy"].dropna().unique()))

    def as_dict(self) -> dict[str, tuple[float | None, int | None]]:
        """code → (value, vintage FY); (None, None) when unavailable."""
        return {
            c: (None, None) if pd.isna(v) else (float(v), int(fy))
            for c, v, fy in zip(self.frame.index, self.frame["fiscal_strength"], self.frame["vintage_fy"], strict=False)
        }

    @property
    def note_ja(self) -> str:
        parts = []
        if self.vintages:
            used = "、".join(f"{wareki_fy(v)}（FY{v}）決算" for v in self.vintages)
            parts.append(
                f"財政力指数は{SOURCE_JA}の{used}の値です"
                f"（{self.fiscal_year}年度の調査に対し、その年度以前で公表済みの最新年度）。"
            )
        if self.missing:
            reason = (
                f"公表データが FY{self.available[0]}〜FY{self.available[-1]} だけで FY{self.fiscal_year} 以前の値がないため"
                if self.available and self.fiscal_year < self.available[0]
                else "公表データにない団体コードのため"
            )
            parts.append(
                f"{len(self.missing)} 団体は{reason}、財政力指数を欠測としました（推定していません）: "
                f"{'、'.join(self.missing[:10])}{' ほか' if len(self.missing) > 10 else ''}。"
            )
        return "".join(parts)

    @property
    def note_en(self) -> str:
        parts = []
        if self.vintages:
            used = ", ".join(f"FY{v}" for v in self.vintages)
            parts.append(
                f"Fiscal strength index from {SOURCE_EN}, accounts of {used} (the latest published "
                f"year at or before the survey year FY{self.fiscal_year})."
            )
        if self.missing:
            reason = (
                f"the published years (FY{self.available[0]}–FY{self.available[-1]}) all follow FY{self.fiscal_year}"
                if self.available and self.fiscal_year < self.available[0]
                else "the code is not in the published workbooks"
            )
            parts.append(
                f"{len(self.missing)} municipalities have no value because {reason}; left missing, not imputed."
            )
        return " ".join(parts)


def _normalize(value, known: frozenset[str]) -> str:
    """6-digit code; an ambiguous 5-digit spelling is resolved to the reading the workbooks know."""
    try:
        return codes_mod.normalize(value, known)
    except codes_mod.CodeError:
        return codes_mod.normalize(value)  # a code in no workbook: missing, said in the note


def fiscal_strength(codes: Iterable, fiscal_year: int, *, folder: Path | str | None = None) -> FiscalStrength:
    """財政力指数 of each code for survey year `fiscal_year`: the latest workbook at or before it.

    Codes may be given in any spelling :func:`analysis.codes.normalize` accepts. For each code the
    latest fiscal year ≤ `fiscal_year` whose workbook has a value is used, and recorded as
    ``vintage_fy``. A year before the earliest workbook, or a code in no workbook, gives NaN:
    nothing is carried backwards or guessed. Note that a workbook for year t is published in the
    autumn of t+1; "at or before" follows the survey year, not the publication date.
    """
    if isinstance(fiscal_year, bool) or not isinstance(fiscal_year, (int, np.integer)):
        raise TypeError(f"fiscal_year must be an int, not {type(fiscal_year).__name__}")
    fiscal_year = int(fiscal_year)
    data = load_financial_indicators(folder)
    known = frozenset(data["code"])
    wanted = [_normalize(c, known) for c in codes]
    years = tuple(sorted(data["fiscal_year"].unique().tolist()))
    usable = data[(data["fiscal_year"] <= fiscal_year) & data["fiscal_strength"].notna()]
    latest = usable.sort_values("fiscal_year").drop_duplicates("code", keep="last").set_index("code")
    frame = pd.DataFrame(index=pd.Index(wanted, name="code", dtype=object))
    frame["fiscal_strength"] = latest["fiscal_strength"].reindex(wanted).to_numpy(dtype="float64")
    frame["vintage_fy"] = pd.array(latest["fiscal_year"].reindex(wanted), dtype="Int64")
    missing = tuple(c for c, v in zip(wanted, frame["fiscal_strength"], strict=False) if np.isnan(v))
    return FiscalStrength(fiscal_year=fiscal_year, frame=frame, available=years, missing=missing)


__all__ = [
    "COLUMNS",
    "SOURCE_EN",
    "SOURCE_JA",
    "SOURCE_URL",
    "FinancialIndicators",
    "FiscalStrength",
    "OfficialDataError",
    "available_years",
    "data_dictionary",
    "fiscal_strength",
    "load_financial_indicators",
    "load_tables",
    "read_financial_indicators",
    "workbook_paths",
]
