"""Display formats of report tables: numbers stay numbers until they are shown.

Report tables are numeric DataFrames with Japanese headers. How a column is shown follows from its
header, by one rule set used by every renderer (HTML here, Excel number formats in `export`):

* a header containing 「p値」 is a p-value: 0.000, and <0.001 below that;
* 「(%)」 or 「(ポイント)」: one decimal; 「最小の差」: no decimals;
* 「オッズ比」 or 「E値」: two decimals;
* integer columns: whole numbers with thousands separators (a 「…年度」 column: a plain year);
* a pair 「X・下限…」 / 「X・上限…」 is one interval: in HTML it becomes the single column
  「Xの95%信頼区間…」 shown as 「0.8〜3.1」, with an infinite bound said in words
  (「17.7〜（上限なし）」). CSV and Excel keep both bounds as numbers.

A missing p-value is 「計算できず」, any other missing number 「—」: never a silent blank.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import math
import re
from typing import Literal

import pandas as pd

LOWER, UPPER = "・下限", "・上限"
_PAIR = re.compile(r"^(?P<base>.*)・(?P<which>下限|上限)(?P<suffix>.*)$")
MINUS = "−"  # U+2212, the typographic minus used in Japanese print
NOT_COMPUTED = "計算できず"
MISSING = "—"

ColumnKind = Literal["p", "pct", "diff0", "ratio", "int", "year", "float", "text"]  # see column_kind


def column_kind(name: str, dtype=None) -> ColumnKind:
    """How a column is shown: 'p', 'pct', 'diff0', 'ratio', 'int', 'year', 'float' or 'text'."""
    if dtype is not None and not _is_number_dtype(dtype):
        return "text"
    if "p値" in name:
        return "p"
    if "最小の差" in name:
        return "diff0"
    if "(%)" in name or "(ポイント)" in name:
        return "pct"
    if "オッズ比" in name or "E値" in name:
        return "ratio"
    if dtype is not None and pd.api.types.is_integer_dtype(dtype):
        return "year" if name.endswith("年度") else "int"
    return "float"


def _is_number_dtype(dtype) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


# Excel number formats for the same kinds (export.write_xlsx); conditions keep p < 0.001 readable.
EXCEL_FORMATS = {
    "p": '[<0.001]"<0.001";0.000',
    "pct": "0.0",
    "diff0": "0",
    "ratio": "0.00",
    "int": "#,##0",
    "year": "0",
    "float": "0.0",
}


def _number(v: float, digits: int) -> str:
    text = f"{v:,.{digits}f}"
    return text.replace("-", MINUS)


def format_value(v, kind: ColumnKind) -> str:
    """One cell as the reader sees it in HTML."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return NOT_COMPUTED if kind == "p" else MISSING
    if kind == "text":
        return str(v)
    v = float(v)
    if math.isinf(v):
        return "上限なし" if v > 0 else "下限なし"
    if kind == "p":
        return "<0.001" if v < 0.001 else f"{v:.3f}"
    if kind == "int":
        return f"{int(round(v)):,}"
    if kind == "year":
        return str(int(v))
    digits = {"pct": 1, "diff0": 0, "ratio": 2, "float": 1}[kind]
    return _number(v, digits)


def format_interval(lo, hi, kind: ColumnKind) -> str:
    """「lo〜hi」; an unbounded side is said in words, a bound that could not be computed too."""
    lo_missing = lo is None or pd.isna(lo)
    hi_missing = hi is None or pd.isna(hi)
    if lo_missing and hi_missing:
        return MISSING
    if kind == "ratio":  # an odds ratio's lower bound at 0 is the unbounded side on the log scale
        lo = -math.inf if (not lo_missing and float(lo) <= 0) else lo
    left = "（計算できず）" if lo_missing else ("（下限なし）" if math.isinf(float(lo)) else format_value(lo, kind))
    right = "（計算できず）" if hi_missing else ("（上限なし）" if math.isinf(float(hi)) else format_value(hi, kind))
    return f"{left}〜{right}"


def interval_pairs(columns) -> dict[str, tuple[str, str]]:
    """Lower-bound column -> (upper-bound column, merged header) for every complete pair."""
    cols = list(columns)
    out = {}
    for c in cols:
        m = _PAIR.match(str(c))
        if m and m["which"] == "下限":
            upper = f"{m['base']}{UPPER}{m['suffix']}"
            if upper in cols:
                out[c] = (upper, f"{m['base']}の95%信頼区間{m['suffix']}")
    return out


def display_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[bool]]:
    """The table as strings for HTML, interval pairs merged; and which columns are numeric."""
    pairs = interval_pairs(frame.columns)
    uppers = {u for u, _ in pairs.values()}
    data, numeric = {}, []
    for c in frame.columns:
        if c in uppers:
            continue
        kind = column_kind(str(c), frame[c].dtype)
        if c in pairs:
            upper, header = pairs[c]
            data[header] = [format_interval(lo, hi, kind) for lo, hi in zip(frame[c], frame[upper], strict=False)]
            numeric.append(True)
        else:
            data[str(c)] = [format_value(v, kind) for v in frame[c]]
            numeric.append(kind != "text")
    return pd.DataFrame(data, index=frame.index), numeric


def captioned_table(table_html: str, caption: str) -> str:
    """A pandas `to_html` table with a <caption> after its opening tag (tables name themselves)."""
    import html

    cut = table_html.index(">") + 1
    return f"{table_html[:cut]}<caption>{html.escape(caption)}</caption>{table_html[cut:]}"


__all__ = [
    "EXCEL_FORMATS",
    "ColumnKind",
    "captioned_table",
    "column_kind",
    "display_frame",
    "format_interval",
    "format_value",
    "interval_pairs",
]
