"""The validation report printed by `python -m analysis validate` (Japanese and English).

Bounded: at most `per_kind` lines per kind of problem, then one line with the count of the rest,
so a file with a million bad rows prints a summary, not a million lines.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._issues import ISSUE_COLUMNS, OMITTED_EN, SEVERITY_JA, issue_kind, severity_counts

PRINT_PER_KIND = 20


def format_issues(issues: pd.DataFrame, per_kind: int | None = None) -> list[str]:
    """One line per issue: severity, file, sheet, row, column, value and the reason (ja / en).

    With `per_kind`, only the first `per_kind` issues of each kind are printed, followed by one
    line giving the number left out.
    """
    shown: dict[str, int] = {}
    lines, hidden = [], {}
    records = issues.to_dict("records")
    if per_kind is not None:  # kinds a bounded log only counted: fold their count into one line
        for rec in records:
            if OMITTED_EN in str(rec["reason_en"]):
                kind = issue_kind(rec["severity"], str(rec["reason_en"]).split(" kept): ", 1)[-1])
                hidden[kind] = [
                    int(str(rec["value"]).replace(",", "") or 0),
                    rec["severity"],
                    rec["reason_ja"].split("記録）: ", 1)[-1],
                    rec["reason_en"].split(" kept): ", 1)[-1],
                ]
    for rec in records:
        sev = rec["severity"]
        kind = issue_kind(sev, rec["reason_en"])
        if per_kind is not None:
            if OMITTED_EN in str(rec["reason_en"]):
                continue
            shown[kind] = shown.get(kind, 0) + 1
            if shown[kind] > per_kind:
                hidden.setdefault(kind, [0, sev, rec["reason_ja"], rec["reason_en"]])[0] += 1
                continue
        parts = [f"[{SEVERITY_JA.get(sev, sev)}/{sev}]", f"ファイル『{rec['file']}』"]
        if rec.get("sheet"):
            parts.append(f"シート『{rec['sheet']}』")
        row = rec.get("row")
        if row is not None and not pd.isna(row):
            parts.append(f"{int(row)}行")
        if rec.get("cell"):
            parts.append(f"({rec['cell']})")
        if rec.get("column"):
            parts.append(f"列『{rec['column']}』")
        if rec.get("value") not in (None, ""):
            parts.append(f"値『{rec['value']}』")
        lines.append(" ".join(parts) + f": {rec['reason_ja']} / {rec['reason_en']}")
    for n, sev, ja, en in hidden.values():
        lines.append(
            f"[{SEVERITY_JA.get(sev, sev)}/{sev}] … 同じ種類の問題がほかに {n:,} 件（表示を省略）: {ja} / "
            f"… {n:,} more of this kind not shown: {en}"
        )
    return lines


def report_text(result, issues: pd.DataFrame | None = None, path: Path | None = None) -> str:
    """The validation report of a SurveyResult (or of the issues of an unusable file)."""
    issues = result.issues if result is not None else issues
    if issues is None:
        issues = pd.DataFrame(columns=ISSUE_COLUMNS)
    counts = severity_counts(issues)
    n_err, n_warn, n_info = counts["error"], counts["warning"], counts["info"]
    lines = [f"ファイル / file: {result.path if result is not None else path}"]
    if result is not None:
        lines.append(f"シート / sheet: {result.sheet or '-'}")
        lines.append(f"年度 / fiscal year: {result.fiscal_year or '不明 / unknown'}")
        lines.append(f"市町数 / municipalities: {len(result.tidy)} / {result.info.get('n_expected', '?')}")
        rate = result.info.get("response_rate")
        if rate is not None:
            lines.append(f"回答率 / response rate: {rate:.1%}")
        verdict = "有効 / valid" if result.ok else "無効 / invalid"
    else:
        verdict = "読み込めません / unusable file"
    lines.append(f"判定 / result: {verdict}")
    lines.append(
        f"エラー {n_err} 件, 警告 {n_warn} 件, 情報 {n_info} 件 / "
        f"{n_err} error(s), {n_warn} warning(s), {n_info} note(s)"
    )
    lines.extend(format_issues(issues, per_kind=PRINT_PER_KIND))
    if n_err or result is None:
        accepted = result.info.get("accepted_answers") if result is not None else None
        lines.append("")
        lines.append("対処 / what to do:")
        lines.extend(f"- {ja} / {en}" for ja, en in advice(issues, accepted))
    return "\n".join(lines)


# reason (English, part) -> advice (ja, en); first match wins
_ADVICE = [
    (
        "unmappable answer",
        "回答欄を、その列で使える回答（各エラーに示しています）で入力し直してください。別の表記を使い続ける場合は "
        "data/codebook/survey.yaml の answer_maps に追加します",
        "re-enter the answer with one the column accepts (listed in each error), or add the spelling to "
        "answer_maps in the codebook",
    ),
    (
        "invalid municipality code",
        "市町村コードを総務省の全国地方公共団体コード（6桁、検査数字付き）で入力し直してください",
        "correct the code (6 digits with check digit)",
    ),
    (
        "municipality of another prefecture",
        "他県のコードです。行を削除するか、正しい市町のコードに直してください",
        "remove the row or use this prefecture's code",
    ),
    (
        "duplicate municipality",
        "同じ市町の行が複数あります。どちらが正しいか確認し、1行にしてください",
        "keep one row per municipality",
    ),
    (
        "required question column missing",
        "調査票の設問の列がありません。見出しの文言がコードブックと一致しているか確認してください",
        "a question column is missing; check the header text against the codebook",
    ),
    (
        "the file's title says",
        "ファイルの年度と指定した年度が違います。正しいファイルか、--fiscal-year の指定を確認してください",
        "check the file or --fiscal-year",
    ),
    (
        "merged range",
        "結合セルを解除し、各市町の行・各設問の列にそれぞれ値を入力してください",
        "unmerge the merged cells and enter a value in each cell",
    ),
    (
        "response rate",
        "回答のない市町があります。行が欠けていないか確認し、未回答が確定している市町は dataset.yaml の "
        "non_responding に登録してください",
        "municipalities are missing; check for lost rows and list confirmed non-respondents under non_responding",
    ),
]
_FINAL = (
    "元のファイルを修正して保存し、もう一度 `python -m analysis validate` で確認してから "
    "`python -m analysis run` を実行してください（このツールが元のファイルを書き換えることはありません）",
    "fix the original file, validate again, then run; this tool never writes to input files",
)


def advice(issues: pd.DataFrame, accepted: dict | None = None) -> list[tuple[str, str]]:
    """(ja, en) advice for the kinds of errors present; `accepted` (column -> answers) adds one line
    per column with unreadable answers, naming the answers that column accepts."""
    out = []
    errors = issues[issues["severity"] == "error"] if not issues.empty else issues
    reasons = errors["reason_en"].astype(str) if not errors.empty else pd.Series(dtype=str)
    for key, ja, en in _ADVICE:
        if reasons.str.contains(key, regex=False).any():
            out.append((ja, en))
    for column, (ok_ja, ok_en) in (accepted or {}).items():
        out.append((f"列『{column}』に使える回答: {ok_ja}", f"column {column!r} accepts: {ok_en}"))
    out.append(_FINAL)
    return out


def what_to_do(issues: pd.DataFrame, accepted: dict | None = None) -> list[str]:
    """Advice lines 'ja / en' for the kinds of errors present (the input file is never changed by us)."""
    return [f"{ja} / {en}" for ja, en in advice(issues, accepted)]


__all__ = ["PRINT_PER_KIND", "advice", "format_issues", "report_text", "what_to_do"]
