"""Reading survey files into a tidy frame, with every problem reported instead of guessed.

`read_survey` takes one survey file (xlsx or csv) of one fiscal year and returns a
`SurveyResult`: the tidy table (one row per municipality, codebook variable names, 6-digit code
strings, sorted by code) and an issues table (file, sheet, row, column, value, severity, reason in
Japanese and English, plus the cell reference). Problems are collected over the whole file, not
stopped at the first one. A file that cannot be read at all raises `SurveyError` with the same
kind of message and an issues table. Input files are only ever opened for reading.

Accepted shapes (all give the same tidy table as the clean sample file):

* .xlsx/.xlsm with title rows above the table, a cover sheet (or several sheets: the one whose
  header matches the codebook best is read), 1–3 header rows, merged header cells (a group header
  over the question, or the question text split over two rows), extra columns (reported, ignored);
* .csv/.txt/.tsv in UTF-8 (with or without BOM), CP932 (Shift_JIS) or UTF-16, comma or tab
  separated, CRLF or LF;
* answers in any spelling of the codebook's answer maps (○ × 有 無 1 0 TRUE …, Excel booleans and
  numbers included), 「―」「-」「－」 and blank as missing, full-width digits;
* municipality codes with or without the check digit, as numbers that lost a leading zero, or
  the municipality name in place of the code (matched against the master after NFKC);
* blank rows, total rows (計・合計・県計 …, reported), repeated header rows, foot notes.

Refused, with the file and line or cell: malformed CSV quoting, undecodable text, merged cells
over data rows (Excel keeps one value; the others are never invented), files beyond the
`Limits` (size, declared or actual sheet size, rows, columns, cell length), and — with a
`ResponsePolicy` — fewer responding municipalities than the dataset requires.

Modules: `_grid` (files to raw cell grids), `_header` (header rows and columns), `_municipality`
(codes and names), `_rows` (data rows), `_answers`, `_issues` (the issue log), `_report`
(validation report), `_master` (the municipality master), `_limits`, `_reader` (the steps).
"""

from ._issues import ISSUE_COLUMNS, SEVERITY_JA, SurveyError
from ._limits import DEFAULT_LIMITS, Limits
from ._master import MasterError, read_master
from ._reader import ResponsePolicy, SurveyResult, read_survey, tidy_columns
from ._report import advice, format_issues, report_text, what_to_do

__all__ = [
    "DEFAULT_LIMITS",
    "ISSUE_COLUMNS",
    "SEVERITY_JA",
    "Limits",
    "MasterError",
    "ResponsePolicy",
    "SurveyError",
    "SurveyResult",
    "advice",
    "format_issues",
    "read_master",
    "read_survey",
    "report_text",
    "tidy_columns",
    "what_to_do",
]
