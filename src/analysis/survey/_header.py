"""Finding the table's header: which rows it spans and which column holds which codebook variable.

Header cells are compared with the codebook's header texts and aliases after NFKC with white
space removed, with and without a leading question number (問1, (1), ①) and a trailing hint
such as (○×で回答). A header that matches nothing but is close to a question the table lacks is
offered as a suggestion ("did you mean"), never taken as that question.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from ..codebook import Codebook, header_key
from ._answers import map_answer
from ._cells import cell_text, raw

MAX_HEADER_SCAN = 30

_ENUM_RE = re.compile(
    r"^(?:【[^】]*】|\[[^\]]*\]|問\d+(?:[-.の]\d+)*[.、:)]?|\(\d+\)|\d+(?:[-.]\d+)*[.、:)]"
    r"|[a-zA-Z][.)]|[ア-ン][.、)])+"
)
_TRAIL_RE = re.compile(r"(?:\([^()]*\)|【[^】]*】|\[[^\]]*\]|※.*|\*+)$")


def variants(text: str) -> set[str]:
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


def key_table(book: Codebook) -> dict[str, str]:
    """header key -> variable (code, name or a question)."""
    table: dict[str, str] = {}
    for var, spec in book.id_columns.items():
        for h in (spec["header_ja"], *spec.get("aliases", ())):
            table.setdefault(header_key(h), var)
    for q in book.questions:
        for k in q.header_keys:
            table.setdefault(k, q.variable)
    return table


def suggest(text: str, table: dict[str, str], wanted: set[str], cutoff: float = 0.6) -> str | None:
    """The variable among `wanted` whose header text is closest to `text` (difflib), if close enough."""
    keys = [k for k, v in table.items() if v in wanted]
    best, best_ratio = None, cutoff
    for variant in variants(text):
        for k in difflib.get_close_matches(variant, keys, n=1, cutoff=cutoff):
            ratio = difflib.SequenceMatcher(None, variant, k).ratio()
            if ratio > best_ratio or best is None:
                best, best_ratio = table[k], ratio
    return best


@dataclass
class Header:
    id_row: int  # 0-based row holding the code / name header cell
    top: int  # first row considered (may be above id_row)
    bottom: int  # last header row; data starts below it
    colmap: dict[int, str]  # column -> variable
    labels: dict[int, str]  # column -> header text shown in issues
    quality: dict[int, tuple]  # column -> (ends at the column's last header cell, length)
    losers: dict[int, str]  # column -> variable it also matched but lost to another column
    matched: dict[int, tuple]  # column -> the header cells its match was made of
    absorbed: list[int] = field(default_factory=list)  # rows taken into the header as continuation

    @property
    def score(self) -> int:
        return len(self.colmap)


def column_cells(grid, rows: range, j: int, as_typed: bool = False) -> list[str]:
    """A column's non-empty header texts from top to bottom (vertical merges counted once);
    NFKC-normalised, or as typed with `as_typed`."""
    out: list[str] = []
    last = None
    for r in rows:
        row = grid[r]
        t = cell_text(row[j]) if j < len(row) else ""
        if t and t != last:
            out.append(raw(row[j]) if as_typed else t)
            last = t
    return out


def _match_columns(
    grid, top: int, bottom: int, table: dict[str, str]
) -> tuple[dict[int, str], dict[int, str], dict[int, tuple], dict[int, str], dict[int, tuple]]:
    """(colmap, labels, quality, losers, matched) of rows top..bottom: Header's fields in order."""
    rows = range(top, bottom + 1)
    width = max((len(grid[r]) for r in rows), default=0)
    best: dict[int, tuple] = {}
    for j in range(width):
        cells = column_cells(grid, rows, j)
        shown = column_cells(grid, rows, j, as_typed=True)
        cands = []
        n = len(cells)
        for a in range(n):
            for b in range(a + 1, n + 1):
                text = "".join(cells[a:b])
                for key in variants(text):
                    var = table.get(key)
                    if var:
                        cands.append(((b == n, len(key)), var, tuple(cells[a:b]), " ".join(shown[a:b])))
        if cands:
            best[j] = max(cands, key=lambda c: c[0])
    # each variable goes to its best column (ties: leftmost)
    owner: dict[str, int] = {}
    for j, (_q, var, _, _) in sorted(best.items(), key=lambda kv: (tuple(-x for x in kv[1][0]), kv[0])):
        owner.setdefault(var, j)
    colmap = {j: var for var, j in owner.items()}
    losers = {j: var for j, (_, var, _, _) in best.items() if j not in colmap}
    labels = {j: best[j][3] for j in best}
    quality = {j: best[j][0] for j in best}
    matched = {j: best[j][2] for j in best}
    return dict(sorted(colmap.items())), labels, quality, losers, matched


def is_id_header_cell(value, table: dict[str, str]) -> bool:
    t = cell_text(value)
    return bool(t) and any(table.get(k) in ("code", "name") for k in variants(t))


def find_header(
    grid: list[list[object]], book: Codebook, table: dict[str, str] | None = None, max_scan: int = MAX_HEADER_SCAN
) -> Header | None:
    """The table's header: rows, and the column -> variable map.

    Every row (of the first `max_scan`) with a cell naming the code or name column is a
    candidate; each column's candidate texts are its cells in up to two rows above and two rows
    below and their concatenations, so multi-row headers ("重層的支援体制整備事業" over "実施状況")
    match as well as one-row ones. The candidate mapping the most variables wins.
    """
    table = table or key_table(book)
    best: Header | None = None
    for r in range(min(max_scan, len(grid))):
        if not any(is_id_header_cell(v, table) for v in grid[r]):
            continue
        top = max(0, r - 2)
        cand = None
        for bottom in range(r, min(r + 3, len(grid))):
            found = _match_columns(grid, top, bottom, table)
            if cand is None or len(found[0]) > len(cand.colmap):
                cand = Header(r, top, bottom, *found)
        if cand is None or not ({"code", "name"} & set(cand.colmap.values())):
            continue
        # rows right below that hold no municipality and no answer belong to the header too
        while (
            cand.bottom + 1 < len(grid)
            and cand.bottom - r < 2
            and _is_header_continuation(grid[cand.bottom + 1], grid[cand.bottom], cand.colmap, book, table)
        ):
            found = _match_columns(grid, top, cand.bottom + 1, table)
            absorbed = [*cand.absorbed, cand.bottom + 1]
            if len(found[0]) >= len(cand.colmap):
                cand = Header(r, top, cand.bottom + 1, *found, absorbed=absorbed)
            else:
                cand.bottom += 1
                cand.absorbed = absorbed
        if best is None or cand.score > best.score:
            best = cand
    return best


def _is_header_continuation(row, above, colmap, book: Codebook, table) -> bool:
    if all(cell_text(v) == "" for v in row):
        return False
    for j, var in colmap.items():
        t = cell_text(row[j]) if j < len(row) else ""
        if var in ("code", "name"):
            above_t = cell_text(above[j]) if j < len(above) else ""
            if t and t != above_t and not is_id_header_cell(t, table):
                return False
        elif t:
            q = book.question(var)
            if q.answers == "text":
                continue
            mapped, ok = map_answer(row[j], q.answers, book)
            if ok and mapped is not None:
                return False
    return True


__all__ = [
    "MAX_HEADER_SCAN",
    "Header",
    "column_cells",
    "find_header",
    "is_id_header_cell",
    "key_table",
    "suggest",
    "variants",
]
