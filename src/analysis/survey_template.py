"""Next year's questionnaire as an Excel workbook, generated from the codebook and the master.

`python -m analysis template --dataset NAME --fiscal-year YYYY` writes the workbook the
prefecture sends to its municipalities: a cover sheet (表紙: title, deadline, where to return it,
how to answer, which answers each question accepts) and an answer sheet (回答) laid out like the
surveys the reader already knows (title row, group header row, question header row, one row per
municipality). Codes and names are pre-filled from the dataset's master and locked; each question
column offers exactly the codebook's answers in a drop-down list that refuses anything else;
required questions are highlighted; the sheets and the workbook structure are protected.

Because every municipality then answers in the same spellings and layout, the variations the
reader otherwise has to cope with do not arise; `analysis.collect` merges the returned files into
the dataset with the same builder (`build_workbook(..., answers=...)`).

The drop-down offers one spelling per answer value (the first spelling the codebook lists, e.g.
○ / × and 実施 / 移行準備 / 未実施). Other spellings the reader would accept are refused by Excel,
on purpose: uniform answers are the point of the template.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import re
import sys
from datetime import date
from pathlib import Path

import pandas as pd

from .codebook import Codebook, Question, answer_key, load_codebook
from .errors import AnalysisError
from .wareki import wareki_fy

COVER_SHEET = "表紙"
ANSWER_SHEET = "回答"
TITLE_ROW, GUIDE_ROW, NOTE_ROW, GROUP_ROW, HEADER_ROW = 1, 2, 3, 4, 5
FIRST_DATA_ROW = HEADER_ROW + 1
ID_GROUP_JA = "基本情報"
SYNTHETIC_NOTE_JA = "【架空データ】架空県のサンプルから作成した調査票です。実在の自治体とは関係ありません"
REQUIRED_FILL = "FFF2CC"  # light yellow: required questions
ID_FILL = "E7E6E6"  # grey: pre-filled, locked
HEADER_FILL = "DDEBF7"
PREFECTURE_FILL = "FCE4D6"  # cells the prefecture fills in on the cover
CONTACT_PLACEHOLDER = "（県で記入: 担当課名・メールアドレス・電話番号）"
_FILE_BAD = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


class TemplateError(AnalysisError):
    """A questionnaire that cannot be made or written as asked (ja / en)."""


# --- answers the workbook offers ----------------------------------------------------------------


def choices(book: Codebook, question: Question) -> list[str]:
    """The drop-down entries of a question: one spelling per non-missing answer value.

    Each is the first spelling the codebook lists for its value, so every entry is an answer the
    reader accepts and maps to a different value. Empty for free-text questions.
    """
    if question.answers == "text":
        return []
    spec = book.raw["answer_maps"][question.answers]
    out = []
    for value, spellings in spec.items():
        if value == "missing" or not spellings:
            continue
        out.append(str(spellings[0]))
    return out


def spelling_of(book: Codebook, question: Question) -> dict:
    """answer value (True/False, 'implemented', ...) -> the spelling the workbook writes for it."""
    table = book.answer_maps[question.answers]
    return {table[answer_key(s)]: s for s in choices(book, question)}


def _list_formula(book: Codebook, q: Question) -> str:
    items = choices(book, q)
    formula = '"' + ",".join(items) + '"'
    if any("," in s or '"' in s for s in items) or len(formula) > 257:
        raise TemplateError(
            f"設問『{q.header_ja}』の選択肢はドロップダウンリストにできません（カンマ・引用符を含むか、合計255文字を超えます）",
            f"the answers of {q.variable} cannot form a drop-down list (a comma or quote, or over 255 characters)",
            where=str(book.path),
        )
    return formula


# --- the workbook ---------------------------------------------------------------------------------


def title(book: Codebook, fiscal_year: int) -> str:
    """「令和8年度（2026年度）包括的な支援体制に係る市町アンケート調査」."""
    return f"{wareki_fy(fiscal_year)}（{fiscal_year}年度）{book.raw['survey']['title_ja']}"


def wareki_date(day: date) -> str:
    """2026-10-31 -> 令和8年10月31日 (dates before 令和 in the Western calendar)."""
    if day < date(2019, 5, 1):
        return f"{day.year}年{day.month}月{day.day}日"
    n = day.year - 2018
    return f"令和{'元' if n == 1 else n}年{day.month}月{day.day}日"


def columns(book: Codebook) -> list[tuple[str, str, str]]:
    """(group header, header, variable) of every column of the answer sheet, left to right."""
    ids = book.id_columns
    out = [(ID_GROUP_JA, ids["code"]["header_ja"], "code"), (ID_GROUP_JA, ids["name"]["header_ja"], "name")]
    out += [(q.group_ja or q.header_ja, q.header_ja, q.variable) for q in book.questions]
    return out


def build_workbook(
    book: Codebook,
    master: pd.DataFrame,
    fiscal_year: int,
    *,
    answers: pd.DataFrame | None = None,
    codes: list[str] | None = None,
    deadline: date | None = None,
    synthetic: bool = False,
    prefecture: str | None = None,
):
    """The questionnaire as an openpyxl Workbook (not saved).

    `master` gives the rows (code, name); `codes` restricts them (one municipality's file).
    `answers` (a tidy survey frame: code + codebook variables) fills the answer cells, for the
    combined file of the returned questionnaires; its municipalities are the rows then.
    """
    from openpyxl import Workbook
    from openpyxl.workbook.protection import WorkbookProtection

    rows = master[["code", "name"]].astype({"code": str}).sort_values("code")
    if answers is not None:
        rows = rows[rows["code"].isin(set(answers["code"].astype(str)))]
    if codes is not None:
        unknown = sorted(set(codes) - set(rows["code"]))
        if unknown:
            raise TemplateError(
                f"市町村マスタにない市町村コードです: {', '.join(unknown)}",
                f"codes not in the master: {', '.join(unknown)}",
            )
        rows = rows[rows["code"].isin(set(codes))]
    if rows.empty:
        raise TemplateError("調査票に載せる市町村がありません", "no municipality to put on the questionnaire")
    wb = Workbook()
    cover = wb.active
    cover.title = COVER_SHEET
    ws = wb.create_sheet(ANSWER_SHEET)
    one = rows.iloc[0] if len(rows) == 1 and answers is None else None
    _cover(cover, book, fiscal_year, deadline, synthetic, prefecture, one)
    _answer_sheet(ws, book, fiscal_year, rows, answers, synthetic)
    wb.active = 1 if answers is not None else 0
    wb.security = WorkbookProtection(lockStructure=True)
    wb.properties.creator = "analysis"
    wb.properties.title = title(book, fiscal_year)
    return wb


def _put(ws, row: int, col: int, value, **style):
    """Write a cell; text is always stored as text (never a formula, whatever it starts with)."""
    c = ws.cell(row=row, column=col, value=value)
    if isinstance(value, str):
        c.data_type = "s"
        if value[:1] in ("=", "+", "-", "@"):
            c.quotePrefix = True
    for key, v in style.items():
        setattr(c, key, v)
    return c


def _protect(ws) -> None:
    from openpyxl.worksheet.protection import SheetProtection

    # no password: the prefecture can lift it (Excel: 校閲 > シート保護の解除); column widths and
    # row heights stay adjustable, inserting/deleting rows and columns is refused
    ws.protection = SheetProtection(
        sheet=True,
        formatColumns=False,
        formatRows=False,
        insertRows=True,
        insertColumns=True,
        deleteRows=True,
        deleteColumns=True,
        sort=True,
        autoFilter=True,
        selectLockedCells=False,
        selectUnlockedCells=False,
    )


def _answer_sheet(
    ws, book: Codebook, fiscal_year: int, rows: pd.DataFrame, answers: pd.DataFrame | None, synthetic: bool
) -> None:
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Protection, Side
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    cols = columns(book)
    thin = Side(style="thin")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    fill = {
        k: PatternFill("solid", fgColor=v)
        for k, v in {"req": REQUIRED_FILL, "id": ID_FILL, "head": HEADER_FILL}.items()
    }
    _put(ws, TITLE_ROW, 1, f"{title(book, fiscal_year)} 回答票", font=Font(bold=True, size=13))
    _put(
        ws,
        GUIDE_ROW,
        1,
        "各欄はセルを選ぶと表示される▼の一覧から選んでください（一覧にない値は入力できません）。"
        "黄色の列は必須の設問です。市町村コード・市町村名は変更できません。詳しくは「表紙」シートをご覧ください。",
    )
    if synthetic:
        _put(ws, NOTE_ROW, 1, SYNTHETIC_NOTE_JA, font=Font(bold=True, color="C00000"))
    questions = {q.variable: q for q in book.questions}
    for j, (group, header, var) in enumerate(cols, start=1):
        q = questions.get(var)
        head_fill = fill["req"] if q is not None and q.required else fill["head"]
        _put(
            ws,
            GROUP_ROW,
            j,
            group,
            font=Font(bold=True),
            border=border,
            fill=fill["head"],
            alignment=Alignment(horizontal="center", vertical="center"),
        )
        _put(
            ws,
            HEADER_ROW,
            j,
            header,
            font=Font(bold=True),
            border=border,
            fill=head_fill,
            alignment=Alignment(wrap_text=True, vertical="center", horizontal="center"),
        )
        width = 11 if var == "code" else 12 if var == "name" else 40 if q is not None and q.answers == "text" else 15
        ws.column_dimensions[get_column_letter(j)].width = width
    start = 1
    for j in range(2, len(cols) + 2):  # merge runs of the same group in the group row
        if j > len(cols) or cols[j - 1][0] != cols[start - 1][0]:
            if j - 1 > start:
                ws.merge_cells(start_row=GROUP_ROW, start_column=start, end_row=GROUP_ROW, end_column=j - 1)
            start = j
    ws.row_dimensions[HEADER_ROW].height = 75
    by_code = {} if answers is None else {str(r["code"]): r for r in answers.to_dict("records")}
    spell = {q.variable: spelling_of(book, q) for q in book.questions if q.answers != "text"}
    last = FIRST_DATA_ROW + len(rows) - 1
    for i, (code, name) in enumerate(zip(rows["code"], rows["name"], strict=False), start=FIRST_DATA_ROW):
        for j, (_, _, var) in enumerate(cols, start=1):
            q = questions.get(var)
            if q is None:
                _put(
                    ws,
                    i,
                    j,
                    str(code) if var == "code" else str(name),
                    border=border,
                    fill=fill["id"],
                    number_format="@",
                    protection=Protection(locked=True),
                )
                continue
            value = _answer_cell(by_code.get(str(code), {}).get(var), q, spell.get(var))
            _put(
                ws,
                i,
                j,
                value,
                border=border,
                protection=Protection(locked=False),
                alignment=Alignment(
                    wrap_text=q.answers == "text",
                    vertical="center",
                    horizontal="left" if q.answers == "text" else "center",
                ),
                **({"fill": fill["req"]} if q.required else {}),
            )
    for j, (_, _, var) in enumerate(cols, start=1):
        q = questions.get(var)
        if q is None or q.answers == "text":
            continue
        items = choices(book, q)
        dv = DataValidation(
            type="list",
            formula1=_list_formula(book, q),
            allow_blank=True,
            showErrorMessage=True,
            errorStyle="stop",
            showInputMessage=True,
            errorTitle="入力できない値です",
            error=f"『{q.header_ja}』には {' / '.join(items)} のいずれかを▼の一覧から選んでください。",
            promptTitle="▼から選択" + ("（必須）" if q.required else ""),
            prompt=f"{' / '.join(items)} から選んでください。",
        )
        col = get_column_letter(j)
        dv.add(f"{col}{FIRST_DATA_ROW}:{col}{last}")
        ws.add_data_validation(dv)
    ws.freeze_panes = ws.cell(row=FIRST_DATA_ROW, column=3)
    ws.print_title_rows = f"{GROUP_ROW}:{HEADER_ROW}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    _protect(ws)


def _answer_cell(value, q: Question, spelling: dict | None):
    """A tidy answer as the workbook writes it (None for missing)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if q.answers == "text":
        return str(value)
    key = bool(value) if q.answers == "yes_no" else value
    if spelling is None or key not in spelling:
        raise TemplateError(
            f"設問『{q.header_ja}』の回答『{value}』に対応する選択肢がありません",
            f"no drop-down entry for answer {value!r} of {q.variable}",
        )
    return spelling[key]


def _cover(
    ws, book: Codebook, fiscal_year: int, deadline: date | None, synthetic: bool, prefecture: str | None, one
) -> None:
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Protection, Side

    thin = Side(style="thin")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    bold = Font(bold=True)
    pref_fill = PatternFill("solid", fgColor=PREFECTURE_FILL)
    wrap = Alignment(wrap_text=True, vertical="top")
    ws.column_dimensions["A"].width = 18
    ws.column_dimensions["B"].width = 22
    ws.column_dimensions["C"].width = 44
    ws.column_dimensions["D"].width = 30
    ws.column_dimensions["E"].width = 8
    _put(ws, 1, 1, title(book, fiscal_year), font=Font(bold=True, size=14))
    if synthetic:
        _put(ws, 2, 1, SYNTHETIC_NOTE_JA, font=Font(bold=True, color="C00000"))
    if prefecture:
        _put(ws, 3, 1, f"調査主体: {prefecture}")
    r = 4
    if one is not None:
        _put(ws, r, 1, "回答する市町", font=bold, border=border)
        _put(ws, r, 2, f"{one['code']} {one['name']}", font=bold, border=border)
        r += 1
    _put(ws, r, 1, "提出期限", font=bold, border=border)
    _put(
        ws,
        r,
        2,
        deadline,
        border=border,
        fill=pref_fill,
        protection=Protection(locked=False),
        number_format='yyyy"年"m"月"d"日"',
        font=Font(bold=True, color="C00000"),
        alignment=Alignment(horizontal="left"),
    )
    _put(ws, r, 3, f"（{wareki_date(deadline)}）" if deadline else "（県で記入）")
    r += 1
    _put(ws, r, 1, "提出先", font=bold, border=border)
    ws.merge_cells(start_row=r, start_column=2, end_row=r, end_column=4)
    _put(
        ws,
        r,
        2,
        CONTACT_PLACEHOLDER,
        border=border,
        fill=pref_fill,
        protection=Protection(locked=False),
        alignment=wrap,
    )
    r += 1
    _put(ws, r, 1, "回答の対象", font=bold, border=border)
    _put(ws, r, 2, f"{wareki_fy(fiscal_year)}（{fiscal_year}年4月〜{fiscal_year + 1}年3月）の取組の状況", border=border)
    r += 2
    _put(ws, r, 1, "回答のしかた", font=Font(bold=True, size=12))
    steps = [
        s
        for s in [
            "「回答」シートの自市町の行に回答してください。市町村コードと市町村名は記入済みで、変更できません。",
            "各欄はセルを選ぶと表示される▼の一覧から選んでください。一覧にない値（空白以外）は入力できません。"
            "貼り付けは一覧の検査を通らないため、使わないでください。",
            "黄色の設問は必須です。すべて回答してください。「備考」は任意の自由記述です。",
            _meaning(book),
            "シートや行・列の追加・削除、見出しの書き換えはしないでください（県の集計にそのまま使います）。",
            "Excel 形式（.xlsx）のまま保存し、提出期限までに提出先へメールで返送してください。"
            "ファイル名は変えてもかまいません。",
        ]
        if s
    ]
    for k, text in enumerate(steps, start=1):
        r += 1
        _put(ws, r, 1, f"{k}.", alignment=Alignment(horizontal="right", vertical="top"))
        ws.merge_cells(start_row=r, start_column=2, end_row=r, end_column=5)
        _put(ws, r, 2, text, alignment=wrap)
        ws.row_dimensions[r].height = 32
    r += 2
    _put(ws, r, 1, "設問と回答の選択肢", font=Font(bold=True, size=12))
    r += 1
    head = ["区分", "設問", "回答の選択肢", "必須"]
    for j, text in enumerate(head, start=2):
        _put(ws, r, j, text, font=bold, border=border, fill=PatternFill("solid", fgColor=HEADER_FILL))
    _put(ws, r, 1, "No.", font=bold, border=border, fill=PatternFill("solid", fgColor=HEADER_FILL))
    for k, q in enumerate(book.questions, start=1):
        r += 1
        items = choices(book, q)
        answer = " / ".join(items) if items else "自由記述（任意）"
        cells = [str(k), q.group_ja, q.header_ja, answer, "必須" if q.required else "任意"]
        for j, text in enumerate(cells, start=1):
            _put(
                ws,
                r,
                j,
                text,
                border=border,
                alignment=wrap,
                **({"fill": PatternFill("solid", fgColor=REQUIRED_FILL)} if q.required and j == 5 else {}),
            )
    ws.freeze_panes = None
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    _protect(ws)  # the deadline and contact cells stay editable (unlocked)


def _meaning(book: Codebook) -> str:
    """What the answers mean, from the codebook's maps (○/× and any other lists)."""
    parts = []
    yes_no = next((q for q in book.questions if q.answers == "yes_no"), None)
    if yes_no is not None:
        sp = spelling_of(book, yes_no)
        parts.append(
            f"{sp[True]} は「実施している／活用した／課題と感じている」、{sp[False]} は「そうでない」ことを表します。"
        )
    for q in book.questions:
        if q.answers not in ("yes_no", "text"):
            parts.append(f"『{q.header_ja}』は {' / '.join(choices(book, q))} から選びます。")
    return "".join(parts)


# --- where it may be written ----------------------------------------------------------------------


def check_target(out: Path | str, *, replace: bool = False) -> Path:
    """The resolved .xlsx path, or TemplateError: never data/ inputs, never an existing file
    without `replace`."""
    out = Path(out).expanduser().resolve()
    if out.suffix.lower() != ".xlsx":
        raise TemplateError(
            "出力ファイルの拡張子は .xlsx にしてください", "the output file must end in .xlsx", where=str(out)
        )
    if out.is_dir():
        raise TemplateError(
            "出力先がフォルダです。ファイル名を指定してください", "the output path is a folder", where=str(out)
        )
    _refuse_inputs(out)
    if out.exists() and not replace:
        raise TemplateError(
            "ファイルが既にあります。上書きするときは --replace を付けてください",
            "file exists; pass --replace to overwrite it",
            where=str(out),
        )
    return out


def _refuse_inputs(path: Path) -> None:
    from .paths import data_dir

    root = data_dir().resolve()
    for sub in ("raw", "external", "codebook"):
        if path.is_relative_to(root / sub):
            raise TemplateError(
                f"data/{sub}/ は入力データの置き場です。調査票はここには書き出しません。別の出力先を指定してください",
                f"data/{sub}/ holds inputs; questionnaires are not written there; choose another path",
                where=str(path),
            )


def municipality_file_name(code: str, name: str, fiscal_year: int) -> str:
    """`<code>_<name>_FY<yyyy>.xlsx`, with characters that file systems refuse replaced by _."""
    return f"{code}_{_FILE_BAD.sub('_', str(name)).strip() or 'municipality'}_FY{fiscal_year}.xlsx"


def parse_deadline(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise TemplateError(
            f"提出期限『{text}』は日付として読めません（例: 2026-10-31）",
            f"deadline {text!r} is not a date (YYYY-MM-DD)",
            where="--deadline",
        ) from None


def write_template(
    dataset: str,
    fiscal_year: int,
    *,
    out: Path | str | None = None,
    per_municipality: Path | str | None = None,
    deadline: date | None = None,
    replace: bool = False,
    book: Codebook | None = None,
) -> list[Path]:
    """Write the questionnaire of `dataset` for `fiscal_year`; return the files written.

    `out` gets the workbook with every municipality (default: ./survey_FY<yyyy>_template.xlsx,
    unless only `per_municipality` is given); `per_municipality` is a folder that gets one file per
    municipality. Every target is checked before anything is written.
    """
    from .datasets import load_dataset
    from .export import save_workbook

    if isinstance(fiscal_year, bool) or not isinstance(fiscal_year, int) or not 1989 <= fiscal_year <= 2100:
        raise TemplateError(
            f"年度『{fiscal_year}』が不正です（例: 2026）",
            f"invalid fiscal year {fiscal_year!r}",
            where="--fiscal-year",
        )
    ds = load_dataset(dataset)
    book = book or load_codebook()
    master = ds.master()
    pref = ds.meta.get("prefecture_ja")
    targets: list[tuple[Path, list[str] | None]] = []
    if out is not None or per_municipality is None:
        targets.append((check_target(out or Path(f"survey_FY{fiscal_year}_template.xlsx"), replace=replace), None))
    if per_municipality is not None:
        folder = Path(per_municipality).expanduser().resolve()
        if folder.exists() and not folder.is_dir():
            raise TemplateError(
                "--per-municipality にはフォルダを指定してください",
                "--per-municipality must be a folder",
                where=str(folder),
            )
        _refuse_inputs(folder)
        for code, name in zip(master["code"], master["name"], strict=False):
            targets.append(
                (check_target(folder / municipality_file_name(code, name, fiscal_year), replace=replace), [str(code)])
            )
    seen = [t for t, _ in targets]
    if len(set(seen)) != len(seen):
        raise TemplateError(
            "同じファイル名になる市町があります（市町村マスタを確認してください）",
            "two municipalities would get the same file name; check the master",
        )
    written = []
    for target, only in targets:
        wb = build_workbook(
            book, master, fiscal_year, codes=only, deadline=deadline, synthetic=ds.synthetic, prefecture=pref
        )
        written.append(save_workbook(wb, target))
    return written


def run_cli(args) -> int:
    """Handler of `python -m analysis template`: 0 written, 2 refused (message in ja / en)."""
    from .datasets import DatasetError
    from .survey import SurveyError

    try:
        deadline = parse_deadline(args.deadline)
        files = write_template(
            args.dataset,
            args.fiscal_year,
            out=args.out,
            per_municipality=args.per_municipality,
            deadline=deadline,
            replace=args.replace,
        )
    except (AnalysisError, DatasetError, SurveyError, OSError) as exc:
        print(f"エラー / error: {exc}", file=sys.stderr)
        return 2
    head = files[0] if args.out is not None or args.per_municipality is None else None
    if head is not None:
        print(f"調査票を書き出しました / questionnaire written: {head}")
    if args.per_municipality is not None:
        n = len(files) - (1 if head is not None else 0)
        print(f"市町別の調査票 {n} 件を書き出しました / {n} per-municipality file(s) written: {args.per_municipality}")
    if deadline is None:
        print(
            "提出期限は空欄です（表紙のセルに記入するか --deadline で指定）/ the deadline cell is blank "
            "(fill it in on the cover or pass --deadline)"
        )
    print(
        "表紙の「提出先」に県の担当課・連絡先を記入してから配布してください / fill in the return address "
        "(提出先) on the cover before sending"
    )
    return 0


__all__ = [
    "ANSWER_SHEET",
    "COVER_SHEET",
    "FIRST_DATA_ROW",
    "HEADER_ROW",
    "TemplateError",
    "build_workbook",
    "check_target",
    "choices",
    "columns",
    "municipality_file_name",
    "parse_deadline",
    "run_cli",
    "spelling_of",
    "title",
    "wareki_date",
    "write_template",
]
