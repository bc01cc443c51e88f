"""Survey files in the shapes prefectures actually send, made from a tidy table (never by hand).

Everything starts from a tidy frame (normally the clean sample's FY2025 table, read by
`analysis.io.read_survey`). `build_grid` lays it out as a sheet — title rows, 1–3 header rows with
or without merged cells, answers in any codebook spelling, codes in any accepted shape, extra
columns, blank and total rows — and `save` writes that grid as .xlsx (optionally after a cover
sheet) or as .csv/.tsv in any encoding. Defects are small edits of a `Grid` (`set`, `drop_column`,
`duplicate`, `remove`, `append_row`) or the binary helpers at the bottom (empty, truncated,
encrypted OOXML container, legacy .xls container, PDF), so every fixture is reproducible.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import cycle
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import codes
from analysis.codebook import Codebook
from analysis.wareki import wareki_fy

STATUS_TEXT = {"implemented": "実施", "preparing": "移行準備", "not_implemented": "未実施"}
TITLE_JA = "包括的な支援体制に係る市町アンケート調査"
# Question texts split over two header rows (the concatenation is the header or an alias).
SPLIT_TEXT = {"jusou_status": ("重層的支援体制整備事業", "実施状況")}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _spellings(value) -> list:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


@dataclass
class Layout:
    """How a tidy table is laid out as a sheet. Defaults reproduce the sample's shape."""

    title: Sequence[str] | None = None  # rows above the header; None: sample-like title
    header_rows: int = 2  # 1: questions only; 2: group over question; 3: group + split text
    merge: bool = True  # merge group runs (and vertical id cells); xlsx only
    split_all: bool = False  # with 3 header rows: split every question in two
    header_style: str = "ja"  # ja | alias | numbered (問1 …) | hint (… (○/×))
    code_style: str | Sequence[str] = "str6"  # str6 str5 int6 int5 fullwidth hyphen name none blank
    name_style: str = "same"  # same | prefixed (架空県…) | blank | none (no column)
    yes: Any = "○"  # a spelling or a list cycled over the cells
    no: Any = "×"
    missing: Any = None  # None = empty cell
    status: dict = field(default_factory=lambda: dict(STATUS_TEXT))  # value -> spelling(s)
    extra_columns: Sequence[str] = ()  # unknown columns added at the end (担当課 …)
    blank_every: int = 0  # a blank row after every n-th data row
    total_rows: Sequence[str] = ()  # total rows (計, 合計, 県計) after the data
    notes_below: Sequence[str] = ()  # foot-note rows below the table
    shuffle_columns: bool = False  # question columns in reverse order
    row_order: str = "code"  # code | reverse
    cover_sheet: bool = False  # xlsx: a cover sheet before the data sheet
    sheet_name: str = "回答一覧"


@dataclass
class Grid:
    """A sheet as rows of cell values plus merged ranges (1-based, inclusive)."""

    rows: list[list[Any]]
    merges: list[tuple[int, int, int, int]]
    header_end: int  # 0-based index of the last header row
    columns: list[str | None]  # variable of each column (None: extra column)
    row_of: dict[str, int]  # code -> 0-based row index
    layout: Layout
    appended: list[int] = field(default_factory=list)  # 0-based rows added by append_row

    def col(self, var: str) -> int:
        return self.columns.index(var)

    def excel_row(self, code: str) -> int:
        return self.row_of[code] + 1

    def set(self, code: str, var: str, value) -> Grid:
        self.rows[self.row_of[code]][self.col(var)] = value
        return self

    def set_cell(self, r: int, c: int, value) -> Grid:
        """0-based row / column."""
        while len(self.rows) <= r:
            self.rows.append([])
        while len(self.rows[r]) <= c:
            self.rows[r].append(None)
        self.rows[r][c] = value
        return self

    def drop_column(self, var: str) -> Grid:
        j = self.col(var)
        for row in self.rows:
            if j < len(row):
                del row[j]
        self.columns.pop(j)
        kept = []
        for r1, c1, r2, c2 in self.merges:
            if c1 - 1 <= j <= c2 - 1:
                if c1 == c2:
                    continue
                c2 -= 1
            elif c1 - 1 > j:
                c1, c2 = c1 - 1, c2 - 1
            if (r1, c1) != (r2, c2):
                kept.append((r1, c1, r2, c2))
        self.merges = kept
        return self

    def duplicate(self, code: str) -> Grid:
        r = self.row_of[code]
        self.rows.insert(r + 1, list(self.rows[r]))
        self._shift(r + 1)
        return self

    def remove(self, code: str) -> Grid:
        r = self.row_of.pop(code)
        del self.rows[r]
        self._shift(r, -1)
        return self

    def append_row(self, values: dict) -> int:
        """A row after the last data (or appended) row, {var: value}; returns its Excel row number."""
        r = max([*self.row_of.values(), *self.appended]) + 1
        row = [None] * len(self.columns)
        for var, v in values.items():
            row[self.col(var)] = v
        self.rows.insert(r, row)
        self._shift(r)
        self.appended.append(r)
        return r + 1

    def _shift(self, start: int, by: int = 1):
        self.row_of = {c: (r + by if r >= start else r) for c, r in self.row_of.items()}
        self.appended = [r + by if r >= start else r for r in self.appended]


def _code_cell(code: str, name: str, style: str):
    if style == "str6":
        return code
    if style == "str5":
        return code[:5]
    if style == "int6":
        return int(code)  # 011002 -> 11002: the leading zero is lost
    if style == "int5":
        return int(code[:5])  # 01100 -> 1100
    if style == "float6":
        return float(int(code))
    if style == "fullwidth":
        return code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    if style == "hyphen":
        return f"{code[:2]}-{code[2:5]}-{code[5]}"
    if style == "name":
        return name  # the municipality name in the code column
    if style == "blank":
        return None
    raise ValueError(style)


def _header_text(q, style: str, k: int) -> str:
    if style == "ja":
        return q.header_ja
    if style == "alias":
        return q.aliases[0] if q.aliases else q.header_ja
    if style == "numbered":
        return f"問{k + 1} {q.header_ja}"
    if style == "hint":
        return f"{q.header_ja}（○/×）" if q.answers == "yes_no" else q.header_ja
    raise ValueError(style)


def build_grid(
    tidy: pd.DataFrame, book: Codebook, layout: Layout | None = None, fiscal_year: int | None = None
) -> Grid:
    layout = layout or Layout()
    fy = (
        fiscal_year
        if fiscal_year is not None
        else (int(tidy["fiscal_year"].dropna().iloc[0]) if tidy["fiscal_year"].notna().any() else None)
    )
    if layout.title is None:
        title = [
            f"{wareki_fy(fy)} {TITLE_JA} 集計表（架空県）" if fy else f"{TITLE_JA} 集計表",
            "【架空データ】実在の自治体・調査とは関係ありません",
            "",
        ]
    else:
        title = list(layout.title)
    code_styles = cycle(_spellings(layout.code_style))
    with_code = layout.code_style != "none"
    with_name = layout.name_style != "none"

    cols: list[tuple[str, str, str | None, Any]] = []  # (group, header, var, question)
    if with_code:
        cols.append(("基本情報", book.id_columns["code"]["header_ja"], "code", None))
    if with_name:
        cols.append(("基本情報", book.id_columns["name"]["header_ja"], "name", None))
    qcols = [(q.group_ja, _header_text(q, layout.header_style, k), q.variable, q) for k, q in enumerate(book.questions)]
    if layout.shuffle_columns:
        qcols = qcols[::-1]
    cols += qcols
    cols += [("", extra, None, None) for extra in layout.extra_columns]

    rows: list[list[Any]] = [[t] if t else [] for t in title]
    merges: list[tuple[int, int, int, int]] = []
    top = len(rows)  # 0-based index of the first header row
    n = len(cols)
    if layout.header_rows == 1:
        rows.append([h for _, h, _, _ in cols])
    elif layout.header_rows == 2:
        rows.append(_group_row(cols, layout.merge))
        rows.append([h for _, h, _, _ in cols])
        if layout.merge:
            merges += _group_merges(cols, top + 1)
    elif layout.header_rows == 3:
        rows.append(_group_row(cols, layout.merge))
        upper, lower = [], []
        for j, (_, h, var, q) in enumerate(cols):
            if var in SPLIT_TEXT and layout.header_style == "ja":
                a, b = SPLIT_TEXT[var]
            elif layout.split_all and q is not None and len(h) >= 4:
                a, b = h[: len(h) // 2], h[len(h) // 2 :]
            else:
                a, b = h, (h if layout.merge else None)
                if layout.merge:
                    merges.append((top + 2, j + 1, top + 3, j + 1))
            upper.append(a)
            lower.append(b)
        rows += [upper, lower]
        if layout.merge:
            merges += _group_merges(cols, top + 1)
    else:
        raise ValueError(layout.header_rows)
    header_end = len(rows) - 1

    status_cycles = {k: cycle(_spellings(v)) for k, v in layout.status.items()}
    yes, no, missing = (cycle(_spellings(x)) for x in (layout.yes, layout.no, layout.missing))
    row_of: dict[str, int] = {}
    records = tidy.sort_values("code", ascending=layout.row_order != "reverse").to_dict("records")
    for i, rec in enumerate(records):
        row = []
        for _, _, var, q in cols:
            if var == "code":
                row.append(_code_cell(rec["code"], rec["name"], next(code_styles)))
            elif var == "name":
                name = rec["name"]
                row.append({"same": name, "prefixed": f"架空県{name}", "blank": None}[layout.name_style])
            elif q is None:
                row.append("担当者" if var is None else None)
            else:
                v = rec[var]
                if v is None or v is pd.NA or (isinstance(v, float) and v != v):
                    row.append(next(missing) if q.answers != "text" else None)
                elif q.answers == "yes_no":
                    row.append(next(yes) if bool(v) else next(no))
                elif q.answers == "text":
                    row.append(v)
                else:
                    row.append(next(status_cycles[v]))
        row_of[rec["code"]] = len(rows)
        rows.append(row)
        if layout.blank_every and (i + 1) % layout.blank_every == 0:
            rows.append([None] * n)
    for label in layout.total_rows:
        row = [None] * n
        first = 1 if with_code and with_name else 0
        row[first] = label
        for j, (_, _, var, q) in enumerate(cols):
            if q is not None and q.answers == "yes_no":
                row[j] = int(tidy[var].fillna(False).astype(bool).sum())
        rows.append(row)
    for note in layout.notes_below:
        rows.append([note])
    return Grid(rows, merges, header_end, [c[2] for c in cols], row_of, layout)


def _group_row(cols, merge: bool) -> list:
    out, prev = [], object()
    for g, _, _, _ in cols:
        out.append(g if (merge or g != prev) else None)
        prev = g
    return out


def _group_merges(cols, excel_row: int) -> list[tuple[int, int, int, int]]:
    out, start = [], 0
    for j in range(1, len(cols) + 1):
        if j == len(cols) or cols[j][0] != cols[start][0]:
            if j - 1 > start and cols[start][0]:
                out.append((excel_row, start + 1, excel_row, j))
            start = j
    return out


# --- writing ---------------------------------------------------------------------------------


def save(
    grid: Grid, path: Path, encoding: str = "utf-8-sig", newline: str = "\r\n", delimiter: str | None = None
) -> Path:
    """Write the grid as .xlsx (by suffix) or as delimited text in `encoding`."""
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _save_xlsx(grid, path)
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(
        buf, lineterminator=newline, delimiter=delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    )
    for row in grid.rows:
        writer.writerow(["" if v is None else v for v in row])
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def _save_xlsx(grid: Grid, path: Path) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    if grid.layout.cover_sheet:
        ws.title = "表紙"
        ws["A1"] = f"{TITLE_JA}（回答票）"
        ws["A3"] = "提出日"
        ws["B3"] = "令和7年6月30日"
        ws["A4"] = "担当課"
        ws["B4"] = "福祉政策課"
        ws["A5"] = "市町村名"  # a cover sheet can name the id column too
        ws["B5"] = "（記入してください）"
        ws["A6"] = "次のシートに回答を入力してください。"
        ws = wb.create_sheet(grid.layout.sheet_name)
    else:
        ws.title = grid.layout.sheet_name
    for r, row in enumerate(grid.rows, start=1):
        for c, v in enumerate(row, start=1):
            if v is not None:
                ws.cell(row=r, column=c, value=v)
    for r1, c1, r2, c2 in grid.merges:
        ws.merge_cells(start_row=r1, start_column=c1, end_row=r2, end_column=c2)
    wb.save(path)
    return path


def write_survey(tidy: pd.DataFrame, book: Codebook, path: Path, layout: Layout | None = None, **save_kw) -> Path:
    return save(build_grid(tidy, book, layout), path, **save_kw)


# --- other prefectures -----------------------------------------------------------------------


def relabel(
    tidy: pd.DataFrame, master: pd.DataFrame, national: pd.DataFrame, pref_code: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same answers under real codes of `pref_code` (e.g. "01", whose codes lose a leading zero).

    Returns (tidy, master) with codes and names replaced by the first municipalities of that
    prefecture in the national code list.
    """
    real = national[(national["pref_code"] == pref_code) & (national["municipality"] != "")]
    real = real.sort_values("lg_code").head(len(master))
    mapping = dict(zip(master["code"], real["lg_code"], strict=False))
    names = dict(zip(real["lg_code"], real["municipality"], strict=False))
    new_master = master.copy()
    new_master["code"] = new_master["code"].map(mapping)
    new_master["name"] = new_master["code"].map(names)
    new_master = new_master.sort_values("code").reset_index(drop=True)
    new_tidy = tidy.copy()
    new_tidy["code"] = new_tidy["code"].map(mapping).astype("string")
    new_tidy["name"] = new_tidy["code"].map(names).astype("string")
    return new_tidy.sort_values("code").reset_index(drop=True), new_master


def code_with_check_digit(code5: str) -> str:
    return code5 + str(codes.check_digit(code5))


def unknown_code(master: pd.DataFrame, prefix: str) -> str:
    """A valid code of prefecture `prefix` that is not in the master."""
    known = set(master["code"])
    for k in range(100, 1000):
        code = code_with_check_digit(f"{prefix}{k:03d}")
        if code not in known:
            return code
    raise AssertionError("no free code")


def wrong_check_digit(code: str) -> str:
    return code[:5] + str((int(code[5]) + 1) % 10)


# --- binary fixtures -------------------------------------------------------------------------


def empty(dst: Path) -> Path:
    dst.write_bytes(b"")
    return dst


def truncated(src: Path, dst: Path, keep: float = 0.5) -> Path:
    data = Path(src).read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def _cfb(dst: Path, stream_names: Sequence[str]) -> Path:
    """A compound-file (OLE2) container with the given stream names and empty streams.

    Encrypted OOXML workbooks are such containers with EncryptionInfo / EncryptedPackage
    streams; legacy .xls files hold a Workbook stream. The header and directory follow
    [MS-CFB] (version 3, 512-byte sectors); stream contents are not needed by the reader.
    """
    sector = 512
    ENDOFCHAIN, FREESECT, FATSECT = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD
    header = bytearray(sector)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<I", header, 44, 1)  # number of FAT sectors
    struct.pack_into("<I", header, 48, 1)  # first directory sector
    struct.pack_into("<I", header, 56, 4096)  # mini stream cutoff
    struct.pack_into("<I", header, 60, ENDOFCHAIN)  # first mini FAT sector
    struct.pack_into("<I", header, 68, ENDOFCHAIN)  # first DIFAT sector
    struct.pack_into("<I", header, 76, 0)  # DIFAT[0] = FAT in sector 0
    for k in range(1, 109):
        struct.pack_into("<I", header, 76 + 4 * k, FREESECT)
    fat = bytearray(b"\xff" * sector)
    struct.pack_into("<II", fat, 0, FATSECT, ENDOFCHAIN)
    directory = bytearray()
    entries = [("Root Entry", 5)] + [(n, 2) for n in stream_names]
    for k, (name, kind) in enumerate(entries):
        e = bytearray(128)
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        e[0 : len(encoded)] = encoded
        struct.pack_into("<HBB", e, 64, len(encoded), kind, 1)
        left = right = child = 0xFFFFFFFF
        if k == 0 and len(entries) > 1:
            child = 1
        elif 0 < k < len(entries) - 1:
            right = k + 1
        struct.pack_into("<III", e, 68, left, right, child)
        struct.pack_into("<I", e, 116, ENDOFCHAIN)
        directory += e
    directory += b"\x00" * (-len(directory) % sector)
    dst.write_bytes(bytes(header) + bytes(fat) + bytes(directory))
    return dst


def encrypted_ooxml(dst: Path) -> Path:
    """What Excel writes for a password-protected .xlsx: an OLE2 container, not a zip."""
    return _cfb(dst, ["EncryptionInfo", "EncryptedPackage", "\x06DataSpaces"])


def legacy_xls(dst: Path) -> Path:
    return _cfb(dst, ["Workbook", "\x05SummaryInformation"])


def pdf(dst: Path) -> Path:
    dst.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
    return dst


# --- pathological files (fault injection) -----------------------------------------------------


def far_cell_xlsx(dst: Path, cell: str = "A1048576", dimension: str | None = "declared") -> Path:
    """A tiny workbook with a value in A1 and in `cell` (e.g. XFD1048576).

    dimension: "declared" keeps the <dimension> openpyxl writes (A1:<cell>), None removes it, and
    any other text (e.g. "A1:B2") replaces it with that (a lying declaration).
    """
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "回答一覧"
    ws["A1"] = "市町村コード"
    ws[cell] = "x"
    wb.save(dst)
    if dimension != "declared":
        repl = b"" if dimension is None else f'<dimension ref="{dimension}"/>'.encode()
        rewrite_part(dst, "xl/worksheets/sheet1.xml", lambda xml: re.sub(rb"<dimension [^>]*/>", repl, xml))
    return dst


def rewrite_part(path: Path, part: str, edit) -> Path:
    """Rewrite one part of a zip package (xlsx) in place with `edit(bytes) -> bytes`."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        items = [(info, zf.read(info.filename)) for info in zf.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in items:
            zf.writestr(info.filename, edit(data) if info.filename == part else data)
    return path


def merge_keeping_values(path: Path, ref: str, sheet: str | None = None) -> Path:
    """Declare `ref` merged without clearing the covered cells (as LibreOffice's "keep contents" does)."""
    from openpyxl import load_workbook
    from openpyxl.worksheet.cell_range import CellRange

    wb = load_workbook(path)
    ws = wb[sheet] if sheet else wb.active
    ws.merged_cells.add(CellRange(ref))
    wb.save(path)
    return path


def merge(path: Path, ref: str | Sequence[str], sheet: str | None = None) -> Path:
    """Merge `ref` (or each of several ranges, in turn) the way Excel does: only the top-left value is kept."""
    from openpyxl import load_workbook

    wb = load_workbook(path)
    ws = wb[sheet] if sheet else wb.active
    for cells in [ref] if isinstance(ref, str) else ref:
        ws.merge_cells(cells)
    wb.save(path)
    return path


def snapshot(folder: Path) -> dict:
    """sha256 of every file under `folder` (recursively), to prove nothing was written."""
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(Path(folder).rglob("*")) if p.is_file()}
