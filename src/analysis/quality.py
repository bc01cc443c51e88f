"""Data quality of one survey file: response rate, missing answers, what was skipped or mapped.

Used by notebooks/data_quality.ipynb (one report per fiscal year) and by the data-quality
section of the fiscal-year report. Never raises for a bad file: an unreadable file becomes a
report that says why, so the analyst sees the problem where the report would have been.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .codebook import Codebook
from .datasets import Dataset
from .survey import SEVERITY_JA, SurveyError, SurveyResult, advice
from .survey._issues import severity_counts

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass
class QualityResult:
    path: str
    readable: bool
    message: str = ""
    result: SurveyResult | None = None
    issues: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def n_errors(self) -> int:
        return severity_counts(self.issues)["error"]  # issues only counted by a bounded log included


def check(ds: Dataset, year: int, book: Codebook) -> QualityResult:
    path = ds.survey_path(year)
    try:
        result = ds.read(year, book)
    except SurveyError as exc:
        return QualityResult(str(path.name), False, str(exc), None, exc.issues)
    return QualityResult(str(path.name), True, "", result, result.issues)


def _master_or_none(ds: Dataset) -> pd.DataFrame | None:
    try:
        return ds.master()
    except SurveyError:  # a broken master is reported where the survey would have been read
        return None


def response_table(q: QualityResult, ds: Dataset) -> pd.DataFrame:
    master = _master_or_none(ds)
    n_expected = len(master) if master is not None else None
    if q.result is None:
        return pd.DataFrame(
            [
                {"項目": "調査ファイル", "値": f"{q.path}（読み込めませんでした）"},
                {"項目": "対象市町数", "値": "—" if n_expected is None else int(n_expected)},
            ]
        )
    res = q.result
    names = dict(zip(master["code"], master["name"], strict=False)) if master is not None else {}
    n_expected = n_expected or res.info.get("n_expected")
    missing = [names.get(c, c) for c in res.info.get("missing", [])]
    listed = [names.get(c, c) for c in res.info.get("non_responding", [])]
    n = len(res.tidy)
    rows = [
        ("調査ファイル", q.path),
        ("シート", res.sheet or "—"),
        ("対象市町数", int(n_expected) if n_expected else "—"),
        ("回答市町数", n),
        ("回答率(%)", round(100 * n / n_expected, 1) if n_expected else "—"),
        ("未回答の市町", "、".join(missing) if missing else "なし"),
        *([("うち未回答として登録済み（dataset.yaml）", "、".join(listed))] if listed else []),
        ("エラー(件)", int(q.n_errors)),
        ("警告(件)", int((q.issues["severity"] == "warning").sum())),
        ("情報（読み飛ばした行・無視した列など）(件)", int((q.issues["severity"] == "info").sum())),
    ]
    # numbers stay numbers (a spreadsheet can sum them; no "number stored as text" warnings)
    return pd.DataFrame(rows, columns=["項目", "値"])


def missing_by_question(q: QualityResult, book: Codebook) -> pd.DataFrame:
    if q.result is None:
        return pd.DataFrame(columns=["設問", "区分", "無回答", "無回答率(%)"])
    tidy = q.result.tidy
    n = len(tidy)
    rows = []
    for qu in book.questions:
        if qu.answers == "text":
            continue
        miss = int(tidy[qu.variable].isna().sum())
        rows.append(
            {
                "設問": qu.label_ja,
                "区分": qu.group_ja,
                "無回答": miss,
                "無回答率(%)": round(100 * miss / n, 1) if n else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def issues_table(q: QualityResult) -> pd.DataFrame:
    """Issues sorted by severity then row, with Japanese headers."""
    cols = ["重要度", "シート", "行", "セル", "列", "値", "内容", "内容（英語）"]
    if q.issues.empty:
        return pd.DataFrame(columns=cols)
    iss = q.issues.copy()
    iss["_o"] = iss["severity"].map(SEVERITY_ORDER)
    iss = iss.sort_values(["_o", "row"], na_position="first", kind="stable")
    return pd.DataFrame(
        {
            "重要度": [SEVERITY_JA.get(s, s) for s in iss["severity"]],
            "シート": iss["sheet"].fillna("").astype(str).to_numpy(),
            "行": ["" if pd.isna(r) else str(int(r)) for r in iss["row"]],
            "セル": iss["cell"].fillna("").astype(str).to_numpy() if "cell" in iss else "",
            "列": iss["column"].fillna("").astype(str).to_numpy(),
            "値": iss["value"].fillna("").astype(str).to_numpy(),
            "内容": iss["reason_ja"].to_numpy(),
            "内容（英語）": iss["reason_en"].to_numpy(),
        }
    ).reset_index(drop=True)


def summary_sentence(q: QualityResult, ds: Dataset) -> str:
    if q.result is None:
        return f"調査ファイル『{q.path}』を読み込めませんでした。{q.message}"
    n, n_exp = len(q.result.tidy), q.result.info.get("n_expected") or len(ds.master())
    text = f"{n_exp}市町のうち{n}市町が回答しました（回答率{100 * n / n_exp:.1f}%）。"
    if q.n_errors:
        todo = "\n\n".join("対処: " + ja for ja, _ in advice(q.issues, q.result.info.get("accepted_answers")))
        text += (
            f"調査ファイルにエラーが{q.n_errors}件あり、この年度の分析結果は作成できません。下の一覧を確認してください。"
            f"\n\n{todo}"
        )
    else:
        text += "調査ファイルにエラーはありません。"
    return text


__all__ = [
    "SEVERITY_ORDER",
    "QualityResult",
    "check",
    "issues_table",
    "missing_by_question",
    "response_table",
    "summary_sentence",
]
