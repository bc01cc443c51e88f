"""Filling a generated questionnaire the way a municipality would, and what the reader should get.

`fill` opens a workbook written by `analysis.survey_template` with openpyxl, finds the question
columns by their header text, and writes random answers taken from each column's own drop-down
list (the data validation stored in the file), blanks now and then, and free text in the notes.
It returns the answers as the tidy frame the reader must produce.
"""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
from openpyxl import load_workbook

from analysis.codebook import Codebook, answer_key
from analysis.survey_template import ANSWER_SHEET, FIRST_DATA_ROW, HEADER_ROW

NOTES = ["", "  前年度から継続して実施  ", "研修を検討中\n来年度に実施予定", "特になし", "+1 追加予定", "（該当なし）"]


def validation_lists(ws) -> dict[int, tuple[list[str], object]]:
    """column index (1-based) -> (list entries, the DataValidation) for every list rule."""
    out = {}
    for dv in ws.data_validations.dataValidation:
        if dv.type != "list":
            continue
        items = dv.formula1.strip('"').split(",")
        for rng in dv.sqref.ranges:
            for col in range(rng.min_col, rng.max_col + 1):
                out[col] = (items, dv)
    return out


def header_columns(ws, book: Codebook) -> dict[str, int]:
    """variable -> column index, from the header row's texts."""
    by_text = {q.header_ja: q.variable for q in book.questions}
    by_text[book.id_columns["code"]["header_ja"]] = "code"
    by_text[book.id_columns["name"]["header_ja"]] = "name"
    return {by_text[c.value]: c.column for c in ws[HEADER_ROW] if c.value in by_text}


def expected_frame(records: list[dict], book: Codebook, fiscal_year: int) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=["code", "name", *book.variables])
    frame.insert(0, "fiscal_year", fiscal_year)
    frame["fiscal_year"] = frame["fiscal_year"].astype("Int64")
    for col in ("code", "name"):
        frame[col] = frame[col].astype("string")
    for q in book.questions:
        frame[q.variable] = frame[q.variable].astype("boolean" if q.answers == "yes_no" else "string")
    return frame.sort_values("code").reset_index(drop=True)


def fill(
    path: Path, book: Codebook, fiscal_year: int, rng: random.Random, out: Path | None = None, p_blank: float = 0.1
) -> pd.DataFrame:
    """Fill every answer cell of `path` (saved to `out`, default in place); the expected tidy frame."""
    wb = load_workbook(path)
    ws = wb[ANSWER_SHEET]
    cols = header_columns(ws, book)
    lists = validation_lists(ws)
    records = []
    for r in range(FIRST_DATA_ROW, ws.max_row + 1):
        code = ws.cell(row=r, column=cols["code"]).value
        if code is None:
            continue
        rec = {"code": str(code), "name": ws.cell(row=r, column=cols["name"]).value}
        for q in book.questions:
            j = cols[q.variable]
            if q.answers == "text":
                text = rng.choice(NOTES)
                ws.cell(row=r, column=j).value = text or None
                rec[q.variable] = text.strip() or None
                continue
            if rng.random() < p_blank:
                ws.cell(row=r, column=j).value = None
                rec[q.variable] = None
                continue
            choice = rng.choice(lists[j][0])
            ws.cell(row=r, column=j, value=choice)
            rec[q.variable] = book.answer_maps[q.answers][answer_key(choice)]
        records.append(rec)
    wb.save(out or path)
    return expected_frame(records, book, fiscal_year)


def set_cell(path: Path, variable: str, book: Codebook, value, row: int = FIRST_DATA_ROW) -> str:
    """Write `value` into a question's cell; return the cell reference (e.g. 'D6')."""
    wb = load_workbook(path)
    ws = wb[ANSWER_SHEET]
    j = header_columns(ws, book)[variable]
    c = ws.cell(row=row, column=j)
    c.value = value  # (ws.cell(..., value=None) would leave the cell as it was)
    wb.save(path)
    return c.coordinate


def rule_for(ws, coordinate: str):
    """The DataValidation whose range covers `coordinate`, or None."""
    for dv in ws.data_validations.dataValidation:
        if coordinate in dv.sqref:
            return dv
    return None


__all__ = ["NOTES", "expected_frame", "fill", "header_columns", "rule_for", "set_cell", "validation_lists"]
