"""Japanese era (和暦) names of fiscal years, for titles and tables.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import re
import unicodedata

# A fiscal year starts in April and is named after the era in force then, so FY2019
# (April 2019–, Reiwa from 1 May 2019) is 令和元年度 and FY1989 is 平成元年度.
_ERAS = ((2019, "令和"), (1989, "平成"), (1926, "昭和"))


def wareki_fy(year: int) -> str:
    """FY2019 -> 令和元年度, FY2025 -> 令和7年度, FY2018 -> 平成30年度."""
    if isinstance(year, bool) or not isinstance(year, int):
        raise TypeError(f"year must be an int, not {type(year).__name__}")
    for first, era in _ERAS:
        if year >= first:
            n = year - first + 1
            return f"{era}{'元' if n == 1 else n}年度"
    raise ValueError(f"fiscal year before 1926 is not supported: {year}")


def parse_fy(text: str) -> int | None:
    """Fiscal year from '令和7年度', 'R7年度', 'R7', '2025年度' or 'FY2025'; None if absent."""
    s = unicodedata.normalize("NFKC", str(text))
    m = re.search(r"(令和|平成|R|H)\s*(元|\d{1,2})\s*年?度?", s)
    if m:
        era = {"令和": 2019, "R": 2019, "平成": 1989, "H": 1989}[m.group(1)]
        n = 1 if m.group(2) == "元" else int(m.group(2))
        return era + n - 1
    m = re.search(r"(?:FY\s*)?(20\d\d)\s*年度|FY\s*(20\d\d)", s)
    if m:
        return int(m.group(1) or m.group(2))
    return None


__all__ = ["parse_fy", "wareki_fy"]
