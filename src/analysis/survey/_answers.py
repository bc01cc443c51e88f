"""Answers: a cell mapped through the codebook's answer map, or reported as not mappable."""

from __future__ import annotations

from ..codebook import Codebook, answer_key
from ._cells import cell_text

NOT_MAPPED = object()


def map_answer(value, answers: str, book: Codebook):
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
    key = answer_key(cell_text(value))
    table = book.answer_maps[answers]
    if key in table:
        return table[key], True
    return NOT_MAPPED, False


def accepted(book: Codebook, answers: str) -> tuple[str, str]:
    """The answers a column accepts, for messages: ('実施 / 移行準備 / 未実施', the same in English).

    The first spelling of each value in the codebook (blank always means no answer).
    """
    spec = book.raw["answer_maps"][answers]
    shown = [str(spellings[0]) for value, spellings in spec.items() if value != "missing" and spellings]
    text = " / ".join(shown)
    return f"{text}（空欄は無回答）", f"{text} (blank for no answer)"


def other_map_spelling(value, answers: str, book: Codebook) -> str | None:
    """The name of another answer map that knows this spelling (○ is yes/no, not a 重層 status)."""
    key = answer_key(cell_text(value))
    for name, table in book.answer_maps.items():
        if name != answers and key in table and table[key] is not None:
            return name
    return None


__all__ = ["NOT_MAPPED", "accepted", "map_answer", "other_map_spelling"]
