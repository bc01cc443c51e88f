"""The dataset's municipality master (municipalities.csv or .xlsx), validated row by row.

Columns: code and name (required), population, aging_rate, kaso, fiscal_strength (covariates;
an empty cell is missing, never filled in). Headers may be the English names or their Japanese
labels (市町村コード, 市町村名, 人口, 高齢化率, 過疎, 財政力指数). The file is read like a survey
file (CSV in UTF-8 with or without BOM, CP932 or UTF-16; xlsx; the same size limits), and every
problem is collected with its row and column before one `MasterError` is raised.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import NoReturn

import pandas as pd

from .. import codes
from ._cells import cell_text, col_letter, raw
from ._grid import read_sheets
from ._issues import IssueLog, SurveyError
from ._limits import DEFAULT_LIMITS, Limits

MASTER_COLUMNS = {
    "code": ("code", "市町村コード", "団体コード", "全国地方公共団体コード", "地方公共団体コード", "コード", "lg_code"),
    "name": ("name", "市町村名", "市区町村名", "団体名", "名称", "市町村", "municipality"),
    "population": ("population", "人口"),
    "aging_rate": ("aging_rate", "高齢化率", "高齢化率(%)"),
    "kaso": ("kaso", "過疎", "過疎地域", "過疎指定"),
    "fiscal_strength": ("fiscal_strength", "財政力指数"),
}
REQUIRED = ("code", "name")
# column -> (lowest, highest, integers only)
RANGES = {
    "population": (0, 50_000_000, True),
    "aging_rate": (0, 100, False),
    "kaso": (0, 1, True),
    "fiscal_strength": (0, 10, False),
}
_MISSING = {"", "-", "―", "－", "—", "NA", "N/A", "nan", "NaN"}


class MasterError(SurveyError):
    """A municipality master that cannot be used; `issues` lists every problem with its row."""


def _key(text) -> str:
    return "".join(unicodedata.normalize("NFKC", str(text)).split()).lower()


_HEADER_OF = {_key(alias): col for col, aliases in MASTER_COLUMNS.items() for alias in aliases}


def read_master(path: Path | str, limits: Limits | None = None) -> pd.DataFrame:
    """The dataset's municipality master: code (6-digit str), name, covariates; sorted by code.

    Raises MasterError (a SurveyError) naming the rows and columns of every problem.
    """
    path = Path(path)
    limits = limits or DEFAULT_LIMITS
    log = IssueLog(path, None, limits.max_issues_per_kind)
    sheets, _ = read_sheets(path, log, limits)
    sheet = next((s for s in sheets if s.visible and s.grid), None) or next((s for s in sheets if s.grid), None)
    if sheet is None:
        _fail(log, path)
    log.sheet = sheet.name
    grid = sheet.grid
    h = next(
        (r for r, row in enumerate(grid[:20]) if sum(_key(v) in _HEADER_OF for v in row if v is not None) >= 2), None
    )
    if h is None:
        log.add(
            "error",
            "見出し行（code と name の列）が見つかりません",
            "header row with the columns code and name not found",
        )
        _fail(log, path)
    cols: dict[str, int] = {}
    extra: dict[str, int] = {}
    for j, v in enumerate(grid[h]):
        col = _HEADER_OF.get(_key(v)) if v is not None else None
        if col is None:
            if cell_text(v):
                extra[raw(v)] = j
            continue
        if col in cols:
            log.add(
                "error",
                f"列『{col}』が2つあります（{col_letter(cols[col])}列と{col_letter(j)}列）",
                f"column {col!r} appears twice ({col_letter(cols[col])} and {col_letter(j)})",
                row=h + 1,
                column=raw(v),
                cell=f"{col_letter(j)}{h + 1}",
            )
            continue
        cols[col] = j
    for col in REQUIRED:
        if col not in cols:
            log.add(
                "error",
                f"必須の列『{col}』（{MASTER_COLUMNS[col][1]}）がありません",
                f"required column {col!r} missing",
                row=h + 1,
                column=col,
            )
    if log.n_errors:
        _fail(log, path)
    data: dict[str, list] = {col: [] for col in [*cols, *extra]}
    seen: dict[str, int] = {}
    for r in range(h + 1, len(grid)):
        row = grid[r]
        if not any(cell_text(v) for v in row):
            continue
        cell = lambda j, row=row: row[j] if j < len(row) else None  # noqa: E731
        excel_row = r + 1
        code = _code(log, cell(cols["code"]), excel_row, cols["code"])
        if code is not None:
            if code in seen:
                log.add(
                    "error",
                    f"コードが重複しています（{seen[code]}行目と同じ {code}）",
                    f"duplicate code {code} (also row {seen[code]})",
                    row=excel_row,
                    column="code",
                    value=code,
                    cell=f"{col_letter(cols['code'])}{excel_row}",
                )
            seen.setdefault(code, excel_row)
        name = raw(cell(cols["name"]))
        if not name:
            log.add(
                "error",
                "市町村名が空です",
                "empty name",
                row=excel_row,
                column="name",
                cell=f"{col_letter(cols['name'])}{excel_row}",
            )
        data["code"].append(code)
        data["name"].append(name)
        for col, j in cols.items():
            if col not in ("code", "name"):
                data[col].append(_number(log, col, cell(j), excel_row, j))
        for col, j in extra.items():
            v = cell(j)
            data[col].append(None if cell_text(v) == "" else v)
    if not seen and not log.n_errors:
        log.add("error", "市町村の行がありません", "the master lists no municipality")
    if log.n_errors:
        _fail(log, path)
    frame = pd.DataFrame({"code": data["code"], "name": data["name"]})
    for col in [c for c in cols if c not in ("code", "name")] + list(extra):
        frame[col] = _column(data[col], numeric=col in RANGES)
    return frame.sort_values("code").reset_index(drop=True)


def _fail(log: IssueLog, path: Path) -> NoReturn:
    issues = log.frame()
    errors = issues[issues["severity"] == "error"]
    ja, en = f"市町村マスタに問題が {len(errors)} 件あります", f"{len(errors)} problem(s) in the municipality master"
    if not errors.empty:
        first = errors.iloc[0]
        row = pd.notna(first["row"])
        ja += (
            f"。最初の問題: {f'{int(first.row)}行目 ' if row else ''}{f'列『{first.column}』 ' if first.column else ''}"
            f"{f'値『{first.value}』 ' if first.value else ''}{first.reason_ja}"
        )
        en += (
            f"; first: {f'row {int(first.row)} ' if row else ''}{f'column {first.column!r} ' if first.column else ''}"
            f"{f'value {first.value!r} ' if first.value else ''}{first.reason_en}"
        )
    raise MasterError(ja, en, issues, where=str(path))


def _code(log: IssueLog, value, excel_row: int, j: int) -> str | None:
    text = cell_text(value)
    cell = f"{col_letter(j)}{excel_row}"
    if not text:
        log.add("error", "市町村コードが空です", "empty code", row=excel_row, column="code", cell=cell)
        return None
    try:
        found = codes.candidates(value)
    except codes.CodeError as exc:
        log.add(
            "error",
            f"市町村コードが不正です: {exc.ja}",
            f"invalid code: {exc.en}",
            row=excel_row,
            column="code",
            value=raw(value),
            cell=cell,
        )
        return None
    if len(found) > 1 and not isinstance(value, str):
        # a number that lost its leading zero (1100 2 for 011002) or a 5-digit code: the national list decides
        from ._municipality import national

        known = [c for c in found if c in national()]
        if len(known) != 1:
            log.add(
                "error",
                f"市町村コードが曖昧です（{'/'.join(found)} のどちらか）。コードを6桁の文字列で書いてください",
                f"ambiguous code ({'/'.join(found)}); write the 6-digit code as text",
                row=excel_row,
                column="code",
                value=raw(value),
                cell=cell,
            )
            return None
        return known[0]
    return found[0]


def _number(log: IssueLog, col: str, value, excel_row: int, j: int):
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            value = int(value)
        else:
            return None
    if isinstance(value, (int, float)):
        number = value
    else:
        text = cell_text(value)
        if text in _MISSING:
            return None
        try:
            number = float(text) if any(ch in text for ch in ".eE") else int(text)
        except ValueError:
            log.add(
                "error",
                f"数値ではありません（{col}）",
                f"not a number ({col})",
                row=excel_row,
                column=col,
                value=raw(value),
                cell=f"{col_letter(j)}{excel_row}",
            )
            return None
    if number != number:
        return None
    low, high, integer = RANGES[col]
    if not low <= number <= high or (integer and float(number) != int(number)):
        kind_ja = "整数" if integer else "数値"
        log.add(
            "error",
            f"{col} の値が範囲外です（{low}〜{high} の{kind_ja}）",
            f"{col} out of range ({low}..{high})",
            row=excel_row,
            column=col,
            value=raw(value),
            cell=f"{col_letter(j)}{excel_row}",
        )
        return None
    return number


def _column(values: list, numeric: bool) -> pd.Series:
    """Covariates as numbers (missing stays missing); other columns as numbers when all are, else text."""
    series = pd.Series(values, dtype=object)
    converted = pd.to_numeric(series, errors="coerce")
    if numeric or converted[series.notna()].notna().all():
        return converted
    return series.map(lambda v: None if v is None else str(v))


__all__ = ["MASTER_COLUMNS", "RANGES", "REQUIRED", "MasterError", "read_master"]
