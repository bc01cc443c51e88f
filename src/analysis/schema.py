"""pandera schemas guarding the tidy survey frame that `io.read_survey` returns.

The schema is built from the codebook, so a question added to the YAML is checked too:

* fiscal_year: Int64 (nullable when the year is unknown), a plausible fiscal year;
* code: 6-digit string with a valid JIS X 0402 check digit, unique, never missing;
* name: string, never missing;
* yes/no questions: nullable boolean;
* questions with another answer map (e.g. jusou_status): string in the map's values;
* free-text questions: string;
* exactly these columns, in this order.

`check_tidy` runs the schema lazily and returns its failures as plain dicts with Japanese and
English reasons, so the reader can turn them into issues instead of raising a pandera traceback.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import pandas as pd

from . import codes
from .codebook import Codebook

FY_RANGE = (1989, 2100)


def allowed_values(book: Codebook, answers: str) -> list[object]:
    """The values an answer map can produce (missing excluded), e.g. implemented/preparing/..."""
    return sorted({v for v in book.answer_maps[answers].values() if v is not None}, key=str)


def _valid_check_digit(value) -> bool:
    return isinstance(value, str) and codes.is_valid(value)


def tidy_schema(book: Codebook):
    """The pandera DataFrameSchema of a tidy survey frame for `book`."""
    import pandera.pandas as pa

    string = pd.StringDtype()
    columns = {
        "fiscal_year": pa.Column("Int64", pa.Check.in_range(*FY_RANGE), nullable=True),
        "code": pa.Column(
            string,
            [pa.Check.str_matches(r"^\d{6}$"), pa.Check(_valid_check_digit, element_wise=True, name="check_digit")],
            nullable=False,
            unique=True,
        ),
        "name": pa.Column(string, nullable=False),
    }
    for q in book.questions:
        if q.answers == "yes_no":
            columns[q.variable] = pa.Column("boolean", nullable=True)
        elif q.answers == "text":
            columns[q.variable] = pa.Column(string, nullable=True)
        else:
            columns[q.variable] = pa.Column(string, pa.Check.isin(allowed_values(book, q.answers)), nullable=True)
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name="tidy_survey")


_REASONS = {
    "str_matches": ("6桁の数字ではありません", "not a 6-digit string"),
    "check_digit": ("検査数字が正しくありません", "wrong check digit"),
    "field_uniqueness": ("値が重複しています", "duplicate value"),
    "isin": ("許されていない値です", "value not in the allowed set"),
    "in_range": ("範囲外の値です", "value out of range"),
    "not_nullable": ("値が欠けています", "missing value"),
    "column_in_dataframe": ("列がありません", "column missing"),
    "column_in_schema": ("想定外の列があります", "unexpected column"),
    "column_ordered": ("列の順序が違います", "columns out of order"),
    "dtype": ("型が違います", "wrong data type"),
}


def _reason(check: str) -> tuple[str, str]:
    name = str(check)
    for key, (ja, en) in _REASONS.items():
        if name.startswith(key):
            return ja, en
    return "検査に合格しませんでした", "check failed"


def check_tidy(tidy: pd.DataFrame, book: Codebook) -> list[dict]:
    """Schema failures of `tidy` as dicts: column, code (of the row, if any), value, reason_ja/en.

    Never raises for a bad frame: any pandera error (or an unexpected exception inside pandera)
    becomes a failure entry.
    """
    import pandera.errors as pe

    try:
        tidy_schema(book).validate(tidy, lazy=True)
        return []
    except pe.SchemaErrors as exc:
        cases = exc.failure_cases
    except pe.SchemaError as exc:  # pragma: no cover - lazy validation collects these
        return [
            {
                "column": "",
                "code": None,
                "value": "",
                "reason_ja": f"表の検査に失敗しました: {exc}",
                "reason_en": f"schema check failed: {exc}",
            }
        ]
    except Exception as exc:
        return [
            {
                "column": "",
                "code": None,
                "value": "",
                "reason_ja": f"表の検査を実行できませんでした（{type(exc).__name__}）",
                "reason_en": f"schema check could not run: {type(exc).__name__}: {exc}",
            }
        ]
    out = []
    for rec in cases.to_dict("records"):
        column = rec.get("column")
        column = "" if column is None or (isinstance(column, float) and column != column) else str(column)
        index = rec.get("index")
        code = None
        if index is not None and not (isinstance(index, float) and index != index):
            try:
                code = tidy["code"].iloc[int(index)]
                code = None if pd.isna(code) else str(code)
            except (KeyError, IndexError, ValueError, TypeError):
                code = None
        check = str(rec.get("check"))
        ja, en = _reason(check)
        value = rec.get("failure_case")
        out.append(
            {
                "column": column,
                "code": code,
                "value": "" if value is None else str(value),
                "reason_ja": f"表の検査: 『{column or '表'}』の{ja}（{check}）",
                "reason_en": f"schema check: {column or 'table'}: {en} ({check})",
            }
        )
    return out


__all__ = ["FY_RANGE", "allowed_values", "check_tidy", "tidy_schema"]
