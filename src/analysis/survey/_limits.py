"""Resource limits of the reader: what a real prefectural or national survey file never exceeds.

A file beyond a limit is rejected with a message before the work grows with it, so a small
crafted workbook declaring a cell at XFD1048576 costs milliseconds, not gigabytes. The defaults
fit any real file (a national file has ~1,750 rows and ~60 columns); a dataset can raise them in
its dataset.yaml (`limits: {max_rows: 50000}`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 50 * MB  # the file as stored
    max_unpacked_bytes: int = 500 * MB  # an xlsx's parts once unzipped (a zip bomb stops here)
    max_rows: int = 20_000  # sheet rows, title and header included
    max_columns: int = 300
    max_cell_chars: int = 10_000
    max_issues_per_kind: int = 100  # issues kept per kind; the rest are counted

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


DEFAULT_LIMITS = Limits()

LIMIT_LABELS = {
    "max_file_bytes": ("ファイルの大きさ", "file size"),
    "max_unpacked_bytes": ("展開後の大きさ", "unpacked size"),
    "max_rows": ("行数", "rows"),
    "max_columns": ("列数", "columns"),
    "max_cell_chars": ("セルの文字数", "characters in a cell"),
    "max_issues_per_kind": ("種類ごとの問題の記録数", "issues kept per kind"),
}


def size_text(n: int) -> str:
    """Bytes as MB with one decimal (for messages)."""
    return f"{n / MB:,.1f} MB"


__all__ = ["DEFAULT_LIMITS", "LIMIT_LABELS", "MB", "Limits", "size_text"]
