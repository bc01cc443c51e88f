"""The issue log: every problem found in a file as one row of a table (file, sheet, row, column,
value, severity, reason in Japanese and English, cell), bounded per kind of problem.

A file with a million bad rows keeps the first `max_per_kind` issues of each kind and one
summary row per kind saying how many more there were, so reports and the console stay readable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NoReturn

import pandas as pd

from ..errors import AnalysisError
from ._cells import short

ISSUE_COLUMNS = ["file", "sheet", "row", "column", "value", "severity", "reason_ja", "reason_en", "cell"]
SEVERITY_JA = {"error": "エラー", "warning": "警告", "info": "情報"}
OMITTED_EN = "more issue(s) of this kind not listed"


def empty_issues() -> pd.DataFrame:
    frame = pd.DataFrame(columns=ISSUE_COLUMNS)
    frame["row"] = frame["row"].astype("Int64")
    return frame


class SurveyError(AnalysisError):
    """A survey (or master) file that cannot be used; `issues` holds the reasons as a table.

    `SurveyError(ja, en, issues, where=path)`; the older `SurveyError("ja / en", issues)` still works.
    """

    def __init__(self, ja: str, en=None, issues: pd.DataFrame | None = None, *, where: str | None = None):
        if isinstance(en, pd.DataFrame) and issues is None:  # SurveyError(message, issues)
            en, issues = None, en
        super().__init__(ja, en, where=where)
        self.issues = issues if issues is not None else empty_issues()


def issue_kind(severity: str, reason_en: str) -> str:
    """What makes two issues 'the same kind': severity and the reason without values or numbers."""
    head = re.split(r"[(:;]", str(reason_en), maxsplit=1)[0]
    return f"{severity}|{re.sub(r'[0-9]+', '#', head).strip()}"


class IssueLog:
    def __init__(self, path: Path, sheet: str | None, max_per_kind: int = 100):
        self.path, self.sheet = Path(path), sheet
        self.rows: list[dict[str, object]] = []
        self.max_per_kind = max_per_kind
        self.kept: dict[str, int] = {}
        self.omitted: dict[str, list] = {}  # kind -> [count, severity, first reason_ja, first reason_en]

    def add(self, severity, reason_ja, reason_en, row=None, column=None, value=None, cell=None, sheet=None):
        kind = issue_kind(severity, reason_en)
        if self.kept.get(kind, 0) >= self.max_per_kind:
            self.omitted.setdefault(kind, [0, severity, reason_ja, reason_en])[0] += 1
            return
        self.kept[kind] = self.kept.get(kind, 0) + 1
        self.rows.append(
            {
                "file": self.path.name,
                "sheet": (self.sheet if sheet is None else sheet) or "",
                "row": row,
                "column": column or "",
                "value": "" if value is None else short(str(value)),
                "severity": severity,
                "reason_ja": reason_ja,
                "reason_en": reason_en,
                "cell": cell or "",
            }
        )

    def fatal(self, reason_ja: str, reason_en: str, value=None) -> NoReturn:
        """Record a file-level error and raise SurveyError carrying every issue so far."""
        self.add("error", reason_ja, reason_en, value=value)
        raise SurveyError(reason_ja, reason_en, self.frame(), where=str(self.path))

    @property
    def n_errors(self) -> int:
        return sum(r["severity"] == "error" for r in self.rows) + sum(
            n for n, sev, *_ in self.omitted.values() if sev == "error"
        )

    def frame(self) -> pd.DataFrame:
        rows = list(self.rows)
        for n, sev, ja, en in self.omitted.values():
            rows.append(
                {
                    "file": self.path.name,
                    "sheet": self.sheet or "",
                    "row": None,
                    "column": "",
                    "value": str(n),
                    "severity": sev,
                    "reason_ja": f"同じ種類の問題がほかに {n:,} 件あります（最初の {self.max_per_kind} 件のみ記録）: {ja}",
                    "reason_en": f"{n:,} {OMITTED_EN} (first {self.max_per_kind} kept): {en}",
                    "cell": "",
                }
            )
        frame = pd.DataFrame(rows, columns=ISSUE_COLUMNS)
        frame["row"] = frame["row"].astype("Int64")
        return frame


def severity_counts(issues: pd.DataFrame) -> dict[str, int]:
    """Issues per severity, the ones a bounded log only counted included."""
    out = {"error": 0, "warning": 0, "info": 0}
    if issues is None or issues.empty:
        return out
    for sev, en, value in zip(issues["severity"], issues["reason_en"].astype(str), issues["value"], strict=False):
        n = 1
        if OMITTED_EN in en:
            try:
                n = int(str(value).replace(",", ""))
            except ValueError:
                n = 1
        out[sev] = out.get(sev, 0) + n
    return out


__all__ = [
    "ISSUE_COLUMNS",
    "OMITTED_EN",
    "SEVERITY_JA",
    "IssueLog",
    "SurveyError",
    "empty_issues",
    "issue_kind",
    "severity_counts",
]
