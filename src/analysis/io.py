"""Reading survey files into a tidy frame, with every problem reported instead of guessed.

`read_survey` takes one survey file (xlsx or csv) of one fiscal year and returns a
`SurveyResult`: the tidy table (one row per municipality, codebook variable names, 6-digit code
strings, sorted by code) and an issues table (file, sheet, row, column, value, severity, reason in
Japanese and English, plus the cell reference). Problems are collected over the whole file, not
stopped at the first one. A file that cannot be read at all raises `SurveyError` with the same
kind of message and an issues table. Input files are only ever opened for reading.

Accepted shapes (all give the same tidy table as the clean sample file):

* .xlsx/.xlsm with title rows above the table, a cover sheet (or several sheets: the one whose
  header matches the codebook best is read), 1–3 header rows, merged cells (a group header over
  the question, or the question text split over two rows), extra columns (reported, ignored);
* .csv/.txt/.tsv in UTF-8 (with or without BOM), CP932 (Shift_JIS) or UTF-16, comma or tab
  separated, CRLF or LF;
* answers in any spelling of the codebook's answer maps (○ × 有 無 1 0 TRUE …, Excel booleans and
  numbers included), 「―」「-」「－」 and blank as missing, full-width digits;
* municipality codes with or without the check digit, as numbers that lost a leading zero, or
  the municipality name in place of the code (matched against the master after NFKC);
* blank rows, total rows (計・合計・県計 …, reported), repeated header rows, foot notes.
"""
from __future__ import annotations

import csv
import io as _io
import re
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from . import codes
from .codebook import Codebook, answer_key, header_key
from .wareki import parse_fy

ISSUE_COLUMNS = ["file", "sheet", "row", "column", "value", "severity", "reason_ja", "reason_en", "cell"]
TOTAL_MARKERS = ("計", "合計", "県計", "総計", "小計", "市計", "町計", "村計", "市町計", "市町村計",
                 "全体", "県全体", "全県", "合計数", "計(再掲)")
TEXT_ENCODINGS = ("utf-8-sig", "cp932")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
SEVERITY_JA = {"error": "エラー", "warning": "警告", "info": "情報"}

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAX_HEADER_SCAN = 30
_TOTAL_RE = re.compile(r"^(?:%s)(?:[(（].*[)）])?$" % "|".join(re.escape(m) for m in
                                                          sorted(TOTAL_MARKERS, key=len, reverse=True)))
_NOTE_RE = re.compile(r"^(?:※|\*|＊|注|\(注|（注|出典|資料|備考[:：])")


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
    def warnings(self) -> pd.DataFrame:
        return self.issues[self.issues["severity"] == "warning"]

    @property
    def ok(self) -> bool:
        return self.errors.empty


class _Log:
    def __init__(self, path: Path, sheet: str | None):
        self.path, self.sheet, self.rows = path, sheet, []

    def add(self, severity, reason_ja, reason_en, row=None, column=None, value=None, cell=None):
        self.rows.append({
            "file": self.path.name, "sheet": self.sheet or "", "row": row, "column": column or "",
            "value": "" if value is None else str(value), "severity": severity,
            "reason_ja": reason_ja, "reason_en": reason_en, "cell": cell or "",
        })

    def fatal(self, reason_ja: str, reason_en: str, value=None):
        """Record a file-level error and raise SurveyError carrying every issue so far."""
        self.add("error", reason_ja, reason_en, value=value)
        raise SurveyError(f"{self.path}: {reason_ja} / {reason_en}", self.frame())

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=ISSUE_COLUMNS)
        frame["row"] = frame["row"].astype("Int64")
        return frame


def _col_index(cell: str) -> int:
    from openpyxl.utils import column_index_from_string

    return column_index_from_string(re.match(r"[A-Z]+", cell).group(0)) - 1


def _col_letter(j: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(j + 1)


# --- raw grids -------------------------------------------------------------------------------

@dataclass
class _Sheet:
    name: str | None          # None for CSV
    grid: list[list[object]]
    visible: bool = True
    no_cache: frozenset = frozenset()  # (row, col) 0-based cells holding a formula without a cached value


def _sniff(data: bytes) -> str:
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if data[:8] == _OLE_MAGIC:
        return "ole"
    if data[:5] == b"%PDF-":
        return "pdf"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml")):
        return "markup"
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:3] == b"\xef\xbb\xbf":
        return "text"
    return "text" if b"\x00" not in data[:4096] else "binary"


_KIND_JA = {"zip": "Excel (.xlsx)", "ole": "旧形式 Excel (.xls) またはパスワード付きファイル", "pdf": "PDF",
            "markup": "HTML/XML", "text": "テキスト (CSV)", "binary": "バイナリ"}


def _read_sheets(path: Path, log: _Log) -> tuple[list[_Sheet], str]:
    """All sheets of the file as cell grids (merged cells filled with their top-left value)."""
    if not path.exists():
        log.fatal("ファイルがありません", "file not found")
    if path.is_dir():
        log.fatal("ファイルではなくフォルダです", "the path is a folder, not a file")
    suffix = path.suffix.lower()
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.fatal(f"ファイルを読めません（{exc.strerror or exc}）", f"cannot read the file: {exc}")
    if not data.strip():
        log.fatal("ファイルが空です", "the file is empty")
    kind = _sniff(data)
    if kind == "ole":
        if _utf16(b"EncryptionInfo") in data or _utf16(b"EncryptedPackage") in data:
            log.fatal("パスワード付き（暗号化された）Excel ファイルは読めません。パスワードを外して .xlsx で保存し直してください",
                      "password-protected (encrypted) workbook; remove the password and save as .xlsx")
        log.fatal("旧形式(.xls)またはパスワード付きの Excel ファイルは読めません。パスワードを外し .xlsx で保存し直してください",
                  "legacy .xls or password-protected workbook; remove any password and save as .xlsx")
    if suffix in XLSX_SUFFIXES or (suffix in TEXT_SUFFIXES + (".xls",) and kind == "zip"):
        if kind != "zip":
            if kind == "text" and suffix in XLSX_SUFFIXES and _looks_like_csv(data):
                log.add("warning", f"拡張子は{suffix}ですが中身は CSV でした。CSV として読みました",
                        f"the file is named {suffix} but holds CSV text; read as CSV")
                return [_Sheet(None, _read_csv(data, log))], "csv"
            log.fatal(f"Excel ファイルとして開けません（中身は{_KIND_JA.get(kind, kind)}です。壊れている可能性があります）",
                      f"cannot open as xlsx: the content is {kind}, not an Excel workbook (corrupt or wrong type)")
        if suffix not in XLSX_SUFFIXES:
            log.add("warning", f"拡張子は{suffix}ですが中身は Excel (.xlsx) でした。Excel として読みました",
                    f"the file is named {suffix} but is an xlsx workbook; read as xlsx")
        return _read_xlsx(data, log), "xlsx"
    if suffix in TEXT_SUFFIXES:
        if kind in ("pdf", "markup", "binary"):
            log.fatal(f"CSV として読めません（中身は{_KIND_JA[kind]}です）",
                      f"cannot read as CSV: the content is {kind}")
        return [_Sheet(None, _read_csv(data, log))], "csv"
    if suffix == ".xls":
        log.fatal("旧形式(.xls)の Excel ファイルは読めません。.xlsx で保存し直してください",
                  "legacy .xls workbooks are not supported; save as .xlsx")
    log.fatal(f"対応していないファイル形式です（{suffix or '拡張子なし'}）。Excel (.xlsx) か CSV で保存してください",
              f"unsupported file type {suffix!r}; save as .xlsx or .csv")
    raise AssertionError("unreachable")


def _utf16(name: bytes) -> bytes:
    return name.decode("ascii").encode("utf-16-le")


def _looks_like_csv(data: bytes) -> bool:
    try:
        text = _decode(data)
    except UnicodeDecodeError:
        return False
    return "," in text or "\t" in text


def _read_xlsx(data: bytes, log: _Log) -> list[_Sheet]:
    from openpyxl import load_workbook

    def load(data_only: bool):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_workbook(_io.BytesIO(data), data_only=data_only)

    try:
        wb = load(True)
        formula_wb = load(False) if _has_formulas(data) else None
        sheets = []
        for k, ws in enumerate(wb.worksheets):
            no_cache = frozenset()
            if formula_wb is not None:
                no_cache = _uncached_formulas(ws, formula_wb.worksheets[k])
            sheets.append(_Sheet(ws.title, _sheet_grid(ws), ws.sheet_state == "visible", no_cache))
    except SurveyError:
        raise
    except Exception as exc:  # openpyxl raises many kinds (zip, xml, key, value, type errors)
        log.fatal("Excel ファイルとして開けません（壊れている可能性があります）",
                  f"cannot open as xlsx (corrupt?): {type(exc).__name__}: {str(exc)[:200]}")
    if not sheets:
        log.fatal("Excel ファイルにワークシートがありません", "the workbook has no worksheet")
    return sheets


def _has_formulas(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(_io.BytesIO(data)) as zf:
            for name in zf.namelist():
                if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                    if re.search(rb"<(?:\w+:)?f[ >/]", zf.read(name)):
                        return True
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError, KeyError, EOFError, NotImplementedError):
        return False
    return False


def _uncached_formulas(values_ws, formula_ws) -> frozenset:
    out = set()
    for row in formula_ws.iter_rows():
        for c in row:
            v = c.value
            is_formula = (isinstance(v, str) and v.startswith("=")) or type(v).__name__ in (
                "ArrayFormula", "DataTableFormula")
            if is_formula and values_ws.cell(row=c.row, column=c.column).value is None:
                out.add((c.row - 1, c.column - 1))
    return frozenset(out)


def _sheet_grid(ws) -> list[list[object]]:
    grid = [list(r) for r in ws.iter_rows(values_only=True)]
    for rng in ws.merged_cells.ranges:
        top = ws.cell(row=rng.min_row, column=rng.min_col).value
        for r in range(rng.min_row, rng.max_row + 1):
            for c in range(rng.min_col, rng.max_col + 1):
                if r - 1 < len(grid) and c - 1 < len(grid[r - 1]):
                    grid[r - 1][c - 1] = top
    return _trim(grid)


def _trim(grid: list[list[object]]) -> list[list[object]]:
    """Drop trailing empty rows and trailing empty cells of each row."""
    out = []
    for row in grid:
        row = list(row)
        while row and _cell_text(row[-1]) == "":
            row.pop()
        out.append(row)
    while out and not out[-1]:
        out.pop()
    return out


def _decode(data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16")
    last: UnicodeDecodeError | None = None
    for enc in TEXT_ENCODINGS:
        try:
            return data.decode(enc)
        except UnicodeDecodeError as exc:
            last = exc
    raise last  # type: ignore[misc]


def _read_csv(data: bytes, log: _Log) -> list[list[object]]:
    try:
        text = _decode(data)
    except UnicodeDecodeError:
        log.fatal("文字コードを判別できません（UTF-8 か Shift_JIS で保存してください）",
                  "cannot decode as UTF-8, UTF-16 or CP932 (Shift_JIS)")
    text = text.lstrip("\ufeff")
    if "\x00" in text:
        log.fatal("テキストファイルではありません", "not a text file (NUL characters)")
    if not text.strip():
        log.fatal("ファイルが空です", "the file is empty")
    lines = text.splitlines()[:50]
    n_tab, n_comma = sum("\t" in ln for ln in lines), sum("," in ln for ln in lines)
    delimiter = "\t" if n_tab > n_comma else ","
    try:
        rows = [list(r) for r in csv.reader(_io.StringIO(text, newline=""), delimiter=delimiter)]
    except csv.Error as exc:
        log.fatal(f"CSV の形式が不正です（{exc}）", f"malformed CSV: {exc}")
    return _trim([[_csv_cell(v) for v in r] for r in rows])


def _csv_cell(value: str):
    # Excel's "keep leading zeros" CSV idiom: ="012025"
    m = re.fullmatch(r'\s*="(.*)"\s*', value)
    return m.group(1) if m else value


# --- header detection ------------------------------------------------------------------------

def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value != value:
            return ""
        if value.is_integer() and abs(value) < 1e15:
            value = int(value)
    text = unicodedata.normalize("NFKC", str(value))
    return text.replace("\u200b", "").replace("\ufeff", "").strip()


_ENUM_RE = re.compile(r"^(?:【[^】]*】|\[[^\]]*\]|問\d+(?:[-.の]\d+)*[.、:)]?|\(\d+\)|\d+(?:[-.]\d+)*[.、:)]"
                      r"|[a-zA-Z][.)]|[ア-ン][.、)])+")
_TRAIL_RE = re.compile(r"(?:\([^()]*\)|【[^】]*】|\[[^\]]*\]|※.*|\*+)$")


def _raw(value) -> str:
    """A cell as the sender typed it (for issue reports): not NFKC-normalised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return str(value).strip()


def _variants(text: str) -> set[str]:
    """Header keys a cell may match: as is, without a leading number (問1, (1), ①) and without
    a trailing bracketed hint such as (○×で回答)."""
    key = header_key(text)
    if not key:
        return set()
    out = {key}
    bare = _ENUM_RE.sub("", key)
    out.add(bare)
    out.add(_TRAIL_RE.sub("", bare))
    out.add(_TRAIL_RE.sub("", key))
    out.discard("")
    return out


def _key_table(book: Codebook) -> dict[str, str]:
    table: dict[str, str] = {}
    for var, spec in book.id_columns.items():
        for h in (spec["header_ja"], *spec.get("aliases", ())):
            table.setdefault(header_key(h), var)
    for q in book.questions:
        for k in q.header_keys:
            table.setdefault(k, q.variable)
    return table


@dataclass
class _Header:
    id_row: int                    # 0-based row holding the code / name header cell
    top: int                       # first row considered (may be above id_row)
    bottom: int                    # last header row; data starts below it
    colmap: dict[int, str]         # column -> variable
    labels: dict[int, str]         # column -> header text shown in issues
    quality: dict[int, tuple]      # column -> (ends at the column's last header cell, length)
    losers: dict[int, str]         # column -> variable it also matched but lost to another column
    matched: dict[int, tuple]      # column -> the header cells its match was made of
    absorbed: list[int] = field(default_factory=list)  # rows taken into the header as continuation

    @property
    def score(self) -> int:
        return len(self.colmap)


def _column_cells(grid, rows: range, j: int, raw: bool = False) -> list[str]:
    """A column's non-empty header texts from top to bottom (vertical merges counted once);
    NFKC-normalised, or as typed with `raw`."""
    out: list[str] = []
    last = None
    for r in rows:
        row = grid[r]
        t = _cell_text(row[j]) if j < len(row) else ""
        if t and t != last:
            out.append(_raw(row[j]) if raw else t)
            last = t
    return out


def _match_columns(grid, top: int, bottom: int, table: dict[str, str]):
    rows = range(top, bottom + 1)
    width = max((len(grid[r]) for r in rows), default=0)
    best: dict[int, tuple] = {}
    for j in range(width):
        cells = _column_cells(grid, rows, j)
        shown = _column_cells(grid, rows, j, raw=True)
        cands = []
        n = len(cells)
        for a in range(n):
            for b in range(a + 1, n + 1):
                text = "".join(cells[a:b])
                for key in _variants(text):
                    var = table.get(key)
                    if var:
                        cands.append(((b == n, len(key)), var, tuple(cells[a:b]), " ".join(shown[a:b])))
        if cands:
            best[j] = max(cands, key=lambda c: c[0])
    # each variable goes to its best column (ties: leftmost)
    owner: dict[str, int] = {}
    for j, (q, var, _, _) in sorted(best.items(), key=lambda kv: (tuple(-x for x in kv[1][0]), kv[0])):
        owner.setdefault(var, j)
    colmap = {j: var for var, j in owner.items()}
    losers = {j: var for j, (_, var, _, _) in best.items() if j not in colmap}
    labels = {j: best[j][3] for j in best}
    quality = {j: best[j][0] for j in best}
    matched = {j: best[j][2] for j in best}
    return dict(sorted(colmap.items())), labels, quality, losers, matched


def _is_id_header_cell(value, table: dict[str, str]) -> bool:
    t = _cell_text(value)
    return bool(t) and any(table.get(k) in ("code", "name") for k in _variants(t))


def _find_header(grid: list[list[object]], book: Codebook, table: dict[str, str] | None = None,
                 max_scan: int = _MAX_HEADER_SCAN) -> _Header | None:
    """The table's header: rows, and the column -> variable map.

    Every row (of the first `max_scan`) with a cell naming the code or name column is a
    candidate; each column's candidate texts are its cells in up to two rows above and two rows
    below and their concatenations, so multi-row headers ("重層的支援体制整備事業" over "実施状況")
    match as well as one-row ones. The candidate mapping the most variables wins.
    """
    table = table or _key_table(book)
    best: _Header | None = None
    for r in range(min(max_scan, len(grid))):
        if not any(_is_id_header_cell(v, table) for v in grid[r]):
            continue
        top = max(0, r - 2)
        cand = None
        for bottom in range(r, min(r + 3, len(grid))):
            found = _match_columns(grid, top, bottom, table)
            if cand is None or len(found[0]) > len(cand.colmap):
                cand = _Header(r, top, bottom, *found)
        if cand is None or not ({"code", "name"} & set(cand.colmap.values())):
            continue
        # rows right below that hold no municipality and no answer belong to the header too
        while cand.bottom + 1 < len(grid) and cand.bottom - r < 2 and \
                _is_header_continuation(grid[cand.bottom + 1], grid[cand.bottom], cand.colmap, book, table):
            found = _match_columns(grid, top, cand.bottom + 1, table)
            absorbed = [*cand.absorbed, cand.bottom + 1]
            if len(found[0]) >= len(cand.colmap):
                cand = _Header(r, top, cand.bottom + 1, *found, absorbed=absorbed)
            else:
                cand.bottom += 1
                cand.absorbed = absorbed
        if best is None or cand.score > best.score:
            best = cand
    return best


def _is_header_continuation(row, above, colmap, book: Codebook, table) -> bool:
    if all(_cell_text(v) == "" for v in row):
        return False
    for j, var in colmap.items():
        t = _cell_text(row[j]) if j < len(row) else ""
        if var in ("code", "name"):
            above_t = _cell_text(above[j]) if j < len(above) else ""
            if t and t != above_t and not _is_id_header_cell(t, table):
                return False
        elif t:
            q = book.question(var)
            if q.answers == "text":
                continue
            mapped, ok = _map_answer(row[j], q.answers, book)
            if ok and mapped is not None:
                return False
    return True


# --- answers ---------------------------------------------------------------------------------

_MISSING = object()


def _map_answer(value, answers: str, book: Codebook):
    """(mapped value, ok). Missing spellings map to None; unknown spellings are not ok."""
    if answers == "text":
        if value is None or (isinstance(value, float) and value != value):
            return None, True
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).replace("\r\n", "\n").replace("\r", "\n").strip()
        return (text or None), True
    if value is None or (isinstance(value, float) and value != value):
        return None, True
    key = answer_key(_cell_text(value))
    table = book.answer_maps[answers]
    if key in table:
        return table[key], True
    return _MISSING, False


# --- municipalities --------------------------------------------------------------------------

def read_master(path: Path) -> pd.DataFrame:
    """The dataset's municipality master: code (6-digit str), name, covariates."""
    frame = pd.read_csv(path, dtype={"code": str}, encoding="utf-8-sig")
    frame["code"] = frame["code"].map(lambda c: codes.normalize(c))
    return frame.sort_values("code").reset_index(drop=True)


def _name_key(name) -> str:
    text = codes.normalize_name(_cell_text(name))
    return text.replace("ヶ", "ケ").replace("ヵ", "カ").replace("・", "")


@lru_cache(maxsize=1)
def _national() -> dict[str, tuple[str, str]]:
    """code -> (municipality, prefecture) from data/external, or {} when unavailable."""
    try:
        from .paths import data_dir

        frame = codes.load_master(data_dir() / "external" / "municipality_codes.csv")
        return {r.lg_code: (r.municipality or r.prefecture, r.prefecture) for r in frame.itertuples(index=False)}
    except Exception:  # an optional nicety for messages and prefecture prefixes only
        return {}


@lru_cache(maxsize=1)
def _national_names() -> dict[str, str]:
    """code -> 'municipality（prefecture）' for messages."""
    return {c: f"{m}（{p}）" for c, (m, p) in _national().items()}


class _Resolver:
    """Turns a row's code / name cells into a master code, or says why it cannot.

    Names are not unique nationally (伊達市 is in Hokkaido and Fukushima), so a name resolves to
    a set of codes; only a single candidate is used, several are reported as ambiguous.
    """

    def __init__(self, master: pd.DataFrame, prefecture_code: str | None):
        self.by_code = dict(zip(master["code"], master["name"]))
        self.known = frozenset(self.by_code)
        self.by_name: dict[str, set[str]] = {}
        for c, n in self.by_code.items():
            if isinstance(n, str) and n:
                self.by_name.setdefault(_name_key(n), set()).add(c)
        prefixes = {c[:2] for c in self.known}
        self.prefecture = prefecture_code or (prefixes.pop() if len(prefixes) == 1 else None)

    def names(self, text: str) -> set[str]:
        """Master codes whose name `text` spells (exactly, or after a prefecture / 郡 prefix)."""
        key = _name_key(text)
        if not key:
            return set()
        if key in self.by_name:
            return set(self.by_name[key])
        # 「架空県青葉市」「北海道伊達市」「○○郡花野町」: the longest master names the text ends with
        hits = [(len(n), cs) for n, cs in self.by_name.items() if len(n) >= 2 and key.endswith(n)]
        if not hits:
            return set()
        longest = max(n for n, _ in hits)
        found = set().union(*(cs for n, cs in hits if n == longest))
        if len(found) > 1:  # a prefecture name in front can settle it
            national = _national()
            settled = {c for c in found if c in national and key.startswith(_name_key(national[c][1]))}
            if len(settled) == 1:
                return settled
        return found

    def describe(self, found: set[str]) -> str:
        return "、".join(f"{c} {self.by_code[c]}" for c in sorted(found))

    def by_code_value(self, raw) -> tuple[str | None, str, str]:
        """(code, reason_ja, reason_en): code None with the reason when it cannot be used."""
        try:
            return codes.normalize(raw, known=self.known), "", ""
        except codes.CodeError as exc:
            try:
                found = codes.candidates(raw)
            except codes.CodeError as exc2:
                ja, en = _split_reason(str(exc2))
                return None, f"市町村コードが不正です: {ja}", f"invalid municipality code: {en}"
            others = [c for c in found if self.prefecture and c[:2] != self.prefecture]
            if others and len(others) == len(found):
                national = _national_names()
                named = next((c for c in others if c in national), others[0])
                where = national.get(named, f"都道府県コード {named[:2]}")
                return (None, f"他の都道府県の市町村コードです（{named}: {where}）",
                        f"municipality of another prefecture ({named}, prefecture {named[:2]}, "
                        f"not {self.prefecture})")
            national = _national_names()
            known_as = "".join(f"、{c} は{national[c]}" for c in found if c in national)
            known_as_en = "".join(f"; {c} is {national[c]}" for c in found if c in national)
            return None, f"コード表（市町村マスタ）にない市町村コードです（{'/'.join(found)}{known_as}）", \
                f"unknown municipality code, not in the master list ({'/'.join(found)}{known_as_en})"


def _split_reason(message: str) -> tuple[str, str]:
    """'日本語 / English' (as codes.CodeError words it) -> (ja, en)."""
    parts = re.split(r"\s*/\s+", message, maxsplit=1)
    return parts[0], (parts[1] if len(parts) > 1 else parts[0])


# --- the reader ------------------------------------------------------------------------------

def read_survey(path: Path | str, book: Codebook, master: pd.DataFrame,
                fiscal_year: int | None = None, prefecture_code: str | None = None,
                check_schema: bool = True) -> SurveyResult:
    """Read one survey file; see the module docstring. `master` lists the expected municipalities.

    `prefecture_code` (2 digits) tells valid codes of other prefectures apart from unknown ones;
    by default it is the common prefix of the master's codes. `check_schema` runs the pandera
    schema of `analysis.schema` on the result (its failures become issues).
    """
    path = Path(path)
    log = _Log(path, None)
    sheets, fmt = _read_sheets(path, log)
    table = _key_table(book)
    sheet, header = _pick_sheet(sheets, book, table, log)
    log.sheet = sheet.name
    if header is None:
        id_ja = f"『{book.id_columns['code']['header_ja']}』または『{book.id_columns['name']['header_ja']}』"
        if not sheet.grid:
            log.fatal("ファイルにデータがありません（空のシート）", "the file holds no cells (empty sheet)")
        log.fatal(f"見出し行（{id_ja}の列）が見つかりません。調査票の集計表か確認してください",
                  "header row with the code or name column not found; is this the survey's summary table?")
    ctx = _Context(sheet, header, book, table, log, _Resolver(master, prefecture_code))
    fy, fy_source = _fiscal_year(ctx, path, fiscal_year)
    header_first = _check_columns(ctx)
    rows = _read_rows(ctx)
    if rows.n_rows == 0:
        log.fatal("データ行がありません（見出しだけのファイルです）", "no data rows (the file has a header only)")
    res = ctx.resolver
    missing = sorted(res.known - set(rows.seen))
    for c in missing:
        log.add("warning", f"回答がありません（未回答の市町: {res.by_code[c]}）", f"no answer from municipality {c}",
                column=ctx.label(ctx.col_of.get("code", ctx.col_of.get("name"))), value=c)
    tidy = _tidy_frame(rows.records, book, fy)
    rows_by_code = dict(zip((rec["code"] for rec in rows.records), rows.source_rows))
    if check_schema:
        from .schema import check_tidy

        for p in check_tidy(tidy, book):
            code = p.get("code")
            excel_row = rows_by_code.get(code) if code is not None else None
            j = ctx.col_of.get(p["column"])
            log.add("error", p["reason_ja"], p["reason_en"], row=excel_row,
                    column=ctx.label(j) if j is not None else p["column"], value=p.get("value"),
                    cell=f"{_col_letter(j)}{excel_row}" if j is not None and excel_row else None)
    return SurveyResult(tidy=tidy, issues=log.frame(), fiscal_year=fy, path=path, sheet=sheet.name,
                        info={"n_rows": len(rows.records), "n_expected": len(res.known), "missing": missing,
                              "format": fmt, "header_rows": (header_first + 1, header.bottom + 1),
                              "columns": {v: ctx.label(j) for j, v in header.colmap.items()},
                              "source_rows": rows_by_code,
                              "fiscal_year_source": "argument" if fiscal_year is not None else fy_source})


class _Context:
    """What the steps of `read_survey` share: the sheet, its header, the codebook and the log."""

    def __init__(self, sheet: _Sheet, header: _Header, book: Codebook, table: dict, log: _Log,
                 resolver: _Resolver):
        self.sheet, self.grid, self.header = sheet, sheet.grid, header
        self.book, self.table, self.log, self.resolver = book, table, log, resolver
        self.col_of = {v: j for j, v in header.colmap.items()}
        self.width = max((len(r) for r in self.grid), default=0)
        own_rows = range(max(header.top, header.id_row - 1), header.bottom + 1)
        self.own_header = {j for j in range(self.width) if _column_cells(self.grid, own_rows, j)}

    def label(self, j: int | None) -> str:
        """The header text of column j as shown in issues."""
        if j is None:
            return ""
        if j in self.header.labels:
            return self.header.labels[j]
        cells = _column_cells(self.grid, range(self.header.id_row, self.header.bottom + 1), j, raw=True)
        return cells[-1] if cells else f"{_col_letter(j)}列"


def _fiscal_year(ctx: _Context, path: Path, requested: int | None) -> tuple[int | None, str | None]:
    """The fiscal year to use, and an error when the title contradicts the requested one."""
    log, grid = ctx.log, ctx.grid
    title_fy, source, where = _title_fiscal_year(grid[: ctx.header.id_row], path)
    if requested is not None and title_fy is not None and title_fy != requested:
        if source == "title":
            r = int(re.sub(r"^[A-Z]+", "", where))
            log.add("error", f"ファイルの表題は{title_fy}年度ですが、{requested}年度として読み込もうとしています",
                    f"the file's title says FY{title_fy} but FY{requested} was requested", row=r,
                    column="表題", value=_raw(grid[r - 1][_col_index(where)]), cell=where)
        else:
            log.add("warning", f"ファイル名は{title_fy}年度を示していますが、{requested}年度として読み込みます",
                    f"the file name suggests FY{title_fy} but FY{requested} was requested", value=path.name)
    fy = requested if requested is not None else title_fy
    if fy is None:
        log.add("warning", "年度が分かりません（表題に年度がなく、--fiscal-year も指定されていません）",
                "fiscal year unknown: no year in the title and none requested")
    return fy, source


def _check_columns(ctx: _Context) -> int:
    """Report unknown and duplicate columns, odd header rows and missing required questions.

    Returns the first header row (0-based) for the result's info.
    """
    grid, header, log = ctx.grid, ctx.header, ctx.log
    colmap, below = header.colmap, header.bottom + 1
    for j in range(ctx.width):
        if j in colmap:
            continue
        cells = _column_cells(grid, range(header.id_row, header.bottom + 1), j, raw=True)
        if j in header.losers and header.quality[j][0]:
            var = header.losers[j]
            other = _col_letter(ctx.col_of[var])
            log.add("error", f"同じ設問の列が複数あります（{other}列と重複）。どちらか一方にしてください",
                    f"duplicate column for {var} (also column {other})",
                    row=below, column=ctx.label(j), value=ctx.label(j), cell=f"{_col_letter(j)}{below}")
        elif cells:
            log.add("info", "調査票にない列のため無視しました", "unknown column ignored",
                    row=below, column=cells[-1], value=cells[-1], cell=f"{_col_letter(j)}{below}")
    for r in header.absorbed:
        odd = []
        for j in colmap:
            t = _cell_text(grid[r][j]) if j < len(grid[r]) else ""
            above = _cell_text(grid[r - 1][j]) if j < len(grid[r - 1]) else ""
            if t and t != above and t not in header.matched.get(j, ()):
                odd.append((j, grid[r][j]))
        if odd:
            j, v = odd[0]
            log.add("info", "見出しの続きとみなして読み飛ばした行です（市町村も回答もありません）",
                    "row below the header treated as part of the header (no municipality, no answer)",
                    row=r + 1, column=ctx.label(j), value=_raw(v), cell=f"{_col_letter(j)}{r + 1}")
    found = set(colmap.values())
    for q in ctx.book.questions:
        if q.required and q.variable not in found:
            log.add("error", f"必須の設問『{q.header_ja}』の列がありません", f"required question column missing: {q.variable}",
                    column=q.header_ja)
    for r in range(header.top, header.id_row):
        if any(j < len(grid[r]) and _cell_text(grid[r][j]) in header.matched.get(j, ()) for j in colmap):
            return r
    return header.id_row


@dataclass
class _Rows:
    records: list[dict] = field(default_factory=list)
    source_rows: list[int] = field(default_factory=list)   # Excel row of each record
    seen: dict[str, int] = field(default_factory=dict)      # code -> Excel row
    n_rows: int = 0                                         # rows naming a municipality (read or not)


def _read_rows(ctx: _Context) -> _Rows:
    out = _Rows()
    headerless: dict[int, int] = {}  # column without a header -> first row with a value there
    for r in range(ctx.header.bottom + 1, len(ctx.grid)):
        _read_row(ctx, r, out, headerless)
    for j, first_row in sorted(headerless.items()):
        ctx.log.add("warning", "見出しのない列に値があります（読み込んでいません）",
                    "values in a column without a header were ignored", row=first_row, column=f"{_col_letter(j)}列",
                    value=_raw(ctx.grid[first_row - 1][j]), cell=f"{_col_letter(j)}{first_row}")
    return out


def _read_row(ctx: _Context, r: int, out: _Rows, headerless: dict[int, int]) -> None:
    """Read grid row r into `out`, or log why it is skipped; every non-empty row ends up in one."""
    row, log, res, col_of = ctx.grid[r], ctx.log, ctx.resolver, ctx.col_of
    excel_row = r + 1
    texts = [_cell_text(v) for v in row]
    if not any(texts):
        return

    def at(j: int | None) -> str:
        return f"{_col_letter(j)}{excel_row}" if j is not None else ""

    jc, jn = col_of.get("code"), col_of.get("name")
    raw_code = row[jc] if jc is not None and jc < len(row) else None
    raw_name = row[jn] if jn is not None and jn < len(row) else None
    code_text, name_text = _cell_text(raw_code), _cell_text(raw_name)
    j_first = next(j for j, t in enumerate(texts) if t)
    first_text = texts[j_first]
    id_texts = [t for t in (code_text, name_text) if t] or [first_text]
    if any(_TOTAL_RE.match(t.replace(" ", "")) for t in id_texts):
        j = jn if name_text else (jc if code_text else j_first)
        log.add("info", "合計行のため読み飛ばしました", "total row skipped", row=excel_row, column=ctx.label(j),
                value=id_texts[0], cell=at(j))
        return
    if any(t and _is_id_header_cell(t, ctx.table) for t in (code_text, name_text)):
        log.add("info", "見出しの繰り返し行のため読み飛ばしました", "repeated header row skipped",
                row=excel_row, value=code_text or name_text)
        return
    answers_present = any(texts[j] for j, v in ctx.header.colmap.items() if v not in ("code", "name") and j < len(row))
    if not answers_present and not name_text and (_NOTE_RE.match(first_text) or not code_text):
        note = _NOTE_RE.match(first_text) is not None
        log.add("info", "注記の行のため読み飛ばしました" if note else "市町村も回答もない行のため読み飛ばしました",
                "note row skipped" if note else "row without municipality or answers skipped",
                row=excel_row, column=ctx.label(j_first), value=_raw(row[j_first]), cell=at(j_first))
        return
    if not code_text and not name_text:
        j = jc if jc is not None else jn
        log.add("error", "市町村コードも市町村名も空です（回答がある行）", "row with answers but without code or name",
                row=excel_row, column=ctx.label(j), cell=at(j))
        return
    out.n_rows += 1
    for j, t in enumerate(texts):
        if t and j not in ctx.own_header:
            headerless.setdefault(j, excel_row)

    code = None
    name_in_code = bool(code_text) and not any(ch.isdigit() for ch in code_text)
    if code_text and not name_in_code:
        code, why_ja, why_en = res.by_code_value(raw_code)
        if code is None:
            log.add("error", why_ja, why_en, row=excel_row, column=ctx.label(jc), value=_raw(raw_code), cell=at(jc))
            return
        if name_text:
            by_name = res.names(name_text)
            if by_name and code not in by_name:
                log.add("error", f"市町村コードと市町村名が食い違います（コード {code} は{res.by_code[code]}、"
                        f"名称の市町村は {res.describe(by_name)}）",
                        f"code {code} ({res.by_code[code]}) contradicts the name, which is {'/'.join(sorted(by_name))}",
                        row=excel_row, column=ctx.label(jn), value=_raw(raw_name), cell=at(jn))
                return
            if not by_name:
                log.add("warning", f"市町村名がコード表の名称（{res.by_code[code]}）と一致しません（コードで照合しました）",
                        f"name differs from the master's name for {code} ({res.by_code[code]}); matched by code",
                        row=excel_row, column=ctx.label(jn), value=_raw(raw_name), cell=at(jn))
    else:
        # no code: the name (from the name column, or written in the code column) must be unique
        raw_id, j_id = (raw_code, jc) if name_in_code else (raw_name, jn)
        found = res.names(_cell_text(raw_id))
        if name_in_code and name_text:
            found &= res.names(name_text) or found
        if len(found) == 1:
            code = found.pop()
            if name_in_code:
                log.add("info", "コード欄の市町村名からコードを補いました", "code resolved from a name in the code column",
                        row=excel_row, column=ctx.label(jc), value=_raw(raw_code), cell=at(jc))
        elif found:
            log.add("error", f"市町村名が複数の市町村に当てはまります（{res.describe(found)}）。市町村コードを記入してください",
                    f"ambiguous municipality name ({'/'.join(sorted(found))}); give the code",
                    row=excel_row, column=ctx.label(j_id), value=_raw(raw_id), cell=at(j_id))
            return
        elif name_in_code:
            log.add("error", "市町村コードが不正です（数字がなく、市町村名としてもコード表にありません）",
                    "invalid municipality code: no digits, and not a municipality name of the master list",
                    row=excel_row, column=ctx.label(jc), value=_raw(raw_code), cell=at(jc))
            return
        else:
            log.add("error", "市町村名がコード表（市町村マスタ）にありません", "municipality name not in the master list",
                    row=excel_row, column=ctx.label(jn), value=_raw(raw_name), cell=at(jn))
            return
    if code in out.seen:
        j = jc if jc is not None else jn
        log.add("error", f"同じ市町村が重複しています（{out.seen[code]}行目と重複）",
                f"duplicate municipality (also row {out.seen[code]})",
                row=excel_row, column=ctx.label(j), value=code, cell=at(j))
        return
    out.seen[code] = excel_row
    rec = {"code": code, "name": res.by_code[code]}
    for q in ctx.book.questions:
        j = col_of.get(q.variable)
        if j is None:
            rec[q.variable] = None
            continue
        value = row[j] if j < len(row) else None
        if (r, j) in ctx.sheet.no_cache:
            log.add("error", "数式の計算結果が保存されていません。Excel で開いて保存し直すか値で貼り付けてください",
                    f"formula without a saved result for {q.variable}; recalculate and save in Excel",
                    row=excel_row, column=ctx.label(j), cell=at(j))
            rec[q.variable] = None
            continue
        mapped, ok = _map_answer(value, q.answers, ctx.book)
        if not ok:
            log.add("error", f"回答『{_raw(value)}』を解釈できません（コードブックの回答表にありません）",
                    f"unmappable answer for {q.variable}", row=excel_row, column=ctx.label(j),
                    value=_raw(value), cell=at(j))
            mapped = None
        rec[q.variable] = mapped
    out.records.append(rec)
    out.source_rows.append(excel_row)


def _pick_sheet(sheets: list[_Sheet], book: Codebook, table, log: _Log) -> tuple[_Sheet, _Header | None]:
    """The visible sheet whose header maps the most codebook columns (a cover sheet is skipped)."""
    found = [(s, _find_header(s.grid, book, table)) for s in sheets]
    visible = [(s, h) for s, h in found if s.visible] or found
    scored = [(s, h) for s, h in visible if h is not None]
    if not scored:
        return visible[0][0], None
    best_s, best_h = max(scored, key=lambda sh: (sh[1].score, -sheets.index(sh[0])))
    if best_s.name is not None:
        log.sheet = best_s.name
        others = [s.name for s, h in visible if s is not best_s and (h is None or h.score < best_h.score)]
        if others:
            log.add("info", f"シート『{'』『'.join(others)}』は回答表ではないため読み飛ばしました（表紙など）",
                    f"sheet(s) {', '.join(others)} skipped (cover or other non-table sheets)")
        rivals = [s.name for s, h in visible if s is not best_s and h is not None and h.score >= best_h.score]
        if rivals:
            log.add("warning", f"シート『{'』『'.join(rivals)}』にも同じ形の回答表があります（読み込んだのは『{best_s.name}』のみ）",
                    f"sheet(s) {', '.join(rivals)} also hold a survey table; only {best_s.name} was read")
        hidden = [s.name for s, h in found if not s.visible and h is not None]
        if hidden:
            log.add("info", f"非表示のシート『{'』『'.join(hidden)}』は読み込んでいません",
                    f"hidden sheet(s) {', '.join(hidden)} not read")
    return best_s, best_h


def _title_fiscal_year(rows: list[list[object]], path: Path) -> tuple[int | None, str | None, str | None]:
    """(fiscal year, source, cell) from the title rows (cells mentioning 年度), else the file name."""
    for r, row in enumerate(rows):
        for j, v in enumerate(row):
            t = _cell_text(v)
            if "年度" in t:
                fy = parse_fy(t)
                if fy:
                    return fy, "title", f"{_col_letter(j)}{r + 1}"
    name = unicodedata.normalize("NFKC", path.stem)
    if "年度" in name or re.search(r"FY\s*20\d\d", name, re.IGNORECASE):
        fy = parse_fy(name.upper().replace("FY", " FY"))
        if fy:
            return fy, "file name", None
    return None, None, None


def tidy_columns(book: Codebook) -> list[str]:
    return ["fiscal_year", "code", "name", *book.variables]


def _tidy_frame(records: list[dict], book: Codebook, fiscal_year: int | None) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=["code", "name", *book.variables])
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


# --- reports ---------------------------------------------------------------------------------

def format_issues(issues: pd.DataFrame) -> list[str]:
    """One line per issue: severity, file, sheet, row, column, value and the reason (ja / en)."""
    lines = []
    for rec in issues.to_dict("records"):
        sev = rec["severity"]
        parts = [f"[{SEVERITY_JA.get(sev, sev)}/{sev}]", f"ファイル『{rec['file']}』"]
        if rec.get("sheet"):
            parts.append(f"シート『{rec['sheet']}』")
        row = rec.get("row")
        if row is not None and not pd.isna(row):
            parts.append(f"{int(row)}行")
        if rec.get("cell"):
            parts.append(f"({rec['cell']})")
        if rec.get("column"):
            parts.append(f"列『{rec['column']}』")
        if rec.get("value") not in (None, ""):
            parts.append(f"値『{rec['value']}』")
        lines.append(" ".join(parts) + f": {rec['reason_ja']} / {rec['reason_en']}")
    return lines


def report_text(result: SurveyResult | None, issues: pd.DataFrame | None = None, path: Path | None = None) -> str:
    """The validation report printed by `python -m analysis validate` (Japanese and English)."""
    issues = result.issues if result is not None else issues
    if issues is None:
        issues = pd.DataFrame(columns=ISSUE_COLUMNS)
    counts = issues["severity"].value_counts()
    n_err, n_warn, n_info = (int(counts.get(k, 0)) for k in ("error", "warning", "info"))
    lines = [f"ファイル / file: {result.path if result is not None else path}"]
    if result is not None:
        lines.append(f"シート / sheet: {result.sheet or '-'}")
        lines.append(f"年度 / fiscal year: {result.fiscal_year or '不明 / unknown'}")
        lines.append(f"市町数 / municipalities: {len(result.tidy)} / {result.info.get('n_expected', '?')}")
        verdict = "有効 / valid" if result.ok else "無効 / invalid"
    else:
        verdict = "読み込めません / unusable file"
    lines.append(f"判定 / result: {verdict}")
    lines.append(f"エラー {n_err} 件, 警告 {n_warn} 件, 情報 {n_info} 件 / "
                 f"{n_err} error(s), {n_warn} warning(s), {n_info} note(s)")
    lines.extend(format_issues(issues))
    if n_err or result is None:
        lines.append("")
        lines.append("対処 / what to do:")
        lines.extend(f"- {h}" for h in what_to_do(issues))
    return "\n".join(lines)


# reason (English, prefix) -> advice (ja / en); first match wins
_ADVICE = [
    ("unmappable answer", "回答欄を ○/×（または 有/無、実施/未実施、1/0）で入力し直してください。別の表記を使い続ける場合は "
                          "data/codebook/survey.yaml の answer_maps に追加します / re-enter the answer as ○/× (or add "
                          "the spelling to answer_maps in the codebook)"),
    ("invalid municipality code", "市町村コードを総務省の全国地方公共団体コード（6桁、検査数字付き）で入力し直してください / "
                                  "correct the code (6 digits with check digit)"),
    ("municipality of another prefecture", "他県のコードです。行を削除するか、正しい市町のコードに直してください / "
                                           "remove the row or use this prefecture's code"),
    ("duplicate municipality", "同じ市町の行が複数あります。どちらが正しいか確認し、1行にしてください / keep one row per municipality"),
    ("required question column missing", "調査票の設問の列がありません。見出しの文言がコードブックと一致しているか確認してください / "
                                         "a question column is missing; check the header text against the codebook"),
    ("the file's title says", "ファイルの年度と指定した年度が違います。正しいファイルか、--fiscal-year の指定を確認してください / "
                              "check the file or --fiscal-year"),
]


def what_to_do(issues: pd.DataFrame) -> list[str]:
    """Advice lines for the kinds of errors present (the input file is never changed by us)."""
    out = []
    errors = issues[issues["severity"] == "error"] if not issues.empty else issues
    for key, advice in _ADVICE:
        if not errors.empty and errors["reason_en"].astype(str).str.contains(key, regex=False).any():
            out.append(advice)
    out.append("元のファイルを修正して保存し、もう一度 `python -m analysis validate` で確認してから "
               "`python -m analysis run` を実行してください（このツールが元のファイルを書き換えることはありません） / "
               "fix the original file, validate again, then run; this tool never writes to input files")
    return out
