"""Data rows: each non-empty row below the header is read into a record or skipped with a reason.

Every row ends up in exactly one place: a record, or an issue saying why it was skipped (total,
repeated header, note, no municipality) or why it could not be read. Answers are mapped through
the codebook; nothing is guessed, so an answer that cannot be mapped stays missing and is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._answers import NOT_MAPPED, accepted, map_answer, other_map_spelling
from ._cells import cell_text, col_letter, raw
from ._header import is_id_header_cell

TOTAL_MARKERS = (
    "計",
    "合計",
    "県計",
    "総計",
    "小計",
    "市計",
    "町計",
    "村計",
    "市町計",
    "市町村計",
    "全体",
    "県全体",
    "全県",
    "合計数",
    "計(再掲)",
)
_TOTAL_RE = re.compile(
    r"^(?:{})(?:[(（].*[)）])?$".format("|".join(re.escape(m) for m in sorted(TOTAL_MARKERS, key=len, reverse=True)))
)
_NOTE_RE = re.compile(r"^(?:※|\*|＊|注|\(注|（注|出典|資料|備考[:：])")


@dataclass
class Rows:
    records: list[dict] = field(default_factory=list)
    source_rows: list[int] = field(default_factory=list)  # Excel row of each record
    seen: dict[str, int] = field(default_factory=dict)  # code -> Excel row
    n_rows: int = 0  # rows naming a municipality (read or not)


def read_rows(ctx) -> Rows:
    out = Rows()
    headerless: dict[int, int] = {}  # column without a header -> first row with a value there
    for r in range(ctx.header.bottom + 1, len(ctx.grid)):
        _read_row(ctx, r, out, headerless)
    for j, first_row in sorted(headerless.items()):
        ctx.log.add(
            "warning",
            "見出しのない列に値があります（読み込んでいません）",
            "values in a column without a header were ignored",
            row=first_row,
            column=f"{col_letter(j)}列",
            value=raw(ctx.grid[first_row - 1][j]),
            cell=f"{col_letter(j)}{first_row}",
        )
    return out


class _Row:
    """One grid row with the cells the steps below look at."""

    def __init__(self, ctx, r: int):
        self.r, self.excel_row = r, r + 1
        self.cells = ctx.grid[r]
        self.texts = [cell_text(v) for v in self.cells]
        jc, jn = ctx.col_of.get("code"), ctx.col_of.get("name")
        self.jc, self.jn = jc, jn
        self.raw_code = self.cells[jc] if jc is not None and jc < len(self.cells) else None
        self.raw_name = self.cells[jn] if jn is not None and jn < len(self.cells) else None
        self.code_text, self.name_text = cell_text(self.raw_code), cell_text(self.raw_name)

    def at(self, j: int | None) -> str:
        return f"{col_letter(j)}{self.excel_row}" if j is not None else ""


def _read_row(ctx, r: int, out: Rows, headerless: dict[int, int]) -> None:
    """Read grid row r into `out`, or log why it is skipped; every non-empty row ends up in one."""
    row = _Row(ctx, r)
    if not any(row.texts) or _skipped(ctx, row):
        return
    out.n_rows += 1
    for j, t in enumerate(row.texts):
        if t and j not in ctx.own_header:
            headerless.setdefault(j, row.excel_row)
    code = _municipality(ctx, row)
    if code is None:
        return
    if code in out.seen:
        j = row.jc if row.jc is not None else row.jn
        ctx.log.add(
            "error",
            f"同じ市町村が重複しています（{out.seen[code]}行目と重複）",
            f"duplicate municipality (also row {out.seen[code]})",
            row=row.excel_row,
            column=ctx.label(j),
            value=code,
            cell=row.at(j),
        )
        return
    out.seen[code] = row.excel_row
    out.records.append({"code": code, "name": ctx.resolver.by_code[code], **_answers(ctx, row)})
    out.source_rows.append(row.excel_row)


def _skipped(ctx, row: _Row) -> bool:
    """Total, repeated header, note and empty-id rows: logged and skipped (True), else False."""
    log = ctx.log
    j_first = next(j for j, t in enumerate(row.texts) if t)
    first_text = row.texts[j_first]
    id_texts = [t for t in (row.code_text, row.name_text) if t] or [first_text]
    if any(_TOTAL_RE.match(t.replace(" ", "")) for t in id_texts):
        j = row.jn if row.name_text else (row.jc if row.code_text else j_first)
        log.add(
            "info",
            "合計行のため読み飛ばしました",
            "total row skipped",
            row=row.excel_row,
            column=ctx.label(j),
            value=id_texts[0],
            cell=row.at(j),
        )
        return True
    if any(t and is_id_header_cell(t, ctx.table) for t in (row.code_text, row.name_text)):
        log.add(
            "info",
            "見出しの繰り返し行のため読み飛ばしました",
            "repeated header row skipped",
            row=row.excel_row,
            value=row.code_text or row.name_text,
        )
        return True
    answers_present = any(
        row.texts[j] for j, v in ctx.header.colmap.items() if v not in ("code", "name") and j < len(row.cells)
    )
    if not answers_present and not row.name_text and (_NOTE_RE.match(first_text) or not row.code_text):
        note = _NOTE_RE.match(first_text) is not None
        log.add(
            "info",
            "注記の行のため読み飛ばしました" if note else "市町村も回答もない行のため読み飛ばしました",
            "note row skipped" if note else "row without municipality or answers skipped",
            row=row.excel_row,
            column=ctx.label(j_first),
            value=raw(row.cells[j_first]),
            cell=row.at(j_first),
        )
        return True
    if not row.code_text and not row.name_text:
        j = row.jc if row.jc is not None else row.jn
        log.add(
            "error",
            "市町村コードも市町村名も空です（回答がある行）",
            "row with answers but without code or name",
            row=row.excel_row,
            column=ctx.label(j),
            cell=row.at(j),
        )
        return True
    return False


def _municipality(ctx, row: _Row) -> str | None:
    """The row's master code from its code cell (checked against the name) or its name; None if unusable."""
    log, res = ctx.log, ctx.resolver
    name_in_code = bool(row.code_text) and not any(ch.isdigit() for ch in row.code_text)
    if row.code_text and not name_in_code:
        code, why_ja, why_en = res.by_code_value(row.raw_code)
        if code is None:
            log.add(
                "error",
                why_ja,
                why_en,
                row=row.excel_row,
                column=ctx.label(row.jc),
                value=raw(row.raw_code),
                cell=row.at(row.jc),
            )
            return None
        if row.name_text:
            by_name = res.names(row.name_text)
            if by_name and code not in by_name:
                log.add(
                    "error",
                    f"市町村コードと市町村名が食い違います（コード {code} は{res.by_code[code]}、"
                    f"名称の市町村は {res.describe(by_name)}）",
                    f"code {code} ({res.by_code[code]}) contradicts the name, which is {'/'.join(sorted(by_name))}",
                    row=row.excel_row,
                    column=ctx.label(row.jn),
                    value=raw(row.raw_name),
                    cell=row.at(row.jn),
                )
                return None
            if not by_name:
                log.add(
                    "warning",
                    f"市町村名がコード表の名称（{res.by_code[code]}）と一致しません（コードで照合しました）",
                    f"name differs from the master's name for {code} ({res.by_code[code]}); matched by code",
                    row=row.excel_row,
                    column=ctx.label(row.jn),
                    value=raw(row.raw_name),
                    cell=row.at(row.jn),
                )
        return code
    # no code: the name (from the name column, or written in the code column) must be unique
    raw_id, j_id = (row.raw_code, row.jc) if name_in_code else (row.raw_name, row.jn)
    found = res.names(cell_text(raw_id))
    if name_in_code and row.name_text:
        found &= res.names(row.name_text) or found
    if len(found) == 1:
        code = found.pop()
        if name_in_code:
            log.add(
                "info",
                "コード欄の市町村名からコードを補いました",
                "code resolved from a name in the code column",
                row=row.excel_row,
                column=ctx.label(row.jc),
                value=raw(row.raw_code),
                cell=row.at(row.jc),
            )
        return code
    if found:
        log.add(
            "error",
            f"市町村名が複数の市町村に当てはまります（{res.describe(found)}）。市町村コードを記入してください",
            f"ambiguous municipality name ({'/'.join(sorted(found))}); give the code",
            row=row.excel_row,
            column=ctx.label(j_id),
            value=raw(raw_id),
            cell=row.at(j_id),
        )
        return None
    hint = res.suggestions(cell_text(raw_id))
    hint_ja = f"（もしかして: {'、'.join(hint)}）" if hint else ""
    hint_en = f" (did you mean: {', '.join(hint)}?)" if hint else ""
    if name_in_code:
        log.add(
            "error",
            f"市町村コードが不正です（数字がなく、市町村名としてもコード表にありません）{hint_ja}",
            f"invalid municipality code: no digits, and not a municipality name of the master list{hint_en}",
            row=row.excel_row,
            column=ctx.label(row.jc),
            value=raw(row.raw_code),
            cell=row.at(row.jc),
        )
    else:
        log.add(
            "error",
            f"市町村名がコード表（市町村マスタ）にありません{hint_ja}",
            f"municipality name not in the master list{hint_en}",
            row=row.excel_row,
            column=ctx.label(row.jn),
            value=raw(row.raw_name),
            cell=row.at(row.jn),
        )
    return None


def _answers(ctx, row: _Row) -> dict:
    """The row's answers by variable; an answer that cannot be read is None and an error."""
    rec: dict[str, object] = {}
    for q in ctx.book.questions:
        j = ctx.col_of.get(q.variable)
        if j is None:
            rec[q.variable] = None
            continue
        value = row.cells[j] if j < len(row.cells) else None
        if (row.r, j) in ctx.sheet.no_cache:
            ctx.log.add(
                "error",
                "数式の計算結果が保存されていません。Excel で開いて保存し直すか値で貼り付けてください",
                f"formula without a saved result for {q.variable}; recalculate and save in Excel",
                row=row.excel_row,
                column=ctx.label(j),
                cell=row.at(j),
            )
            rec[q.variable] = None
            continue
        mapped, ok = map_answer(value, q.answers, ctx.book)
        if not ok:
            ok_ja, ok_en = accepted(ctx.book, q.answers)
            other = other_map_spelling(value, q.answers, ctx.book)
            not_here = f"『{raw(value)}』は別の設問の回答の表記で、この列では使えません。" if other else ""
            ctx.log.add(
                "error",
                f"回答『{raw(value)}』を解釈できません（コードブックの回答表にありません）。{not_here}"
                f"この列で使える回答: {ok_ja}",
                f"unmappable answer for {q.variable} (accepted: {ok_en})",
                row=row.excel_row,
                column=ctx.label(j),
                value=raw(value),
                cell=row.at(j),
            )
            ctx.accepted[ctx.label(j)] = (ok_ja, ok_en)
            mapped = None
        assert mapped is not NOT_MAPPED
        rec[q.variable] = mapped
    return rec


__all__ = ["TOTAL_MARKERS", "Rows", "read_rows"]
