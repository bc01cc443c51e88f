"""Writing outputs: CSV (UTF-8 with BOM), XLSX and other bytes, atomically and deterministically.

Every writer renders into a temporary file beside the target and renames it into place, so a
crash never leaves half a file where a good one stood. XLSX files are made byte-reproducible by
fixing the zip entry times and the document's created/modified dates, which openpyxl sets to now.

Outputs are inert: no cell written here is ever a formula. Text that a spreadsheet would read as
a formula (starting with = + - @ tab or CR; OWASP "CSV injection") is stored as a string cell
with Excel's quote prefix in XLSX, and gets a leading apostrophe in CSV (OWASP's neutralisation).
Numbers stay numbers. A failed write names the file it was writing (OSError.filename).

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import errno
import io
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FIXED_DOC_TIME = "2000-01-01T00:00:00Z"
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")

#: First characters that make a spreadsheet read a cell as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Text that starts like a formula but cannot be one: a plain number ("-1.5", "+3", "1e-3") or a
# displayed interval with a wave dash ("-27.7〜30.2"; 〜/～ is no spreadsheet operator).
_INERT_TEXT = re.compile(
    r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?%?"
    r"|-?\d+(\.\d+)?\s?[〜～]\s?-?\d+(\.\d+)?"
)
#: errno values of a write that failed because of the disk or the permissions, not the program.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


@contextmanager
def atomic_path(target: Path | str, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto the target."""
    target = Path(target)
    tmp_path = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix, dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, target)
    except OSError as exc:
        # a full disk reports no file name ("[Errno 28] No space left on device"): name the target
        if exc.errno in WRITE_ERRNOS and (
            exc.filename is None or tmp_path is None or str(exc.filename) == str(tmp_path)
        ):
            raise OSError(exc.errno, os.strerror(exc.errno), str(target)) from exc
        raise
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def write_error_text(err: int | None, path: object) -> tuple[str, str] | None:
    """(ja, en) for a write that failed for lack of space or permission; None for other errors."""
    where = f": {path}" if path else ""
    if err in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return (f"ディスクの空き容量が足りないため書き込めませんでした{where}", f"no space left on device{where}")
    if err == errno.EROFS:
        return (f"読み取り専用の場所のため書き込めませんでした{where}", f"read-only file system{where}")
    if err in (errno.EACCES, errno.EPERM):
        return (f"書き込む権限がないため書き込めませんでした{where}", f"permission denied{where}")
    return None


def write_bytes(target: Path | str, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: Path | str, text: str, encoding: str = "utf-8") -> Path:
    return write_bytes(target, text.encode(encoding))


def looks_like_formula(text: str) -> bool:
    """True for text a spreadsheet could run as a formula (starts with = + - @ tab or CR)."""
    return text.startswith(FORMULA_PREFIXES) and not _INERT_TEXT.fullmatch(text)


def neutralize_csv_text(value):
    """OWASP CSV-injection neutralisation: prefix an apostrophe to formula-like text.

    Only strings are touched; numbers (negative ones too) and text that is a plain number or a
    displayed interval such as "-27.7〜30.2" are returned unchanged. A CR inside text becomes LF
    (Excel's line break within a cell), which the CSV writer quotes.
    """
    if isinstance(value, str) and looks_like_formula(value):
        value = "'" + value
    if isinstance(value, str) and "\r" in value:
        # the csv module does not quote a bare CR, which would end the row: use Excel's in-cell LF
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value


def _neutralize_labels(index: pd.Index) -> pd.Index:
    names = [neutralize_csv_text(n) for n in index.names]
    if isinstance(index, pd.MultiIndex):
        return pd.MultiIndex.from_tuples([tuple(neutralize_csv_text(v) for v in t) for t in index], names=names)
    if index.dtype == object or pd.api.types.is_string_dtype(index.dtype):
        return pd.Index([neutralize_csv_text(v) for v in index], name=names[0], dtype=object)
    return index.rename(names[0])


def neutralize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy of `frame` whose text cells, headers and index labels are CSV-injection safe."""
    out = frame.copy()
    for i in range(out.shape[1]):
        col = out.iloc[:, i]
        if col.dtype == object or isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(col.dtype):
            out.isetitem(i, col.astype(object).map(neutralize_csv_text))
    out.columns = _neutralize_labels(out.columns)
    out.index = _neutralize_labels(out.index)
    return out


def write_csv(frame: pd.DataFrame, target: Path | str, index: bool = False) -> Path:
    """CSV in UTF-8 with BOM and CRLF-free newlines, so Excel on Windows opens Japanese text.

    Text cells that a spreadsheet would run as a formula are neutralised (see neutralize_csv_text).
    """
    text = neutralize_frame(frame).to_csv(index=index, lineterminator="\n")
    return write_bytes(target, text.encode("utf-8-sig"))


def reproducible_zip(data: bytes) -> bytes:
    """Rewrite an OOXML zip with fixed entry times and fixed document dates."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            payload = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                payload = re.sub(
                    rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                    lambda m: m.group(1) + FIXED_DOC_TIME.encode() + m.group(3),
                    payload,
                )
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, payload)
    return out.getvalue()


def defuse_formulas(workbook) -> int:
    """Turn every formula cell of an openpyxl workbook into a text cell; return how many.

    openpyxl makes any string starting with "=" a formula; the project never means one.
    """
    n = 0
    for ws in workbook.worksheets:
        for cell in ws._cells.values():  # only existing cells (iter_rows would create empty ones)
            if cell.data_type == "f":
                cell.data_type = "s"
                cell.quotePrefix = True
                n += 1
    return n


def save_workbook(workbook, target: Path | str) -> Path:
    """Save an openpyxl workbook atomically and byte-reproducibly, with no formula cells."""
    defuse_formulas(workbook)
    buf = io.BytesIO()
    workbook.save(buf)
    return write_bytes(target, reproducible_zip(buf.getvalue()))


def sheet_name(name: str, used: set[str]) -> str:
    """Excel sheet name: no []:*?/\\, at most 31 characters, unique within the workbook."""
    base = _SHEET_BAD.sub("_", name)[:31] or "Sheet"
    candidate, n = base, 2
    while candidate in used:
        tail = f"_{n}"
        candidate = base[: 31 - len(tail)] + tail
        n += 1
    used.add(candidate)
    return candidate


def write_xlsx(
    tables: Mapping[str, pd.DataFrame],
    target: Path | str,
    titles: Mapping[str, str] | None = None,
    note: str | None = None,
) -> Path:
    """One sheet per table, ready for Excel users and for print.

    Layout of each sheet: row 1 title, row 2 note (e.g. 架空データ), row 4 header, data below.
    Numbers stay numbers with display formats by column kind (analysis.display: 0.0 for
    percentages and points, 0.000 with "<0.001" for p-values, 0.00 for odds ratios, whole numbers
    for counts); a missing number is an empty cell, never text. Every sheet has an autofilter,
    a frozen header, column widths fitted to Japanese text, and an A4 print setup (fit to the
    page width, landscape for wide tables, header row repeated, title and page number in the
    header and footer).
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    from .display import EXCEL_FORMATS, column_kind, format_value

    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    for key, frame in tables.items():
        ws = wb.create_sheet(sheet_name(key, used))
        title = (titles or {}).get(key, key)
        _put(ws, 1, 1, title).font = Font(bold=True, size=12)
        if note:
            _put(ws, 2, 1, note).font = Font(bold=True, color="C00000")
        frame = frame.reset_index() if _has_named_index(frame) else frame
        kinds = [column_kind(str(c), frame[c].dtype) for c in frame.columns]
        for j, (col, kind) in enumerate(zip(frame.columns, kinds, strict=False), start=1):
            c = _put(ws, 4, j, str(col))
            c.font = Font(bold=True)
            c.fill = header_fill
            c.alignment = Alignment(wrap_text=True, vertical="center")
            shown = [format_value(v, kind) for v in frame[col]]
            header_width = max(_display_width(part) for part in str(col).split("\n"))
            width = max([min(header_width, 24)] + [_display_width(v) for v in shown])
            ws.column_dimensions[get_column_letter(j)].width = min(max(width + 2, 6), 60)
        for i, row in enumerate(frame.itertuples(index=False), start=5):
            for j, (value, kind) in enumerate(zip(row, kinds, strict=False), start=1):
                cell = _put(ws, i, j, _excel_value(value))
                if kind != "text":
                    cell.number_format = EXCEL_FORMATS[kind]
        last_row, last_col = 4 + len(frame), get_column_letter(max(1, len(frame.columns)))
        ws.auto_filter.ref = f"A4:{last_col}{max(last_row, 4)}"
        ws.freeze_panes = "B5" if len(frame.columns) > 6 else "A5"
        ws.print_title_rows = "4:4"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.orientation = "landscape" if len(frame.columns) > 6 else "portrait"
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.print_options.horizontalCentered = True
        ws.oddHeader.center.text = title[:250]
        ws.oddFooter.left.text = (note or "")[:120]
        ws.oddFooter.right.text = "&P / &N ページ"
    wb.properties.creator = "analysis"
    return save_workbook(wb, target)


def _put(ws, row: int, column: int, value):
    """Write one cell; text is always a string cell, never a formula (quote prefix if formula-like)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)  # control characters openpyxl refuses
    cell = ws.cell(row=row, column=column, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
        if value.startswith(FORMULA_PREFIXES):
            cell.quotePrefix = True
    return cell


def _has_named_index(frame: pd.DataFrame) -> bool:
    return any(n is not None for n in frame.index.names)


def _cell(value) -> str:
    return "" if value is None else str(value)


def _display_width(text: str) -> int:
    # East Asian characters take two columns.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _excel_value(value):
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value


__all__ = [
    "FIXED_DOC_TIME",
    "FIXED_ZIP_TIME",
    "FORMULA_PREFIXES",
    "WRITE_ERRNOS",
    "atomic_path",
    "defuse_formulas",
    "looks_like_formula",
    "neutralize_csv_text",
    "neutralize_frame",
    "reproducible_zip",
    "save_workbook",
    "sheet_name",
    "write_bytes",
    "write_csv",
    "write_error_text",
    "write_text",
    "write_xlsx",
]
