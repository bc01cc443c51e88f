"""Writing outputs: CSV (UTF-8 with BOM), XLSX and other bytes, atomically and deterministically.

Every writer renders into a temporary file beside the target and renames it into place, so a
crash never leaves half a file where a good one stood. XLSX files are made byte-reproducible by
fixing the zip entry times and the document's created/modified dates, which openpyxl sets to now.
"""
from __future__ import annotations

import io
import os
import re
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import pandas as pd

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FIXED_DOC_TIME = "2000-01-01T00:00:00Z"
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


@contextmanager
def atomic_path(target: Path | str, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto the target."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix,
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(target: Path | str, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: Path | str, text: str, encoding: str = "utf-8") -> Path:
    return write_bytes(target, text.encode(encoding))


def write_csv(frame: pd.DataFrame, target: Path | str, index: bool = False) -> Path:
    """CSV in UTF-8 with BOM and CRLF-free newlines, so Excel on Windows opens Japanese text."""
    text = frame.to_csv(index=index, lineterminator="\n")
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


def save_workbook(workbook, target: Path | str) -> Path:
    """Save an openpyxl workbook atomically and byte-reproducibly."""
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


def write_xlsx(tables: Mapping[str, pd.DataFrame], target: Path | str,
               titles: Mapping[str, str] | None = None, note: str | None = None) -> Path:
    """One sheet per table with Japanese headers, a title row, an optional note, frozen header.

    Layout of each sheet: row 1 title, row 2 note (e.g. 架空データ), row 4 header, data below.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    for key, frame in tables.items():
        ws = wb.create_sheet(sheet_name(key, used))
        ws.cell(row=1, column=1, value=(titles or {}).get(key, key)).font = Font(bold=True, size=12)
        if note:
            ws.cell(row=2, column=1, value=note).font = Font(bold=True, color="C00000")
        frame = frame.reset_index() if _has_named_index(frame) else frame
        for j, col in enumerate(frame.columns, start=1):
            c = ws.cell(row=4, column=j, value=str(col))
            c.font = Font(bold=True)
            c.fill = header_fill
            c.alignment = Alignment(wrap_text=True, vertical="center")
            width = max([_display_width(str(col))] + [_display_width(_cell(v)) for v in frame[col]])
            ws.column_dimensions[get_column_letter(j)].width = min(max(width + 2, 8), 60)
        for i, row in enumerate(frame.itertuples(index=False), start=5):
            for j, value in enumerate(row, start=1):
                ws.cell(row=i, column=j, value=_excel_value(value))
        ws.freeze_panes = "A5"
    wb.properties.creator = "analysis"
    return save_workbook(wb, target)


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
