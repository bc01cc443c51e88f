"""Japanese era (和暦) names of fiscal years, for titles and tables."""
from __future__ import annotations

import re
import unicodedata

_ERAS = (("令和", 2019), ("平成", 1989))


def wareki_fy(year: int) -> str:
    """FY2019 -> 令和元年度, FY2025 -> 令和7年度, FY2018 -> 平成30年度."""
    for era, start in _ERAS:
        if year >= start:
            n = year - start + 1
            return f"{era}{'元' if n == 1 else n}年度"
    raise ValueError(f"unsupported fiscal year {year}")


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
