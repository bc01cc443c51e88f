"""Raw cell grids from a file: what kind of file it is, and its sheets as lists of rows.

The file is checked before it is read (a regular file, within the size limit), opened for reading
only, and parsed in bounded steps: an xlsx's declared sheet size and unzipped size are checked
before any row is read, rows are streamed (openpyxl read-only mode) and reading stops past the
row limit; a CSV is decoded (UTF-8, CP932 or UTF-16) and split in csv strict mode, so a stray
quote is an error naming its line instead of silently swallowing the rest of the file. Merged
ranges are returned as they are, not filled in: the reader decides what a merge means once it
knows where the header ends.
"""

from __future__ import annotations

import csv
import io as _io
import re
import stat
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ._cells import cell_text, col_letter
from ._issues import IssueLog, SurveyError
from ._limits import Limits, size_text

TEXT_ENCODINGS = ("utf-8-sig", "cp932")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MARKUP_STARTS = (b"<!doctype html", b"<html", b"<table", b"<meta", b"<head", b"<body", b"<?xml", b"<!--")


@dataclass(frozen=True)
class Merge:
    """A merged range, 0-based and inclusive."""

    r1: int
    c1: int
    r2: int
    c2: int

    @property
    def ref(self) -> str:
        return f"{col_letter(self.c1)}{self.r1 + 1}:{col_letter(self.c2)}{self.r2 + 1}"

    def clip(self, max_row: int) -> Merge | None:
        return Merge(self.r1, self.c1, min(self.r2, max_row), self.c2) if self.r1 <= max_row else None


@dataclass
class Sheet:
    name: str | None  # None for CSV
    grid: list[list[object]]  # cell values as stored (merged ranges not filled in)
    visible: bool = True
    no_cache: frozenset = frozenset()  # (row, col) 0-based cells holding a formula without a cached value
    merges: tuple[Merge, ...] = ()
    long_cells: list = field(default_factory=list)  # (row, col, length) of cells over the length limit
    lines: list[int] | None = None  # CSV: the file line each grid row starts on


def fill(grid: list[list[object]], merges) -> list[list[object]]:
    """A copy of `grid` with each merged range holding its top-left value (clipped to the grid)."""
    out = list(grid)
    for m in merges:
        if m.r1 >= len(grid) or m.c1 >= len(grid[m.r1]):
            continue
        top = grid[m.r1][m.c1]
        for r in range(m.r1, min(m.r2, len(out) - 1) + 1):
            if out[r] is grid[r]:
                out[r] = list(grid[r])
            row = out[r]
            for c in range(m.c1, min(m.c2, len(row) - 1) + 1):
                row[c] = top
    return out


# --- which kind of file ----------------------------------------------------------------------


def sniff(data: bytes) -> str:
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if data[:8] == _OLE_MAGIC:
        return "ole"
    if data[:5] == b"%PDF-":
        return "pdf"
    head = data[:1024]
    if head[:3] == b"\xef\xbb\xbf":
        head = head[3:]
    head = head.lstrip().lower()
    if head.startswith(_MARKUP_STARTS):
        if b"urn:schemas-microsoft-com:office:spreadsheet" in data[:4096].lower():
            return "spreadsheetml"
        return (
            "html"
            if b"<html" in head
            or b"<table" in head
            or b"<!doctype html" in head
            or b"<meta" in head
            or b"<head" in head
            or b"<body" in head
            else "xml"
        )
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:3] == b"\xef\xbb\xbf":
        return "text"
    return "text" if b"\x00" not in data[:4096] else "binary"


KIND_JA = {
    "zip": "Excel (.xlsx)",
    "ole": "旧形式 Excel (.xls) またはパスワード付きファイル",
    "pdf": "PDF",
    "html": "HTML（Web ページ）",
    "xml": "XML",
    "spreadsheetml": "XML スプレッドシート 2003",
    "text": "テキスト (CSV)",
    "binary": "バイナリ",
}


def _line_of(data: bytes, pos: int) -> int:
    return data[:pos].count(b"\n") + 1


def read_file_bytes(path: Path, log: IssueLog, limits: Limits) -> bytes:
    """The file's bytes, after checking that it is a regular file within the size limit."""
    try:
        st = path.stat()
    except FileNotFoundError:
        log.fatal("ファイルがありません", "file not found")
    except OSError as exc:
        log.fatal(f"ファイルを読めません（{exc.strerror or exc}）", f"cannot read the file: {exc}")
    if stat.S_ISDIR(st.st_mode):
        log.fatal("ファイルではなくフォルダです", "the path is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        log.fatal(
            "通常のファイルではありません（デバイスや名前付きパイプなどは読みません）",
            "not a regular file (devices, pipes and the like are not read)",
        )
    too_big = (
        "ファイルが大きすぎます（{size}、上限 {limit}）。調査の集計表だけを保存したファイルにしてください。"
        "上限は dataset.yaml の limits: max_file_bytes で変えられます",
        "the file is too large ({size}; limit {limit}); save only the survey table, or raise "
        "limits: max_file_bytes in dataset.yaml",
    )
    if st.st_size > limits.max_file_bytes:
        log.fatal(*(t.format(size=size_text(st.st_size), limit=size_text(limits.max_file_bytes)) for t in too_big))
    try:
        with open(path, "rb") as fh:
            data = fh.read(limits.max_file_bytes + 1)
    except OSError as exc:
        log.fatal(f"ファイルを読めません（{exc.strerror or exc}）", f"cannot read the file: {exc}")
    if len(data) > limits.max_file_bytes:  # grew while we looked
        log.fatal(
            *(
                t.format(size=f"> {size_text(limits.max_file_bytes)}", limit=size_text(limits.max_file_bytes))
                for t in too_big
            )
        )
    return data


def read_sheets(path: Path, log: IssueLog, limits: Limits) -> tuple[list[Sheet], str]:
    """All sheets of the file as raw cell grids, and the format read ('xlsx' or 'csv')."""
    suffix = path.suffix.lower()
    data = read_file_bytes(path, log, limits)
    if not data.strip():
        log.fatal("ファイルが空です", "the file is empty")
    kind = sniff(data)
    if kind == "ole":
        if _utf16(b"EncryptionInfo") in data or _utf16(b"EncryptedPackage") in data:
            log.fatal(
                "パスワード付き（暗号化された）Excel ファイルは読めません。パスワードを外して .xlsx で保存し直してください",
                "password-protected (encrypted) workbook; remove the password and save as .xlsx",
            )
        log.fatal(
            "旧形式(.xls)またはパスワード付きの Excel ファイルは読めません。パスワードを外し .xlsx で保存し直してください",
            "legacy .xls or password-protected workbook; remove any password and save as .xlsx",
        )
    if kind in ("html", "spreadsheetml", "xml") and suffix in (*XLSX_SUFFIXES, ".xls"):
        what = KIND_JA[kind]
        log.fatal(
            f"拡張子は{suffix}ですが、中身は Excel ブックではなく {what} です（システムから書き出したファイルによくあります）。"
            "Excel で開き「Excel ブック (*.xlsx)」として保存し直してください",
            f"the file is named {suffix} but is {'an HTML page' if kind == 'html' else 'an XML file'} "
            f"({kind}), not an Excel workbook; open it in Excel and save it as .xlsx",
        )
    if suffix in XLSX_SUFFIXES or (suffix in (*TEXT_SUFFIXES, ".xls") and kind == "zip"):
        if kind != "zip":
            if kind == "text" and _looks_like_csv(data):
                log.add(
                    "warning",
                    f"拡張子は{suffix}ですが中身は CSV でした。CSV として読みました",
                    f"the file is named {suffix} but holds CSV text; read as CSV",
                )
                return [read_csv(data, log, limits)], "csv"
            log.fatal(
                f"Excel ファイルとして開けません（中身は{KIND_JA.get(kind, kind)}です。壊れている可能性があります）",
                f"cannot open as xlsx: the content is {kind}, not an Excel workbook (corrupt or wrong type)",
            )
        if suffix not in XLSX_SUFFIXES:
            log.add(
                "warning",
                f"拡張子は{suffix}ですが中身は Excel (.xlsx) でした。Excel として読みました",
                f"the file is named {suffix} but is an xlsx workbook; read as xlsx",
            )
        return read_xlsx(data, log, limits), "xlsx"
    if suffix == ".xls" and kind == "text" and _looks_like_csv(data):
        log.add(
            "warning",
            "拡張子は.xlsですが中身は CSV（テキスト）でした。CSV として読みました",
            "the file is named .xls but holds CSV text; read as CSV",
        )
        return [read_csv(data, log, limits)], "csv"
    if suffix in TEXT_SUFFIXES:
        if kind in ("pdf", "html", "xml", "spreadsheetml", "binary"):
            where_ja = where_en = ""
            if kind == "binary":
                line = _line_of(data, data.find(b"\x00"))
                where_ja, where_en = f"。{line}行目に NUL 文字があります", f"; NUL character on line {line}"
            log.fatal(
                f"CSV として読めません（中身は{KIND_JA[kind]}です{where_ja}）",
                f"cannot read as CSV: the content is {kind}{where_en}",
            )
        return [read_csv(data, log, limits)], "csv"
    if suffix == ".xls":
        log.fatal(
            "旧形式(.xls)の Excel ファイルは読めません。.xlsx で保存し直してください",
            "legacy .xls workbooks are not supported; save as .xlsx",
        )
    log.fatal(
        f"対応していないファイル形式です（{suffix or '拡張子なし'}）。Excel (.xlsx) か CSV で保存してください",
        f"unsupported file type {suffix!r}; save as .xlsx or .csv",
    )
    raise AssertionError("unreachable")


def _utf16(name: bytes) -> bytes:
    return name.decode("ascii").encode("utf-16-le")


def _looks_like_csv(data: bytes) -> bool:
    try:
        text = _decode(data)
    except UnicodeDecodeError:
        return False
    return "," in text or "\t" in text


# --- xlsx --------------------------------------------------------------------------------------


def read_xlsx(data: bytes, log: IssueLog, limits: Limits) -> list[Sheet]:
    from openpyxl import load_workbook

    def load(data_only: bool):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_workbook(_io.BytesIO(data), read_only=True, data_only=data_only)

    sheets: list[Sheet] = []
    try:
        archive = zipfile.ZipFile(_io.BytesIO(data))
        _check_unpacked(archive, log, limits)
        wb = load(True)
        try:
            for ws in wb.worksheets:
                _check_declared_size(ws, log, limits)
            with_formulas = _has_formulas(archive)
            formula_wb = load(False) if with_formulas else None
            try:
                for k, ws in enumerate(wb.worksheets):
                    grid, long_cells = _stream(ws, log, limits)
                    no_cache = _uncached_formulas(grid, formula_wb.worksheets[k]) if formula_wb else frozenset()
                    merges = _merges(archive, getattr(ws, "_worksheet_path", None))
                    sheets.append(Sheet(ws.title, grid, ws.sheet_state == "visible", no_cache, merges, long_cells))
            finally:
                if formula_wb is not None:
                    formula_wb.close()
        finally:
            wb.close()
    except SurveyError:
        raise
    except Exception as exc:  # openpyxl raises many kinds (zip, xml, key, value, type errors)
        log.fatal(
            "Excel ファイルとして開けません（壊れている可能性があります）",
            f"cannot open as xlsx (corrupt?): {type(exc).__name__}: {str(exc)[:200]}",
        )
    if not sheets:
        log.fatal("Excel ファイルにワークシートがありません", "the workbook has no worksheet")
    return sheets


def _check_unpacked(archive: zipfile.ZipFile, log: IssueLog, limits: Limits) -> None:
    """Reject a workbook whose parts unzip to more than the limit (the sizes zip itself enforces)."""
    total = sum(info.file_size for info in archive.infolist())
    if total > limits.max_unpacked_bytes:
        log.fatal(
            f"Excel ファイルを展開すると大きすぎます（{size_text(total)}、上限 {size_text(limits.max_unpacked_bytes)}）",
            f"the workbook unpacks to {size_text(total)} (limit {size_text(limits.max_unpacked_bytes)})",
        )


def _too_large(log: IssueLog, sheet: str, what_ja: str, what_en: str, limit_key: str, limit: int):
    log.fatal(
        f"シート『{sheet}』が大きすぎます（{what_ja}、上限 {limit:,}）。不要な行・列や書式を削除して保存し直してください"
        f"（Excel で Ctrl+End を押すと最後のセルが分かります）。上限は dataset.yaml の limits: {limit_key} で変えられます",
        f"sheet {sheet!r} is too large ({what_en}; limit {limit:,}); delete unused rows, columns and "
        f"formatting, or raise limits: {limit_key} in dataset.yaml",
    )


def _check_declared_size(ws, log: IssueLog, limits: Limits) -> None:
    """The size the sheet's <dimension> declares, checked before a single row is read."""
    rows, cols = ws.max_row, ws.max_column
    ref = ""
    if rows and cols:
        ref = f"A1:{col_letter(cols - 1)}{rows}"
    if rows and rows > limits.max_rows:
        _too_large(
            log,
            ws.title,
            f"宣言された範囲 {ref}、{rows:,}行",
            f"declared range {ref}, {rows:,} rows",
            "max_rows",
            limits.max_rows,
        )
    if cols and cols > limits.max_columns:
        _too_large(
            log,
            ws.title,
            f"宣言された範囲 {ref}、{cols:,}列",
            f"declared range {ref}, {cols:,} columns",
            "max_columns",
            limits.max_columns,
        )


def _stream(ws, log: IssueLog, limits: Limits) -> tuple[list[list[object]], list]:
    """The sheet's values row by row, stopping at the row limit; the actual size is checked too."""
    ws.reset_dimensions()  # the declared size may be wrong: read what is there
    grid, long_cells = [], []
    for r, row in enumerate(ws.iter_rows(values_only=True)):
        if r >= limits.max_rows:
            _too_large(
                log,
                ws.title,
                f"{limits.max_rows + 1:,}行目以降にもデータがあります",
                f"data beyond row {limits.max_rows:,}",
                "max_rows",
                limits.max_rows,
            )
        row = list(row)
        if len(row) > limits.max_columns:
            far = next((j for j in range(len(row) - 1, limits.max_columns - 1, -1) if row[j] is not None), None)
            if far is not None:
                _too_large(
                    log,
                    ws.title,
                    f"{col_letter(far)}{r + 1} にデータがあります（{far + 1:,}列目）",
                    f"a value in {col_letter(far)}{r + 1}, column {far + 1:,}",
                    "max_columns",
                    limits.max_columns,
                )
            del row[limits.max_columns :]  # only empty (formatted) cells beyond the limit
        for j, v in enumerate(row):
            if isinstance(v, str) and len(v) > limits.max_cell_chars:
                long_cells.append((r, j, len(v)))
        grid.append(row)
    return trim(grid), long_cells


def _merges(archive: zipfile.ZipFile, part: str | None) -> tuple[Merge, ...]:
    """The sheet's merged ranges, read from its XML (read-only mode does not parse them)."""
    if not part:
        return ()
    from openpyxl.utils.cell import range_boundaries
    from openpyxl.xml.functions import iterparse

    out = []
    with archive.open(part.lstrip("/")) as fh:
        for _, el in iterparse(fh):
            if el.tag.endswith("}mergeCell") and el.get("ref"):
                c1, r1, c2, r2 = range_boundaries(el.get("ref"))
                if None not in (c1, r1, c2, r2):
                    out.append(Merge(r1 - 1, c1 - 1, r2 - 1, c2 - 1))
            if not el.tag.endswith("}mergeCells"):
                el.clear()
    return tuple(out)


_FORMULA_RE = re.compile(rb"<(?:\w+:)?f[ >/]")


def _has_formulas(archive: zipfile.ZipFile) -> bool:
    """Whether any worksheet holds a formula (scanned in chunks, never loaded whole)."""
    for name in archive.namelist():
        if name.startswith("xl/worksheets/") and name.endswith(".xml"):
            with archive.open(name) as fh:
                tail = b""
                while chunk := fh.read(1 << 20):
                    if _FORMULA_RE.search(tail + chunk):
                        return True
                    tail = chunk[-16:]
    return False


def _uncached_formulas(grid: list[list[object]], formula_ws) -> frozenset:
    formula_ws.reset_dimensions()
    out = set()
    if not grid:
        return frozenset()
    for r, row in enumerate(formula_ws.iter_rows(max_row=len(grid), values_only=True)):
        values = grid[r] if r < len(grid) else []
        for j, v in enumerate(row):
            is_formula = (isinstance(v, str) and v.startswith("=")) or type(v).__name__ in (
                "ArrayFormula",
                "DataTableFormula",
            )
            if is_formula and (j >= len(values) or values[j] is None):
                out.add((r, j))
    return frozenset(out)


def trim(grid: list[list[object]]) -> list[list[object]]:
    """Drop trailing empty rows and trailing empty cells of each row."""
    out = []
    for row in grid:
        row = list(row)
        while row and cell_text(row[-1]) == "":
            row.pop()
        out.append(row)
    while out and not out[-1]:
        out.pop()
    return out


# --- text (CSV) --------------------------------------------------------------------------------


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


def decode_text(data: bytes, log: IssueLog) -> str:
    """The file as text (UTF-16 with BOM, UTF-8 with or without BOM, or CP932); errors name the line."""
    try:
        return _decode(data).lstrip("\ufeff")
    except UnicodeDecodeError:
        pass
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            data.decode("utf-16")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].decode("utf-16", errors="replace").count("\n") + 1
            log.fatal(
                f"UTF-16 のファイルとして{line}行目に読めない文字があります。UTF-8 か Shift_JIS で保存し直してください",
                f"cannot decode as UTF-16: invalid bytes on line {line}",
            )
    where = []
    for enc, label in (("utf-8-sig", "UTF-8"), ("cp932", "Shift_JIS (CP932)")):
        try:
            data.decode(enc)
        except UnicodeDecodeError as exc:
            where.append((label, _line_of(data, exc.start)))
    ja = "、".join(f"{label} としては{line}行目" for label, line in where)
    en = "; ".join(f"as {label}: invalid bytes on line {line}" for label, line in where)
    log.fatal(
        f"文字コードを判別できません（{ja}に読めない文字があります）。UTF-8 か Shift_JIS で保存し直してください",
        f"cannot decode as UTF-8, UTF-16 or CP932 (Shift_JIS): {en}",
    )
    raise AssertionError("unreachable")


_CSV_ERRORS = (
    (
        "unexpected end of data",
        '{start}行目で始まる引用符（"）が閉じられていません（ファイルの終わりまで閉じる引用符がありません）',
        "unterminated quote: the quoted field starting on line {start} is never closed",
    ),
    (
        "expected after",
        '{line}行目: 引用符（"）で囲んだ値のすぐ後に区切り文字がありません（{start}行目からの値）。引用符の閉じ忘れか、'
        '値の中の引用符が二重（""）になっていない可能性があります',
        "malformed quoting on line {line} (field starting on line {start}): a closing quote is not followed by a delimiter",
    ),
    (
        "field larger than field limit",
        "{start}行目からの値が長すぎます（{limit:,}文字超）。引用符の閉じ忘れの可能性があります",
        "field starting on line {start} is longer than {limit:,} characters (an unterminated quote?)",
    ),
)


def read_csv(data: bytes, log: IssueLog, limits: Limits) -> Sheet:
    text = decode_text(data, log)
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        log.fatal(
            f"{line}行目に NUL 文字があります（テキストファイルではないか、壊れています）",
            f"not a text file: NUL character on line {line}",
        )
    if not text.strip():
        log.fatal("ファイルが空です", "the file is empty")
    lines = text[:200_000].splitlines()[:50]
    n_tab, n_comma = sum("\t" in ln for ln in lines), sum("," in ln for ln in lines)
    delimiter = "\t" if n_tab > n_comma else ","
    reader = csv.reader(_io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[object]] = []
    starts, long_cells = [], []
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            msg = str(exc)
            for key, ja, en in _CSV_ERRORS:
                if key in msg:
                    fmt = dict(start=start, line=reader.line_num, limit=csv.field_size_limit())
                    log.fatal(f"CSV の形式が不正です: {ja.format(**fmt)}", f"malformed CSV: {en.format(**fmt)}")
            log.fatal(f"CSV の形式が不正です（{start}行目から: {msg}）", f"malformed CSV (from line {start}): {msg}")
        if len(rows) >= limits.max_rows:
            log.fatal(
                f"行数が上限（{limits.max_rows:,}行）を超えています（{start:,}行目）。上限は dataset.yaml の "
                "limits: max_rows で変えられます",
                f"more than {limits.max_rows:,} rows (line {start:,}); raise limits: max_rows in dataset.yaml",
            )
        if len(row) > limits.max_columns:
            if any(v.strip() for v in row[limits.max_columns :]):
                log.fatal(
                    f"{start}行目の列数が上限（{limits.max_columns:,}列）を超えています（{len(row):,}列）",
                    f"line {start} has {len(row):,} columns (limit {limits.max_columns:,})",
                )
            del row[limits.max_columns :]
        for j, v in enumerate(row):
            if len(v) > limits.max_cell_chars:
                long_cells.append((len(rows), j, len(v)))
        rows.append([_csv_cell(v) for v in row])
        starts.append(start)
        start = reader.line_num + 1
    grid = trim(rows)
    return Sheet(None, grid, long_cells=long_cells, lines=starts[: len(grid)])


def _csv_cell(value: str):
    # Excel's "keep leading zeros" CSV idiom: ="012025"
    m = re.fullmatch(r'\s*="(.*)"\s*', value)
    return m.group(1) if m else value


__all__ = [
    "KIND_JA",
    "TEXT_ENCODINGS",
    "TEXT_SUFFIXES",
    "XLSX_SUFFIXES",
    "Merge",
    "Sheet",
    "decode_text",
    "fill",
    "read_csv",
    "read_file_bytes",
    "read_sheets",
    "read_xlsx",
    "sniff",
    "trim",
]
