"""`python -m analysis master`: a municipality master (municipalities.xlsx) for a real prefecture.

A real dataset needs `municipalities.xlsx` / `.csv` with columns
``code, name, population, aging_rate, kaso, fiscal_strength``. This module fills in what the
project can take from official data — codes and names from the bundled code master
(data/external/municipality_codes.csv) and 財政力指数 from 総務省「全市町村の主要財政指標」 — and
leaves population, aging rate and 過疎 as empty, validated columns, with a Japanese instruction
sheet naming the official source of each. Before writing, the code master's municipalities of the
prefecture are checked against the financial workbook's (a merger after the master's vintage
would show here).

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import codes as codes_mod
from . import official
from .errors import AnalysisError
from .wareki import wareki_fy

MASTER_COLUMNS = ["code", "name", "population", "aging_rate", "kaso", "fiscal_strength"]
CODE_MASTER = "municipality_codes.csv"  # under data/external/
CODE_MASTER_VINTAGE = "2020-10"  # see data/README.md: how to update it
CODE_MASTER_SOURCE_JA = (
    "総務省「全国地方公共団体コード」（同梱のコード表 data/external/municipality_codes.csv、2020年10月時点）"
)
DATA_SHEET = "municipalities"
GUIDE_SHEET = "記入方法"

# column → (見出しの説明, 記入方法, 出典)
COLUMN_GUIDE = {
    "code": (
        "団体コード（全国地方公共団体コード、6桁・検査数字付き）",
        "記入済み。変更しないでください",
        CODE_MASTER_SOURCE_JA,
    ),
    "name": ("市町村名", "記入済み。変更しないでください", CODE_MASTER_SOURCE_JA),
    "population": (
        "人口（人）",
        "正の整数。全市町で同じ基準日の値（例: 調査年度の1月1日現在）を記入",
        "住民基本台帳に基づく人口、人口動態及び世帯数（総務省）",
    ),
    "aging_rate": (
        "高齢化率（%）",
        "65歳以上人口 ÷ 総人口 × 100。0〜100 の小数（例: 32.5）",
        "住民基本台帳に基づく人口、人口動態及び世帯数（総務省、年齢階級別人口）又は国勢調査（総務省統計局）",
    ),
    "kaso": (
        "過疎地域の指定",
        "1 = 過疎地域（市町村の全域が過疎地域、又は過疎地域とみなされる市町村）、0 = それ以外。"
        "一部過疎（区域の一部だけが過疎地域）は 0 とし、別の扱いにする場合は県内で統一して記録してください",
        "過疎地域の公示（総務省、過疎地域の持続的発展の支援に関する特別措置法）",
    ),
    "fiscal_strength": (
        "財政力指数",
        "記入済み（出典欄の年度の決算値）。空欄の市町は公表値がないもの",
        f"{official.SOURCE_JA} {official.SOURCE_URL}",
    ),
}


class MasterError(AnalysisError):
    """A municipality master that cannot be made or written as asked."""


@dataclass(frozen=True)
class MunicipalityMaster:
    """The master of one prefecture: the frame (MASTER_COLUMNS) and where its values came from."""

    prefecture_code: str
    prefecture: str
    frame: pd.DataFrame
    strength: official.FiscalStrength
    fiscal_year: int | None = None  # as asked; None = the latest bundled workbook

    @property
    def vintage(self) -> int | None:
        """Fiscal year (決算) of the 財政力指数 filled in; None when none could be."""
        return max(self.strength.vintages) if self.strength.vintages else None


def resolve_prefecture(value) -> tuple[str, str]:
    """("22", "静岡県") from 22, "22", "２２", "静岡県" or "静岡"."""
    table = _code_master()
    prefectures = dict(zip(table["pref_code"], table["prefecture"], strict=False))
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if text.isdigit() and text.zfill(2) in prefectures:
        return text.zfill(2), prefectures[text.zfill(2)]
    for code, name in prefectures.items():
        if text and text in (name, name[:-1]):  # 静岡県 or 静岡
            return code, name
    raise MasterError(
        f"都道府県が分かりません: {value!r}（2桁の都道府県コード 01〜47 か都道府県名を指定）",
        f"unknown prefecture {value!r}: give a 2-digit code 01–47 or the name",
        where="--prefecture",
    )


def _code_master() -> pd.DataFrame:
    from .paths import data_dir

    return codes_mod.load_master(data_dir() / "external" / CODE_MASTER)


def build_master(prefecture, *, fiscal_year: int | None = None) -> MunicipalityMaster:
    """Codes and names of the prefecture's municipalities, 財政力指数 filled in, the rest empty.

    `fiscal_year` picks the latest financial workbook at or before it (default: the latest
    bundled). Raises MasterError when the code master and that workbook list different
    municipalities for the prefecture (the code master then needs updating; see data/README.md).
    """
    pref_code, pref_name = resolve_prefecture(prefecture)
    table = _code_master()
    munis = table[(table["pref_code"] == pref_code) & (table["municipality"] != "")]
    years = official.available_years()
    year = years[-1] if fiscal_year is None else int(fiscal_year)
    used = [y for y in years if y <= year]
    if not used:
        raise MasterError(
            f"FY{year} 以前の「全市町村の主要財政指標」がありません（あるのは FY{years[0]}〜FY{years[-1]}）",
            f"no financial-indicator workbook at or before FY{year} (have FY{years[0]}–FY{years[-1]})",
            where="--fiscal-year",
        )
    _check_against_workbook(pref_code, pref_name, set(munis["lg_code"]), used[-1])
    strength = official.fiscal_strength(munis["lg_code"], year)
    frame = pd.DataFrame(
        {
            "code": munis["lg_code"].astype(str).to_numpy(),
            "name": munis["municipality"].to_numpy(),
            "population": pd.Series([None] * len(munis), dtype="float64").to_numpy(),
            "aging_rate": pd.Series([None] * len(munis), dtype="float64").to_numpy(),
            "kaso": pd.Series([None] * len(munis), dtype="float64").to_numpy(),
            "fiscal_strength": strength.frame["fiscal_strength"].to_numpy(),
        }
    )
    return MunicipalityMaster(pref_code, pref_name, frame.reset_index(drop=True), strength, fiscal_year)


def _check_against_workbook(pref_code: str, pref_name: str, master_codes: set[str], year: int) -> None:
    data = official.load_financial_indicators()
    book = data[(data["fiscal_year"] == year) & (data["code"].str[:2] == pref_code)]
    book_codes = set(book["code"])
    if master_codes == book_codes:
        return
    only_master = sorted(master_codes - book_codes)
    only_book = sorted(book_codes - master_codes)
    raise MasterError(
        f"{pref_name}の市町村がコード表（{CODE_MASTER_VINTAGE}時点、{len(master_codes)}団体）と"
        f"「全市町村の主要財政指標」FY{year}（{len(book_codes)}団体）で一致しません。"
        f"コード表だけにある: {'、'.join(only_master) or 'なし'}; 財政指標だけにある: {'、'.join(only_book) or 'なし'}。"
        "市町村の合併等でコード表が古くなっている可能性があります（更新方法は data/README.md）",
        f"{pref_name}: the code master ({CODE_MASTER_VINTAGE}, {len(master_codes)}) and the FY{year} financial "
        f"workbook ({len(book_codes)}) list different municipalities; only in the master: "
        f"{', '.join(only_master) or 'none'}; only in the workbook: {', '.join(only_book) or 'none'} "
        "(update the code master; see data/README.md)",
        where=f"data/external/{CODE_MASTER}",
    )


# --- where it may be written --------------------------------------------------------------------


def check_target(out: Path | str, prefecture_code: str, *, replace: bool = False) -> Path:
    """The resolved output path, or MasterError when writing there is not allowed.

    Allowed: a new .xlsx or .csv file (an existing one only with `replace`) outside
    data/external/ and outside any data/raw/<dataset>/ folder that belongs to another dataset
    (one whose dataset.yaml names another prefecture or is synthetic).
    """
    import yaml

    from .paths import data_dir

    out = Path(out).expanduser()
    if out.is_dir():
        out = out / "municipalities.xlsx"
    out = out.resolve()
    if out.suffix.lower() not in (".xlsx", ".csv"):
        raise MasterError(
            "出力ファイルの拡張子は .xlsx か .csv にしてください",
            "the output file must end in .xlsx or .csv",
            where=str(out),
        )
    root = data_dir().resolve()
    external, raw = root / "external", root / "raw"
    if out.is_relative_to(external):
        raise MasterError(
            "data/external/ は公表データの置き場で、書き込めません。別の出力先を指定してください",
            "data/external/ holds official data and is never written; choose another path",
            where=str(out),
        )
    if out.is_relative_to(raw):
        parts = out.relative_to(raw).parts
        if len(parts) < 2:
            raise MasterError(
                "data/raw/ の直下には書き込めません。data/raw/<データセット名>/ に書き出してください",
                "not directly into data/raw/; write into data/raw/<dataset>/",
                where=str(out),
            )
        meta_path = raw / parts[0] / "dataset.yaml"
        if meta_path.is_file():
            with open(meta_path, encoding="utf-8") as fh:
                meta = yaml.safe_load(fh) or {}
            other = str(meta.get("prefecture_code", "")).zfill(2)
            if meta.get("synthetic") or other != prefecture_code:
                raise MasterError(
                    f"data/raw/{parts[0]}/ は別のデータセット（都道府県コード {other}"
                    f"{'、架空データ' if meta.get('synthetic') else ''}）のフォルダです。書き込みません",
                    f"data/raw/{parts[0]}/ belongs to another dataset (prefecture {other}"
                    f"{', synthetic' if meta.get('synthetic') else ''}); refusing to write there",
                    where=str(out),
                )
    if out.exists() and not replace:
        raise MasterError(
            "ファイルが既にあります。上書きするときは --replace を付けてください",
            "file exists; pass --replace to overwrite it",
            where=str(out),
        )
    return out


# --- writing ------------------------------------------------------------------------------------


def write_master(
    prefecture, out: Path | str, *, replace: bool = False, fiscal_year: int | None = None
) -> tuple[Path, MunicipalityMaster]:
    """Build the master and write it to `out` (.xlsx with validation and instructions, or .csv)."""
    master = build_master(prefecture, fiscal_year=fiscal_year)
    target = check_target(out, master.prefecture_code, replace=replace)
    if target.suffix.lower() == ".csv":
        from .export import write_csv

        write_csv(master.frame, target)
    else:
        from .export import save_workbook

        save_workbook(_workbook(master), target)
    return target, master


def guide_rows(master: MunicipalityMaster) -> list[tuple[str, str, str, str]]:
    """(column, 内容, 記入方法, 出典) per column, the 財政力指数 row naming its vintage."""
    rows = []
    for col, (what, how, source) in COLUMN_GUIDE.items():
        if col == "fiscal_strength" and master.vintage is not None:
            source = f"{source}（{wareki_fy(master.vintage)}（FY{master.vintage}）決算）"
        rows.append((col, what, how, source))
    return rows


def _workbook(master: MunicipalityMaster):
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = DATA_SHEET
    n = len(master.frame)
    last = n + 1
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    given_fill = PatternFill("solid", fgColor="EDEDED")
    input_fill = PatternFill("solid", fgColor="FFF2CC")
    widths = {"code": 10, "name": 16, "population": 12, "aging_rate": 12, "kaso": 8, "fiscal_strength": 16}
    formats = {"code": "@", "population": "#,##0", "aging_rate": "0.0", "kaso": "0", "fiscal_strength": "0.00"}
    for j, col in enumerate(MASTER_COLUMNS, start=1):
        c = ws.cell(row=1, column=j, value=col)
        c.font = Font(bold=True)
        c.fill = header_fill
        what, how, source = COLUMN_GUIDE[col]
        c.comment = Comment(f"{what}\n{how}\n出典: {source}", "analysis master", width=320, height=160)
        ws.column_dimensions[c.column_letter].width = widths[col]
    for i, row in enumerate(master.frame.itertuples(index=False), start=2):
        for j, col in enumerate(MASTER_COLUMNS, start=1):
            value = getattr(row, col)
            c = ws.cell(
                row=i,
                column=j,
                value=None if pd.isna(value) else (str(value) if col in ("code", "name") else float(value)),
            )
            c.number_format = formats.get(col, "General")
            c.fill = input_fill if col in ("population", "aging_rate", "kaso") else given_fill
    ws.freeze_panes = "C2"

    def validation(kind: str, col: str, title: str, message: str, **kw) -> None:
        dv = DataValidation(
            type=kind,
            allow_blank=True,
            showErrorMessage=True,
            showInputMessage=True,
            errorStyle="stop",
            errorTitle=title,
            error=message,
            promptTitle=title,
            prompt=message,
            **kw,
        )
        letter = ws.cell(row=1, column=MASTER_COLUMNS.index(col) + 1).column_letter
        dv.add(f"{letter}2:{letter}{last}")
        ws.add_data_validation(dv)

    validation(
        "whole",
        "population",
        "人口",
        "人口は 1 以上の整数（人）で入力してください",
        operator="greaterThan",
        formula1="0",
    )
    validation(
        "decimal",
        "aging_rate",
        "高齢化率",
        "高齢化率は 0〜100 の数（%）で入力してください（例: 32.5）",
        operator="between",
        formula1="0",
        formula2="100",
    )
    validation("list", "kaso", "過疎地域", "過疎地域なら 1、それ以外は 0 を入力してください", formula1='"0,1"')
    validation(
        "decimal",
        "fiscal_strength",
        "財政力指数",
        "財政力指数は 0 以上の数で入力してください",
        operator="between",
        formula1="0",
        formula2="10",
    )

    g = wb.create_sheet(GUIDE_SHEET)
    wrap = Alignment(wrap_text=True, vertical="top")
    lines = [
        (f"市町村マスタ（{master.prefecture}、{n} 市町村）の記入方法", Font(bold=True, size=12)),
        (
            f"このファイルは `python -m analysis master --prefecture {master.prefecture_code}` で作成しました。"
            f"シート「{DATA_SHEET}」の黄色の列（population, aging_rate, kaso）を記入し、"
            "dataset.yaml の municipalities: にこのファイル名を書いてください。",
            None,
        ),
        (
            "1行目の列名（英語）はプログラムが読むので変更しないでください。行の追加・削除・並べ替えもしないでください。"
            "入力規則（人口は正の整数、高齢化率は 0〜100、過疎は 0/1）に合わない値は Excel が受け付けません。",
            None,
        ),
        (
            f"市町村の一覧は{CODE_MASTER_SOURCE_JA}によるもので、合併等があれば更新が必要です（data/README.md）。"
            f"今回は「全市町村の主要財政指標」FY{master.vintage}の一覧と照合し、一致しています。"
            if master.vintage
            else f"市町村の一覧は{CODE_MASTER_SOURCE_JA}によります。",
            None,
        ),
        ("", None),
    ]
    for i, (text, font) in enumerate(lines, start=1):
        c = g.cell(row=i, column=1, value=text)
        if font:
            c.font = font
        else:
            c.alignment = Alignment(wrap_text=True, vertical="top")
        g.merge_cells(start_row=i, start_column=1, end_row=i, end_column=4)
        g.row_dimensions[i].height = 15 if font or not text else 48
    top = len(lines) + 1
    for j, head in enumerate(("列", "内容", "記入方法", "出典"), start=1):
        c = g.cell(row=top, column=j, value=head)
        c.font = Font(bold=True)
        c.fill = header_fill
    for i, row in enumerate(guide_rows(master), start=top + 1):
        for j, value in enumerate(row, start=1):
            g.cell(row=i, column=j, value=value).alignment = wrap
        g.row_dimensions[i].height = 60
    notes_at = top + len(COLUMN_GUIDE) + 2
    notes = [_strength_note(master)]
    if master.strength.missing:
        notes.append("財政力指数が空欄の市町（公表値なし、推定していません）: " + "、".join(master.strength.missing))
    notes.append(
        "利用条件: 総務省のデータは政府標準利用規約（第2.0版）/ 公共データ利用規約（第1.0版）により、"
        "出典を明記して利用できます（CC BY 4.0 互換）。"
    )
    for k, text in enumerate(notes):
        c = g.cell(row=notes_at + k, column=1, value=text)
        c.alignment = Alignment(wrap_text=True, vertical="top")
        g.merge_cells(start_row=notes_at + k, start_column=1, end_row=notes_at + k, end_column=4)
        g.row_dimensions[notes_at + k].height = 32
    for letter, width in zip("ABCD", (16, 30, 50, 60), strict=False):
        g.column_dimensions[letter].width = width
    wb.properties.creator = "analysis"
    wb.properties.title = f"市町村マスタ {master.prefecture}"
    return wb


def _strength_note(master: MunicipalityMaster) -> str:
    if master.vintage is None:
        return "財政力指数: 該当する年度の公表値がないため空欄です（推定していません）。"
    which = "同梱の最新年度" if master.fiscal_year is None else f"FY{master.fiscal_year} 以前で最新の公表年度"
    return (
        f"財政力指数は{official.SOURCE_JA}の{wareki_fy(master.vintage)}（FY{master.vintage}）決算の値です"
        f"（{which}）。出典表記: 出典：{official.SOURCE_JA}（{wareki_fy(master.vintage)}）"
    )


def run_cli(args) -> int:
    """Handler of `python -m analysis master`: write the file, say what it holds; 2 on refusal."""
    try:
        target, master = write_master(args.prefecture, args.out, replace=args.replace, fiscal_year=args.fiscal_year)
    except AnalysisError as exc:
        print(f"エラー / error: {exc}", file=sys.stderr)
        return 2
    filled = int(master.frame["fiscal_strength"].notna().sum())
    print(f"市町村マスタを書き出しました / master written: {target}")
    print(
        f"  {master.prefecture}（{master.prefecture_code}）: {len(master.frame)} 市町村 / municipalities; "
        f"コード表 / code master {CODE_MASTER_VINTAGE}"
    )
    vintage = f"FY{master.vintage}（{wareki_fy(master.vintage)}決算）" if master.vintage else "なし / none"
    print(f"  財政力指数 / fiscal strength: {filled}/{len(master.frame)}, {vintage}")
    print("  記入が必要な列 / to fill in: population, aging_rate, kaso")
    if target.suffix.lower() == ".csv":
        for col, what, how, source in guide_rows(master):
            print(f"  {col}: {what} — {how}（出典: {source}）")
    return 0


__all__ = [
    "CODE_MASTER_VINTAGE",
    "MASTER_COLUMNS",
    "MasterError",
    "MunicipalityMaster",
    "build_master",
    "check_target",
    "guide_rows",
    "resolve_prefecture",
    "run_cli",
    "write_master",
]
