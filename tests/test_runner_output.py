"""What the run prints for the analyst: the summary table lines up in a terminal, in Japanese."""

from __future__ import annotations

import unicodedata

from analysis.runner import REPORT_KIND_JA, STATUS_JA, Job, JobResult, summary_table


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def test_summary_table_aligns_japanese_and_names_reports_in_japanese():
    results = [
        JobResult(Job("sample", "fiscal_year_report", "FY2021", 2021, {}), "ok", 58.3),
        JobResult(Job("sample", "trends", "trends", None, {}), "skipped", 1.0),
        JobResult(Job("sample", "data_quality", "quality/FY2021", 2021, {}), "failed", 2.0, "壊れています / broken"),
    ]
    lines = summary_table(results).splitlines()
    header, rows, failure = lines[0], lines[1:4], lines[4]
    # the seconds column ends at the same terminal column on every line (full-width = 2 columns)
    ends = {_columns(line[: line.index(s) + len(s)]) for line, s in zip(rows, ("58.3", "1.0", "2.0"), strict=True)}
    assert len(ends) == 1 and _columns(header[: header.index("秒") + 1]) == ends.pop()
    assert [r.split()[2] for r in rows] == [STATUS_JA["ok"], STATUS_JA["skipped"], STATUS_JA["failed"]]
    assert rows[0].endswith(REPORT_KIND_JA["fiscal_year_report"]) and rows[1].split()[1] == "全年度"
    assert failure == "失敗 / failed: data_quality quality/FY2021: 壊れています / broken"


def test_worker_imports_no_pandas_and_still_names_project_errors_raised_in_a_notebook():
    """A worker process imports analysis.runner only: no pandas, yet a project error raised in a
    notebook (its class defined in a module the worker never imported) keeps its own ja / en text."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from analysis import runner\n"
        "from papermill.exceptions import PapermillExecutionError\n"
        "print('pandas' in sys.modules)\n"
        "for ename in ('CodeError', 'MasterError', 'KeyError'):\n"
        "    exc = PapermillExecutionError(3, 4, 'x', ename, 'codes.yaml: 不明なコード / unknown code', [])\n"
        "    print(runner.describe_failure(exc))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    first, code_error, master_error, key_error = out.splitlines()
    assert first == "False"
    assert code_error == master_error == str(("codes.yaml: 不明なコード / unknown code", ""))
    assert "ノートブックのセル [4] でエラーが発生しました: KeyError" in key_error
