"""Reading survey files into a tidy frame, with every problem reported instead of guessed.

`read_survey` takes one survey file (xlsx or csv) of one fiscal year and returns a
`SurveyResult`: the tidy table (one row per municipality, codebook variable names, 6-digit code
strings, sorted by code) and an issues table (file, sheet, row, column, value, severity, reason in
Japanese and English). Problems are collected over the whole file, not stopped at the first one.
A file that cannot be read at all raises `SurveyError` with the same kind of message.
Input files are only ever opened for reading.
"""
from __future__ import annotations

import csv
import io as _io
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import codes
from .codebook import Codebook, answer_key, header_key
from .wareki import parse_fy

ISSUE_COLUMNS = ["file", "sheet", "row", "column", "value", "severity", "reason_ja", "reason_en"]
TOTAL_MARKERS = ("計", "合計", "県計", "総計", "小計", "市計", "町計", "市町計", "全体")
TEXT_ENCODINGS = ("utf-8-sig", "cp932")


class SurveyError(Exception):
    """A survey file that cannot be used; `issues` holds the reasons (ja / en)."""

    def __init__(self, message: str, issues: pd.DataFrame | None = None):
        super().__init__(message)
        self.issues = issues if issues is not None else pd.DataFrame(columns=ISSUE_COLUMNS)


@dataclass
class SurveyResult:
    tidy: pd.DataFrame
    issues: pd.DataFrame
    fiscal_year: int | None
    path: Path
    sheet: str | None = None
    info: dict = field(default_factory=dict)

    @property
    def errors(self) -> pd.DataFrame:
        return self.issues[self.issues["severity"] == "error"]

    @property
    def ok(self) -> bool:
        return self.errors.empty


class _Log:
    def __init__(self, path: Path, sheet: str | None):
        self.path, self.sheet, self.rows = path, sheet, []

    def add(self, severity, reason_ja, reason_en, row=None, column=None, value=None):
        self.rows.append({
            "file": self.path.name, "sheet": self.sheet or "", "row": row, "column": column or "",
            "value": "" if value is None else str(value), "severity": severity,
            "reason_ja": reason_ja, "reason_en": reason_en,
        })

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=ISSUE_COLUMNS)
        frame["row"] = frame["row"].astype("Int64")
        return frame


# --- raw grids -------------------------------------------------------------------------------

def _read_grid(path: Path) -> tuple[list[list[object]], str | None]:
    """The file's cells as a list of rows (merged cells filled with their top-left value)."""
    if not path.exists():
        raise SurveyError(f"{path}: ファイルがありません / file not found")
    suffix = path.suffix.lower()
    data = path.read_bytes()
    if not data:
        raise SurveyError(f"{path}: ファイルが空です / the file is empty")
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path, data)
    if suffix in (".csv", ".txt"):
        return _read_csv(path, data), None
    raise SurveyError(
        f"{path}: 対応していないファイル形式です（{suffix or '拡張子なし'}）。Excel (.xlsx) か CSV で保存してください / "
        f"unsupported file type {suffix!r}; save as .xlsx or .csv"
    )


def _read_xlsx(path: Path, data: bytes) -> tuple[list[list[object]], str]:
    from openpyxl import load_workbook

    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise SurveyError(
            f"{path}: パスワード付きまたは旧形式(.xls)の Excel ファイルは読めません。パスワードを外し .xlsx で保存し直してください / "
            "password-protected or legacy .xls workbook; remove the password and save as .xlsx"
        )
    try:
        wb = load_workbook(_io.BytesIO(data), data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        raise SurveyError(f"{path}: Excel ファイルとして開けません（壊れている可能性）/ cannot open as xlsx: {exc}") from None
    ws = _pick_sheet(wb)
    grid = [list(r) for r in ws.iter_rows(values_only=True)]
    for rng in ws.merged_cells.ranges:
        top = ws.cell(row=rng.min_row, column=rng.min_col).value
        for r in range(rng.min_row, rng.max_row + 1):
            for c in range(rng.min_col, rng.max_col + 1):
                if r - 1 < len(grid) and c - 1 < len(grid[r - 1]):
                    grid[r - 1][c - 1] = top
    return grid, ws.title


def _pick_sheet(wb):
    """The first visible sheet that has data (survey exports often keep a cover sheet)."""
    for ws in wb.worksheets:
        if ws.sheet_state == "visible" and ws.max_row > 1:
            return ws
    return wb.worksheets[0]


def _read_csv(path: Path, data: bytes) -> list[list[object]]:
    for enc in TEXT_ENCODINGS:
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SurveyError(f"{path}: 文字コードを判別できません（UTF-8 か Shift_JIS で保存してください）/ "
                          "cannot decode as UTF-8 or CP932")
    if "\x00" in text:
        raise SurveyError(f"{path}: テキストファイルではありません / not a text file")
    return [list(r) for r in csv.reader(_io.StringIO(text, newline=""))]


# --- header detection ------------------------------------------------------------------------

def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFKC", str(value)).strip()


def _match_column(texts: list[str], book: Codebook) -> str | None:
    """Variable whose header (or alias) equals one of the candidate texts of a column."""
    keys = {header_key(t) for t in texts if t}
    for var, spec in book.id_columns.items():
        if keys & {header_key(h) for h in (spec["header_ja"], *spec.get("aliases", ()))}:
            return var
    for q in book.questions:
        if keys & set(q.header_keys):
            return q.variable
    return None


def _find_header(grid: list[list[object]], book: Codebook, max_scan: int = 30):
    """Index of the last header row and the column -> variable map.

    The header row is the first row with a cell naming the code or name column. Each column's
    candidate texts are its cells in up to three header rows and their concatenations, so
    multi-row headers ("重層的支援体制整備事業" over "実施状況") match as well as one-row ones.
    """
    id_keys = {header_key(h) for spec in book.id_columns.values()
               for h in (spec["header_ja"], *spec.get("aliases", ()))}
    for r, row in enumerate(grid[:max_scan]):
        if not any(header_key(_cell_text(v)) in id_keys for v in row):
            continue
        last = r
        # following rows belong to the header while they hold no code-like value in the id column
        width = max(len(x) for x in grid[max(0, r - 2): r + 3])
        best: dict[int, str] = {}
        for end in range(r, min(r + 3, len(grid))):
            rows = [grid[k] for k in range(max(0, r - 2), end + 1)]
            mapping = {}
            for j in range(width):
                cells = [_cell_text(rw[j]) if j < len(rw) else "" for rw in rows]
                cand = set(cells)
                for a in range(len(cells)):
                    for b in range(a + 1, len(cells) + 1):
                        cand.add("".join(cells[a:b]))
                var = _match_column(sorted(cand), book)
                if var and var not in mapping.values():
                    mapping[j] = var
            if len(mapping) > len(best):
                best, last = mapping, end
        return last, best
    return None, {}


# --- answers ---------------------------------------------------------------------------------

_MISSING = object()


def _map_answer(value, answers: str, book: Codebook):
    """(mapped value, ok). Missing spellings map to None; unknown spellings are not ok."""
    if answers == "text":
        text = _cell_text(value)
        return (text or None), True
    if value is None or (isinstance(value, float) and value != value):
        return None, True
    if isinstance(value, bool):
        key = "TRUE" if value else "FALSE"
    else:
        key = answer_key(_cell_text(value))
    table = book.answer_maps[answers]
    if key in table:
        return table[key], True
    return _MISSING, False


# --- the reader ------------------------------------------------------------------------------

def read_master(path: Path) -> pd.DataFrame:
    """The dataset's municipality master: code (6-digit str), name, covariates."""
    frame = pd.read_csv(path, dtype={"code": str}, encoding="utf-8-sig")
    frame["code"] = frame["code"].map(lambda c: codes.normalize(c))
    return frame.sort_values("code").reset_index(drop=True)


def read_survey(path: Path | str, book: Codebook, master: pd.DataFrame,
                fiscal_year: int | None = None, prefecture_code: str | None = None) -> SurveyResult:
    """Read one survey file; see the module docstring. `master` lists the expected municipalities."""
    path = Path(path)
    grid, sheet = _read_grid(path)
    log = _Log(path, sheet)
    header_end, colmap = _find_header(grid, book)
    if header_end is None:
        raise SurveyError(
            f"{path}: 見出し行（『{book.id_columns['code']['header_ja']}』または『{book.id_columns['name']['header_ja']}』の列）"
            "が見つかりません。調査票の集計表か確認してください / header row with the code or name column not found"
        )
    # fiscal year from the title rows above the header, if any
    title_fy = None
    for row in grid[: header_end + 1]:
        for v in row:
            fy = parse_fy(_cell_text(v)) if v is not None and "年度" in _cell_text(v) else None
            if fy:
                title_fy = title_fy or fy
    if fiscal_year is not None and title_fy is not None and title_fy != fiscal_year:
        log.add("error", f"ファイルの表題は{title_fy}年度ですが、{fiscal_year}年度として読み込もうとしています",
                f"the file's title says FY{title_fy} but FY{fiscal_year} was requested", row=None, value=title_fy)
    fy = fiscal_year or title_fy

    header_cells = grid[header_end]
    found = set(colmap.values())
    for j, v in enumerate(header_cells):
        if j not in colmap and _cell_text(v):
            log.add("info", "調査票にない列のため無視しました", "unknown column ignored",
                    row=header_end + 1, column=_cell_text(v), value=_cell_text(v))
    for q in book.questions:
        if q.required and q.variable not in found:
            log.add("error", f"必須の設問『{q.header_ja}』の列がありません", f"required question column missing: {q.variable}",
                    column=q.header_ja)
    if "code" not in found and "name" not in found:
        raise SurveyError(f"{path}: 市町村コード・市町村名の列がありません / no code or name column", log.frame())

    by_code = dict(zip(master["code"], master["name"]))
    known = frozenset(by_code)
    by_name = {codes.normalize_name(n): c for c, n in by_code.items()}
    col_of = {v: j for j, v in colmap.items()}
    col_label = {j: _cell_text(header_cells[j]) if j < len(header_cells) else str(j) for j in colmap}
    records, seen = [], {}
    for r in range(header_end + 1, len(grid)):
        row = grid[r]
        excel_row = r + 1
        if all(_cell_text(v) == "" for v in row):
            continue
        raw_code = row[col_of["code"]] if "code" in col_of and col_of["code"] < len(row) else None
        raw_name = row[col_of["name"]] if "name" in col_of and col_of["name"] < len(row) else None
        code_text, name_text = _cell_text(raw_code), _cell_text(raw_name)
        if any(code_text.replace(" ", "") == m or name_text.replace(" ", "") == m for m in TOTAL_MARKERS):
            log.add("info", "合計行のため読み飛ばしました", "total row skipped", row=excel_row,
                    column=col_label.get(col_of.get("name", col_of.get("code"))), value=name_text or code_text)
            continue
        code = None
        if code_text:
            try:
                code = codes.normalize(raw_code, known=known)
            except codes.CodeError as exc:
                prefix = codes.candidates(raw_code)[0][:2] if _safe_candidates(raw_code) else None
                if prefecture_code and prefix and prefix != prefecture_code and codes.is_valid(codes.candidates(raw_code)[0]):
                    log.add("error", "他の都道府県の市町村コードです", "municipality of another prefecture",
                            row=excel_row, column=col_label[col_of["code"]], value=code_text)
                else:
                    log.add("error", f"市町村コードが不正です: {exc}", f"invalid municipality code: {exc}",
                            row=excel_row, column=col_label[col_of["code"]], value=code_text)
                continue
        elif name_text:
            code = by_name.get(codes.normalize_name(name_text))
            if code is None:
                log.add("error", "市町村名がコード表にありません", "municipality name not in the master list",
                        row=excel_row, column=col_label[col_of["name"]], value=name_text)
                continue
        else:
            log.add("error", "市町村コードも市町村名も空です", "row without code or name", row=excel_row)
            continue
        if code in seen:
            log.add("error", f"同じ市町村が重複しています（{seen[code]}行目と重複）", f"duplicate municipality (also row {seen[code]})",
                    row=excel_row, column=col_label.get(col_of.get("code", -1), ""), value=code)
            continue
        seen[code] = excel_row
        rec = {"code": code, "name": by_code[code]}
        for q in book.questions:
            if q.variable not in col_of:
                rec[q.variable] = None
                continue
            j = col_of[q.variable]
            value = row[j] if j < len(row) else None
            mapped, ok = _map_answer(value, q.answers, book)
            if not ok:
                log.add("error", f"回答『{_cell_text(value)}』を解釈できません（コードブックの回答表にありません）",
                        f"unmappable answer for {q.variable}", row=excel_row, column=col_label[j], value=_cell_text(value))
                mapped = None
            rec[q.variable] = mapped
        records.append(rec)
    missing = sorted(known - set(seen))
    for c in missing:
        log.add("warning", f"回答がありません（未回答の市町: {by_code[c]}）", f"no answer from municipality {c}", value=c)
    if not records:
        raise SurveyError(f"{path}: データ行がありません / no data rows", log.frame())
    tidy = _tidy_frame(records, book, fy)
    return SurveyResult(tidy=tidy, issues=log.frame(), fiscal_year=fy, path=path, sheet=sheet,
                        info={"n_rows": len(records), "n_expected": len(known), "missing": missing})


def _safe_candidates(value) -> bool:
    try:
        codes.candidates(value)
        return True
    except codes.CodeError:
        return False


def tidy_columns(book: Codebook) -> list[str]:
    return ["fiscal_year", "code", "name", *book.variables]


def _tidy_frame(records: list[dict], book: Codebook, fiscal_year: int | None) -> pd.DataFrame:
    frame = pd.DataFrame(records)
    frame.insert(0, "fiscal_year", fiscal_year)
    for q in book.questions:
        if q.answers == "yes_no":
            frame[q.variable] = frame[q.variable].astype("boolean")
        else:
            frame[q.variable] = frame[q.variable].astype("string")
    frame["fiscal_year"] = frame["fiscal_year"].astype("Int64")
    frame["code"] = frame["code"].astype("string")
    frame["name"] = frame["name"].astype("string")
    return frame[tidy_columns(book)].sort_values("code").reset_index(drop=True)
