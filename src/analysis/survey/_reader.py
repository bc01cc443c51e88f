"""`read_survey`: one survey file of one fiscal year -> tidy table + issues table.

The steps: raw grids (`_grid`), the sheet whose header matches the codebook best (`_header`),
merged ranges (header merges are filled, merges over data rows are reported, never copied),
columns (unknown, duplicate, missing; "did you mean" for near misses), rows (`_rows`), the
response rate against the master (and the dataset's minimum), and the pandera schema.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..codebook import Codebook
from ..wareki import parse_fy
from ._cells import cell_text, col_index, col_letter, raw
from ._grid import Merge, Sheet, fill, read_sheets
from ._header import Header, column_cells, find_header, key_table, suggest
from ._issues import ISSUE_COLUMNS, SEVERITY_JA, IssueLog, SurveyError
from ._limits import DEFAULT_LIMITS, Limits
from ._master import MasterError, read_master
from ._municipality import Resolver
from ._report import format_issues, report_text, what_to_do
from ._rows import TOTAL_MARKERS, read_rows


@dataclass(frozen=True)
class ResponsePolicy:
    """How many municipalities of the master a survey file must cover.

    `min_rate` is the share of the master that must either answer or be listed as not
    responding in `non_responding` ({fiscal year: codes}); below it the file is an error. The
    default (1.0) accepts a missing municipality only when dataset.yaml says it did not answer.
    """

    min_rate: float = 1.0
    non_responding: dict = field(default_factory=dict)  # fiscal year -> frozenset of codes

    def listed(self, fiscal_year: int | None) -> frozenset:
        return frozenset(self.non_responding.get(fiscal_year, ())) if fiscal_year is not None else frozenset()


@dataclass
class SurveyResult:
    tidy: pd.DataFrame
    issues: pd.DataFrame
    fiscal_year: int | None
    path: Path
    sheet: str | None = None
    info: dict = field(default_factory=dict)

    @property
    def errors(self) -> pd.DataFrame:
        return self.issues[self.issues["severity"] == "error"]

    @property
    def warnings(self) -> pd.DataFrame:
        return self.issues[self.issues["severity"] == "warning"]

    @property
    def ok(self) -> bool:
        return self.errors.empty

    @property
    def response_rate(self) -> float | None:
        """Responding municipalities / municipalities in the master."""
        return self.info.get("response_rate")


def read_survey(
    path: Path | str,
    book: Codebook,
    master: pd.DataFrame,
    fiscal_year: int | None = None,
    prefecture_code: str | None = None,
    check_schema: bool = True,
    *,
    limits: Limits | None = None,
    response: ResponsePolicy | None = None,
) -> SurveyResult:
    """Read one survey file; `master` lists the expected municipalities. Never writes to the file.

    Handles what real returns look like (merged or multi-row Japanese headers, ○/×/有/無/はい/1,
    「―」, full-width digits, 和暦 dates, total rows, CSV in CP932 or UTF-8) and reports anything
    it cannot map as an issue (row, column, value, reason) instead of guessing.

    Parameters
    ----------
    path : str or Path
        The survey file (.xlsx, .xls or .csv).
    book : Codebook
        Which header identifies which question, and how answers map to values.
    master : DataFrame
        The municipalities expected to answer (``Dataset.master()``).
    fiscal_year : int, optional
        The survey's fiscal year (checked against the file when it says one).
    prefecture_code : str, optional
        Two digits that tell valid codes of other prefectures apart from unknown ones; by
        default the common prefix of the master's codes.
    check_schema : bool, default True
        Run the pandera schema of `analysis.schema` on the result (failures become issues).
    limits : Limits, optional
        Bounds on the work (file size, rows, columns, cell length).
    response : ResponsePolicy, optional
        Makes too few responding municipalities an error (without it, a warning).

    Returns
    -------
    SurveyResult
        ``tidy`` (one row per municipality), ``issues`` (row, column, value, reason, severity),
        ``ok`` (no errors) and ``info`` (sheet, header rows, response rate).

    Raises
    ------
    SurveyError
        The file cannot be used at all (unreadable, no header found, ...).

    Examples
    --------
    >>> from analysis import read_survey
    >>> from analysis.codebook import load_codebook
    >>> from analysis.datasets import load_dataset
    >>> ds = load_dataset("sample")
    >>> result = read_survey(ds.survey_path(2025), load_codebook(), ds.master(), fiscal_year=2025)
    >>> result.ok, len(result.tidy)
    (True, 35)
    >>> int((result.tidy["jusou_status"] == "implemented").sum())  # 重層 実施: 13 市町
    13
    """
    path = Path(path)
    limits = limits or DEFAULT_LIMITS
    log = IssueLog(path, None, limits.max_issues_per_kind)
    sheets, fmt = read_sheets(path, log, limits)
    table = key_table(book)
    sheet, header = _pick_sheet(sheets, book, table, log)
    log.sheet = sheet.name
    if header is None:
        id_ja = f"『{book.id_columns['code']['header_ja']}』または『{book.id_columns['name']['header_ja']}』"
        if not sheet.grid:
            log.fatal("ファイルにデータがありません（空のシート）", "the file holds no cells (empty sheet)")
        log.fatal(
            f"見出し行（{id_ja}の列）が見つかりません。調査票の集計表か確認してください",
            "header row with the code or name column not found; is this the survey's summary table?",
        )
    ctx = _Context(sheet, header, book, table, log, Resolver(master, prefecture_code))
    _check_long_cells(ctx, limits)
    _check_merges(ctx)
    fy, fy_source = _fiscal_year(ctx, path, fiscal_year)
    header_first = _check_columns(ctx)
    rows = read_rows(ctx)
    if rows.n_rows == 0:
        log.fatal("データ行がありません（見出しだけのファイルです）", "no data rows (the file has a header only)")
    res = ctx.resolver
    missing = sorted(res.known - set(rows.seen))
    rate = _check_response(ctx, rows, missing, fy, response)
    tidy = _tidy_frame(rows.records, book, fy)
    rows_by_code = dict(zip((rec["code"] for rec in rows.records), rows.source_rows, strict=False))
    if check_schema:
        from ..schema import check_tidy

        for p in check_tidy(tidy, book):
            code = p.get("code")
            excel_row = rows_by_code.get(code) if code is not None else None
            j = ctx.col_of.get(p["column"])
            log.add(
                "error",
                p["reason_ja"],
                p["reason_en"],
                row=excel_row,
                column=ctx.label(j) if j is not None else p["column"],
                value=p.get("value"),
                cell=f"{col_letter(j)}{excel_row}" if j is not None and excel_row else None,
            )
    return SurveyResult(
        tidy=tidy,
        issues=log.frame(),
        fiscal_year=fy,
        path=path,
        sheet=sheet.name,
        info={
            "n_rows": len(rows.records),
            "n_expected": len(res.known),
            "missing": missing,
            "response_rate": rate,
            "non_responding": sorted(response.listed(fy) & set(missing)) if response else [],
            "format": fmt,
            "header_rows": (header_first + 1, header.bottom + 1),
            "columns": {v: ctx.label(j) for j, v in header.colmap.items()},
            "source_rows": rows_by_code,
            "accepted_answers": dict(ctx.accepted),
            "fiscal_year_source": "argument" if fiscal_year is not None else fy_source,
        },
    )


class _Context:
    """What the steps of `read_survey` share: the sheet, its header, the codebook and the log."""

    def __init__(self, sheet: Sheet, header: Header, book: Codebook, table: dict, log: IssueLog, resolver: Resolver):
        self.sheet, self.header = sheet, header
        # header merges are filled (a group over its questions); merges below the header are not
        self.header_merges = [c for c in (m.clip(header.bottom) for m in sheet.merges) if c is not None]
        self.data_merges = [m for m in sheet.merges if m.r2 > header.bottom]
        self.grid = fill(sheet.grid, self.header_merges)
        self.book, self.table, self.log, self.resolver = book, table, log, resolver
        self.col_of = {v: j for j, v in header.colmap.items()}
        self.width = max((len(r) for r in self.grid), default=0)
        own_rows = range(max(header.top, header.id_row - 1), header.bottom + 1)
        self.own_header = {j for j in range(self.width) if column_cells(self.grid, own_rows, j)}
        self.accepted: dict[str, tuple[str, str]] = {}

    def label(self, j: int | None) -> str:
        """The header text of column j as shown in issues."""
        if j is None:
            return ""
        if j in self.header.labels:
            return self.header.labels[j]
        cells = column_cells(self.grid, range(self.header.id_row, self.header.bottom + 1), j, as_typed=True)
        return cells[-1] if cells else f"{col_letter(j)}列"


def _pick_sheet(sheets: list[Sheet], book: Codebook, table, log: IssueLog) -> tuple[Sheet, Header | None]:
    """The visible sheet whose header maps the most codebook columns (a cover sheet is skipped)."""
    found = [(s, find_header(fill(s.grid, s.merges), book, table)) for s in sheets]
    visible = [(s, h) for s, h in found if s.visible] or found
    scored = [(s, h) for s, h in visible if h is not None]
    if not scored:
        return visible[0][0], None
    best_s, best_h = max(scored, key=lambda sh: (sh[1].score, -sheets.index(sh[0])))
    if best_s.name is not None:
        log.sheet = best_s.name
        others = [s.name for s, h in visible if s.name and s is not best_s and (h is None or h.score < best_h.score)]
        if others:
            log.add(
                "info",
                f"シート『{'』『'.join(others)}』は回答表ではないため読み飛ばしました（表紙など）",
                f"sheet(s) {', '.join(others)} skipped (cover or other non-table sheets)",
            )
        rivals = [
            s.name for s, h in visible if s.name and s is not best_s and h is not None and h.score >= best_h.score
        ]
        if rivals:
            log.add(
                "warning",
                f"シート『{'』『'.join(rivals)}』にも同じ形の回答表があります（読み込んだのは『{best_s.name}』のみ）",
                f"sheet(s) {', '.join(rivals)} also hold a survey table; only {best_s.name} was read",
            )
        hidden = [s.name for s, h in found if s.name and not s.visible and h is not None]
        if hidden:
            log.add(
                "info",
                f"非表示のシート『{'』『'.join(hidden)}』は読み込んでいません",
                f"hidden sheet(s) {', '.join(hidden)} not read",
            )
    return best_s, best_h


def _check_long_cells(ctx: _Context, limits: Limits) -> None:
    for r, j, n in ctx.sheet.long_cells:
        line = ctx.sheet.lines[r] if ctx.sheet.lines and r < len(ctx.sheet.lines) else None
        at_ja, at_en = (f"（ファイルの{line}行目）", f" (line {line} of the file)") if line else ("", "")
        ctx.log.add(
            "error",
            f"セルの文字数が上限（{limits.max_cell_chars:,}文字）を超えています（{n:,}文字）{at_ja}。"
            "上限は dataset.yaml の limits: max_cell_chars で変えられます",
            f"cell longer than {limits.max_cell_chars:,} characters ({n:,}){at_en}",
            row=r + 1,
            column=ctx.label(j),
            value=raw(ctx.grid[r][j]) if j < len(ctx.grid[r]) else "",
            cell=f"{col_letter(j)}{r + 1}",
        )


def _check_merges(ctx: _Context) -> None:
    """Merged ranges below the header: an error when they span data rows or question columns.

    Excel keeps only the top-left value of a merge, so copying it into the other cells would
    invent answers for other municipalities; the covered cells are read as they are (empty). A
    merge whose covered cells already hold the same value changes nothing: a warning.
    """
    grid, header, colmap = ctx.sheet.grid, ctx.header, ctx.header.colmap
    questions = {j for j, v in colmap.items() if v not in ("code", "name")}

    def at(r, c):
        return grid[r][c] if r < len(grid) and c < len(grid[r]) else None

    for m in ctx.data_merges:
        first = max(m.r1, header.bottom + 1)
        rows = range(first, min(m.r2, len(grid) - 1) + 1)
        cols = range(m.c1, m.c2 + 1)
        outside = lambda r, cols=cols: any(cell_text(v) for c, v in enumerate(grid[r]) if c not in cols)  # noqa: E731
        spans_rows = any(c in colmap for c in cols) and any(r != m.r1 and outside(r) for r in rows)
        spans_questions = (
            m.r1 > header.bottom and any(c in questions for c in cols[1:]) and (m.c1 in questions or outside(m.r1))
        )  # not a note row merged across the table
        if not (spans_rows or spans_questions):
            continue
        anchor = at(m.r1, m.c1)
        covered = [(r, c) for r in rows for c in cols if (r, c) != (m.r1, m.c1)]
        if all(cell_text(at(r, c)) == cell_text(anchor) for r, c in covered):
            ctx.log.add(
                "warning",
                f"結合セル {m.ref} は、結合されたすべてのセルに同じ値『{raw(anchor)}』が入っているため、"
                "そのまま読みました（結合は解除してください）",
                f"merged range {m.ref} holds the same value in every covered cell; read as it is (please unmerge it)",
                row=first + 1,
                column=ctx.label(m.c1),
                value=raw(anchor),
                cell=m.ref,
            )
        else:
            ctx.log.add(
                "error",
                f"結合セル {m.ref} が複数の行（市町）や設問の列にまたがっています。Excel は結合の左上の値しか"
                "持たないため、ほかのセルは空として読みました（値を複製して補うことはしません）。結合を解除し、"
                "各セルに値を入力してください",
                f"merged range {m.ref} spans data rows or question columns; only its top-left cell holds a "
                "value, the covered cells were read as empty (never copied); unmerge it and fill each cell",
                row=first + 1,
                column=ctx.label(m.c1),
                value=raw(anchor),
                cell=m.ref,
            )


def _title_fiscal_year(rows: list[list[object]], path: Path) -> tuple[int | None, str | None, str | None]:
    """(fiscal year, source, cell) from the title rows (cells mentioning 年度), else the file name."""
    for r, row in enumerate(rows):
        for j, v in enumerate(row):
            t = cell_text(v)
            if "年度" in t:
                fy = parse_fy(t)
                if fy:
                    return fy, "title", f"{col_letter(j)}{r + 1}"
    name = unicodedata.normalize("NFKC", path.stem)
    if "年度" in name or re.search(r"FY\s*20\d\d", name, re.IGNORECASE):
        fy = parse_fy(name.upper().replace("FY", " FY"))
        if fy:
            return fy, "file name", None
    return None, None, None


def _fiscal_year(ctx: _Context, path: Path, requested: int | None) -> tuple[int | None, str | None]:
    """The fiscal year to use, and an error when the title contradicts the requested one."""
    log, grid = ctx.log, ctx.grid
    title_fy, source, where = _title_fiscal_year(grid[: ctx.header.id_row], path)
    if requested is not None and title_fy is not None and title_fy != requested:
        if source == "title":
            assert where is not None  # a year read from the title comes with its cell
            r = int(re.sub(r"^[A-Z]+", "", where))
            log.add(
                "error",
                f"ファイルの表題は{title_fy}年度ですが、{requested}年度として読み込もうとしています",
                f"the file's title says FY{title_fy} but FY{requested} was requested",
                row=r,
                column="表題",
                value=raw(grid[r - 1][col_index(where)]),
                cell=where,
            )
        else:
            log.add(
                "warning",
                f"ファイル名は{title_fy}年度を示していますが、{requested}年度として読み込みます",
                f"the file name suggests FY{title_fy} but FY{requested} was requested",
                value=path.name,
            )
    fy = requested if requested is not None else title_fy
    if fy is None:
        log.add(
            "warning",
            "年度が分かりません（表題に年度がなく、--fiscal-year も指定されていません）",
            "fiscal year unknown: no year in the title and none requested",
        )
    return fy, source


def _check_columns(ctx: _Context) -> int:
    """Report unknown and duplicate columns, odd header rows and missing required questions.

    A column that matches no question but is close to one the table lacks is a warning with a
    suggestion (its answers would otherwise be lost without notice). Returns the first header
    row (0-based) for the result's info.
    """
    grid, header, log = ctx.grid, ctx.header, ctx.log
    colmap, below = header.colmap, header.bottom + 1
    absent = {q.variable for q in ctx.book.questions} - set(colmap.values())
    near: dict[str, str] = {}  # variable -> the header that looks like it
    for j in range(ctx.width):
        if j in colmap:
            continue
        cells = column_cells(grid, range(header.id_row, header.bottom + 1), j, as_typed=True)
        if j in header.losers and header.quality[j][0]:
            dup = header.losers[j]
            other = col_letter(ctx.col_of[dup])
            log.add(
                "error",
                f"同じ設問の列が複数あります（{other}列と重複）。どちらか一方にしてください",
                f"duplicate column for {dup} (also column {other})",
                row=below,
                column=ctx.label(j),
                value=ctx.label(j),
                cell=f"{col_letter(j)}{below}",
            )
        elif cells:
            var = suggest(" ".join(cells), ctx.table, absent) or suggest(cells[-1], ctx.table, absent)
            if var is None:
                log.add(
                    "info",
                    "調査票にない列のため無視しました",
                    "unknown column ignored",
                    row=below,
                    column=cells[-1],
                    value=cells[-1],
                    cell=f"{col_letter(j)}{below}",
                )
                continue
            q = ctx.book.question(var)
            near.setdefault(var, cells[-1])
            log.add(
                "warning",
                f"調査票にない列のため無視しました。もしかして設問『{q.header_ja}』の列ですか？"
                f"そうなら見出しを『{q.header_ja}』に直すか、data/codebook/survey.yaml の aliases に追加してください",
                f"unknown column ignored; did you mean the question {var} ({q.header_ja})? Rename the header or "
                "add it to the question's aliases in the codebook",
                row=below,
                column=cells[-1],
                value=cells[-1],
                cell=f"{col_letter(j)}{below}",
            )
    for r in header.absorbed:
        odd = []
        for j in colmap:
            t = cell_text(grid[r][j]) if j < len(grid[r]) else ""
            above = cell_text(grid[r - 1][j]) if j < len(grid[r - 1]) else ""
            if t and t != above and t not in header.matched.get(j, ()):
                odd.append((j, grid[r][j]))
        if odd:
            j, v = odd[0]
            log.add(
                "info",
                "見出しの続きとみなして読み飛ばした行です（市町村も回答もありません）",
                "row below the header treated as part of the header (no municipality, no answer)",
                row=r + 1,
                column=ctx.label(j),
                value=raw(v),
                cell=f"{col_letter(j)}{r + 1}",
            )
    found = set(colmap.values())
    for q in ctx.book.questions:
        if q.required and q.variable not in found:
            hint_ja = f"（『{near[q.variable]}』の列のことですか？）" if q.variable in near else ""
            hint_en = f" (is it the column {near[q.variable]!r}?)" if q.variable in near else ""
            log.add(
                "error",
                f"必須の設問『{q.header_ja}』の列がありません{hint_ja}",
                f"required question column missing: {q.variable}{hint_en}",
                column=q.header_ja,
            )
    for r in range(header.top, header.id_row):
        if any(j < len(grid[r]) and cell_text(grid[r][j]) in header.matched.get(j, ()) for j in colmap):
            return r
    return header.id_row


def _check_response(
    ctx: _Context, rows, missing: list[str], fy: int | None, response: ResponsePolicy | None
) -> float | None:
    """Report municipalities without an answer; below the policy's minimum rate the file is an error.

    Returns the response rate: responding municipalities / municipalities in the master.
    """
    log, res = ctx.log, ctx.resolver
    n_master = len(res.known)
    listed = response.listed(fy) if response else frozenset()
    column = ctx.label(ctx.col_of.get("code", ctx.col_of.get("name")))
    for c in missing:
        if c in listed:
            log.add(
                "info",
                f"未回答（dataset.yaml の non_responding に登録済み: {res.by_code[c]}）",
                f"no answer from municipality {c}, listed as non-responding in dataset.yaml",
                column=column,
                value=c,
            )
        else:
            log.add(
                "warning",
                f"回答がありません（未回答の市町: {res.by_code[c]}）",
                f"no answer from municipality {c}",
                column=column,
                value=c,
            )
    if response is None:
        return len(rows.seen) / n_master if n_master else None
    for c in sorted(listed - res.known):
        log.add(
            "error",
            "dataset.yaml の non_responding に市町村マスタにないコードがあります",
            f"non_responding in dataset.yaml lists a code that is not in the master: {c}",
            value=c,
        )
    for c in sorted(listed & set(rows.seen)):
        log.add(
            "warning",
            f"dataset.yaml で未回答とされている市町の回答があります（{res.by_code[c]}）。"
            "non_responding から外してください",
            f"municipality {c} is listed as non-responding in dataset.yaml but has answered",
            row=rows.seen[c],
            column=column,
            value=c,
        )
    n_answered = len(rows.seen)
    rate = n_answered / n_master if n_master else None
    explained = (n_answered + len(listed & set(missing))) / n_master if n_master else 1.0
    if explained + 1e-12 < response.min_rate:
        unlisted = [c for c in missing if c not in listed]
        names = "、".join(res.by_code[c] for c in unlisted[:10]) + ("ほか" if len(unlisted) > 10 else "")
        fy_key = fy if fy is not None else "年度"
        log.add(
            "error",
            f"回答のない市町が {len(unlisted)} 市町あります（{names}）。回答率 {n_answered}/{n_master}"
            f"（{rate:.1%}）が最低回答率 {response.min_rate:.0%} を下回ります。行の欠落や読み込めない行がないか確認し、"
            f"未回答が確定している市町は dataset.yaml の non_responding に {fy_key}: [コード, ...] として登録してください",
            f"{len(unlisted)} municipalities of the master have no answer: response rate {n_answered}/{n_master} "
            f"({rate:.1%}) is below the minimum {response.min_rate:.0%}; check for lost rows, or list "
            f"municipalities that did not answer under non_responding in dataset.yaml",
            column=column,
            value=f"{n_answered}/{n_master}",
        )
    return rate


def tidy_columns(book: Codebook) -> list[str]:
    return ["fiscal_year", "code", "name", *book.variables]


def _tidy_frame(records: list[dict], book: Codebook, fiscal_year: int | None) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=["code", "name", *book.variables])
    frame.insert(0, "fiscal_year", fiscal_year)
    for q in book.questions:
        if q.answers == "yes_no":
            frame[q.variable] = frame[q.variable].astype("boolean")
        else:
            frame[q.variable] = frame[q.variable].astype("string")
    frame["fiscal_year"] = frame["fiscal_year"].astype("Int64")
    frame["code"] = frame["code"].astype("string")
    frame["name"] = frame["name"].astype("string")
    return frame[tidy_columns(book)].sort_values("code").reset_index(drop=True)


__all__ = [
    "ISSUE_COLUMNS",
    "SEVERITY_JA",
    "TOTAL_MARKERS",
    "Limits",
    "MasterError",
    "Merge",
    "ResponsePolicy",
    "SurveyError",
    "SurveyResult",
    "format_issues",
    "read_master",
    "read_survey",
    "report_text",
    "tidy_columns",
    "what_to_do",
]
