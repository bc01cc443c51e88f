"""Cell values as text: normalised for matching, or as typed for messages; Excel cell names."""

from __future__ import annotations

import unicodedata


def cell_text(value) -> str:
    """A cell for matching: NFKC, stripped, integral floats without '.0', booleans as TRUE/FALSE."""
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


def raw(value) -> str:
    """A cell as the sender typed it (for issue reports): not NFKC-normalised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return str(value).strip()


def col_letter(j: int) -> str:
    """0-based column index -> Excel letters (0 -> A)."""
    from openpyxl.utils import get_column_letter

    return get_column_letter(j + 1)


def col_index(cell: str) -> int:
    """Excel cell name -> 0-based column index ('C7' -> 2)."""
    from openpyxl.utils.cell import column_index_from_string, coordinate_from_string

    return column_index_from_string(coordinate_from_string(cell)[0]) - 1


def short(text: str, limit: int = 200) -> str:
    """`text` cut to `limit` characters for a message, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}…（全{len(text):,}文字 / {len(text):,} characters）"


__all__ = ["cell_text", "col_index", "col_letter", "raw", "short"]
