"""Merge the questionnaires municipalities send back into the dataset's survey file of a year.

`python -m analysis collect --dataset NAME --fiscal-year YYYY DIR` reads every Excel file in DIR
(and its subfolders) as the e-mails left them: any file names, other attachments among them, a
municipality that sent its file twice, some that have not answered yet. Each workbook is read with
the survey reader (`read_survey`, the same validation as `validate` and `run`), then:

* a workbook without a survey table (no code/name header, or no codebook question) is ignored
  and named (a warning); anything that is not .xlsx/.xlsm is ignored and named too;
* a workbook with reader errors (an answer outside the codebook, another fiscal year in the
  title, a broken file, ...) is an error naming the file and cell — nothing is written;
* the same municipality in two files: identical answers are a warning (one is used), different
  answers an error naming both files and the questions that differ;
* municipalities of the master with no file are listed; that is a problem (nothing written)
  unless `--allow-missing` is given, in which case they are left out of the file, so the reader
  reports them as not responding;
* a blank required answer is a warning naming the file and question.

Only when nothing is wrong is the combined file written: data/raw/<dataset>/survey_FY<yyyy>.xlsx
in the questionnaire's own layout (`survey_template.build_workbook` with the answers), read back
with the reader and compared with what was collected before it is moved into place, and the year
is added to `surveys` in dataset.yaml. An existing survey file or `surveys` entry is replaced only
with `--replace` (the previous file is never deleted). dataset.yaml is rewritten by the YAML
library: keys and values are kept, the comment lines at the top of the file are kept, other
comments are lost.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .codebook import Codebook, load_codebook
from .errors import AnalysisError

XLSX_SUFFIXES = (".xlsx", ".xlsm")
SEVERITY_JA = {"error": "エラー", "warning": "警告", "info": "情報"}
# reader issues that say "this is not a survey table" rather than "this survey has an error"
_NOT_A_SURVEY = ("header row with the code or name column not found", "the file holds no cells")
_NO_ANSWER = "no answer from municipality"


class CollectError(AnalysisError):
    """The returned files cannot be merged, or the result cannot be written (ja / en)."""


@dataclass(frozen=True)
class Message:
    severity: str  # error, warning, info
    ja: str
    en: str
    file: str = ""  # file (relative to the folder) the message is about

    def text(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"[{SEVERITY_JA[self.severity]}/{self.severity}] {where}{self.ja} / {self.en}"


@dataclass
class Collection:
    """What the folder held: the combined answers and every message about it."""

    dataset: str
    fiscal_year: int
    folder: Path
    tidy: pd.DataFrame  # one row per municipality found, by code
    sources: dict[str, list[str]]  # code -> files holding it (first is used)
    missing: list[str]  # master codes without a file
    messages: list[Message] = field(default_factory=list)

    @property
    def errors(self) -> list[Message]:
        return [m for m in self.messages if m.severity == "error"]

    def problems(self, allow_missing: bool = False) -> bool:
        return bool(self.errors) or (bool(self.missing) and not allow_missing)


def _files(folder: Path) -> list[Path]:
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        out.append(p)
    return out


def _blank(value) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value))


def _issue_message(rec: dict, rel: str) -> Message:
    """A reader issue (file, sheet, row, cell, column, value, reasons) as a message on `rel`."""
    where_ja, where_en = [], []
    if rec.get("sheet"):
        where_ja.append(f"シート『{rec['sheet']}』")
        where_en.append(f"sheet {rec['sheet']}")
    if rec.get("cell"):
        where_ja.append(f"セル {rec['cell']}")
        where_en.append(f"cell {rec['cell']}")
    elif rec.get("row") is not None and not pd.isna(rec.get("row")):
        where_ja.append(f"{int(rec['row'])}行")
        where_en.append(f"row {int(rec['row'])}")
    if rec.get("column"):
        where_ja.append(f"列『{rec['column']}』")
        where_en.append(f"column {rec['column']}")
    if rec.get("value") not in (None, ""):
        where_ja.append(f"値『{rec['value']}』")
        where_en.append(f"value {rec['value']!r}")
    ja = " ".join(where_ja)
    en = ", ".join(where_en)
    return Message(
        rec["severity"],
        f"{ja}: {rec['reason_ja']}" if ja else rec["reason_ja"],
        f"{en}: {rec['reason_en']}" if en else rec["reason_en"],
        rel,
    )


def collect(
    dataset: str, fiscal_year: int, folder: Path | str, *, allow_missing: bool = False, book: Codebook | None = None
) -> Collection:
    """Read and check every returned file in `folder`; writes nothing.

    A missing municipality is an error message unless `allow_missing` (then a warning).
    """
    from .datasets import load_dataset
    from .survey import SurveyError, read_survey

    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise CollectError(
            "回収したファイルのフォルダがありません", "the folder of returned files does not exist", where=str(folder)
        )
    ds = load_dataset(dataset)
    book = book or load_codebook()
    master = ds.master()
    names = dict(zip(master["code"].astype(str), master["name"], strict=False))
    variables = book.variables
    required = [q for q in book.questions if q.required]
    msgs: list[Message] = []
    records: dict[str, dict] = {}
    sources: dict[str, list[str]] = {}
    for path in _files(folder):
        rel = path.relative_to(folder).as_posix()
        if path.name.startswith("~$"):
            msgs.append(
                Message("info", "Excel の一時ファイルのため読み込みませんでした", "Excel lock file skipped", rel)
            )
            continue
        if path.suffix.lower() not in XLSX_SUFFIXES:
            msgs.append(
                Message(
                    "warning",
                    "Excel (.xlsx) ではないため読み込みませんでした（回答なら .xlsx で送り直してもらってください）",
                    "not an .xlsx workbook; ignored (if it is an answer, ask for it again as .xlsx)",
                    rel,
                )
            )
            continue
        try:
            result = read_survey(
                path, book, master, fiscal_year=fiscal_year, prefecture_code=ds.meta.get("prefecture_code")
            )
        except SurveyError as exc:
            reasons = " ".join(exc.issues["reason_en"].astype(str))
            if any(k in reasons for k in _NOT_A_SURVEY):
                msgs.append(
                    Message(
                        "warning",
                        "調査票の回答表が見つからないため、調査票ではないファイルとして読み飛ばしました",
                        "no survey table found; ignored as not a questionnaire",
                        rel,
                    )
                )
            elif not exc.issues.empty:
                msgs.extend(
                    _issue_message(rec, rel) for rec in exc.issues.to_dict("records") if rec["severity"] == "error"
                )
            else:
                msgs.append(Message("error", f"ファイルを読めません（{exc}）", f"cannot read the file: {exc}", rel))
            continue
        if not set(result.info.get("columns", {})) & set(variables):
            msgs.append(
                Message(
                    "warning",
                    "市町村の列はありますが設問の列がないため、調査票ではないファイルとして読み飛ばしました",
                    "a municipality column but no question column; ignored as not a questionnaire",
                    rel,
                )
            )
            continue
        issues = result.issues[~result.issues["reason_en"].astype(str).str.startswith(_NO_ANSWER)]
        kept = issues[issues["severity"].isin(["error", "warning"])]
        msgs.extend(_issue_message(rec, rel) for rec in kept.to_dict("records"))
        if (kept["severity"] == "error").any():
            continue
        for rec in result.tidy.to_dict("records"):
            code = str(rec["code"])
            label = f"{code} {names.get(code, '')}"
            if all(_blank(rec.get(v)) for v in variables):
                msgs.append(
                    Message(
                        "warning",
                        f"{label}: 回答が1つも記入されていないため、未回答として扱います",
                        f"{code}: no answer filled in; treated as not answered",
                        rel,
                    )
                )
                continue
            blank = [q.header_ja for q in required if _blank(rec.get(q.variable))]
            if blank:
                shown = "』『".join(blank[:3]) + (f"』ほか{len(blank) - 3}問" if len(blank) > 3 else "』")
                msgs.append(
                    Message(
                        "warning",
                        f"{label}: 必須の設問 {len(blank)} 問が未回答です（『{shown}）",
                        f"{code}: {len(blank)} required question(s) left blank",
                        rel,
                    )
                )
            if code not in records:
                records[code], sources[code] = rec, [rel]
                continue
            first = sources[code][0]
            sources[code].append(rel)
            diff = _differs(records[code], rec, variables)
            if diff:
                heads = "』『".join(book.question(v).header_ja for v in diff)
                msgs.append(
                    Message(
                        "error",
                        f"{label} の回答が複数のファイルにあり、内容が違います（『{first}』と『{rel}』、違う設問: 『{heads}』）。"
                        "どちらが正しいか市町に確認し、不要な方をフォルダから除いてください",
                        f"{code} answered in two files with different answers ({first} and {rel}; differing: "
                        f"{', '.join(diff)}); ask the municipality which is right and remove the other file",
                        rel,
                    )
                )
            else:
                msgs.append(
                    Message(
                        "warning",
                        f"{label} の回答が複数のファイルにあります（『{first}』と『{rel}』、内容は同じ）。『{first}』を使います",
                        f"{code} answered in two files with identical answers ({first} and {rel}); using {first}",
                        rel,
                    )
                )
    missing = sorted(set(names) - set(records))
    if missing:
        listed = "、".join(f"{c} {names[c]}" for c in missing)
        what = (
            "未回答のまま書き出します（--allow-missing）"
            if allow_missing
            else "回答を待つか、未回答のまま書き出すときは --allow-missing を付けてください"
        )
        what_en = (
            "written without them (--allow-missing)"
            if allow_missing
            else "wait for them, or pass --allow-missing to write the file without them"
        )
        msgs.append(
            Message(
                "warning" if allow_missing else "error",
                f"回答（ファイル）のない市町が {len(missing)} あります: {listed}。{what}",
                f"no file from {len(missing)} municipalit{'y' if len(missing) == 1 else 'ies'}: "
                f"{', '.join(missing)}; {what_en}",
            )
        )
    columns = ["fiscal_year", "code", "name", *variables]
    frame = pd.DataFrame([records[c] for c in sorted(records)], columns=columns)
    return Collection(
        dataset=ds.name,
        fiscal_year=fiscal_year,
        folder=folder,
        tidy=frame,
        sources=sources,
        missing=missing,
        messages=msgs,
    )


def _differs(a: dict, b: dict, variables: list[str]) -> list[str]:
    """Variables whose answers differ between two tidy records (missing equals missing)."""
    out = []
    for v in variables:
        x, y = a.get(v), b.get(v)
        if _blank(x) and _blank(y):
            continue
        if _blank(x) != _blank(y) or x != y:
            out.append(v)
    return out


# --- writing ---------------------------------------------------------------------------------------


def survey_file_name(fiscal_year: int) -> str:
    return f"survey_FY{fiscal_year}.xlsx"


def write_collection(
    coll: Collection,
    *,
    out: Path | str | None = None,
    replace: bool = False,
    allow_missing: bool = False,
    book: Codebook | None = None,
) -> Path:
    """Write the combined survey file (default: into the dataset, registered in dataset.yaml).

    Refuses (CollectError) when the collection has problems, when the file or the `surveys`
    entry exists without `replace`, or when `out` is inside data/. The file is read back with
    the reader and must give exactly the collected answers before it is moved into place.
    """
    import io

    from .datasets import load_dataset
    from .export import atomic_path, reproducible_zip
    from .paths import data_dir
    from .survey_template import build_workbook

    if coll.problems(allow_missing):
        raise CollectError("問題があるため調査ファイルを書き出しませんでした", "problems found; nothing written")
    if coll.tidy.empty:
        raise CollectError("回答のある市町がないため書き出しませんでした", "no answers; nothing written")
    ds = load_dataset(coll.dataset)
    book = book or load_codebook()
    fy = coll.fiscal_year
    meta_path = ds.root / "dataset.yaml"
    surveys = {int(k): v for k, v in (ds.meta.get("surveys") or {}).items()}
    if out is None:
        target = (ds.root / survey_file_name(fy)).resolve()
        if fy in surveys and not replace:
            raise CollectError(
                f"dataset.yaml に{fy}年度の調査ファイル（{surveys[fy]}）が既に登録されています。"
                "置き換えるときは --replace を付けてください",
                f"dataset.yaml already lists a survey for FY{fy} ({surveys[fy]}); pass --replace",
                where=str(meta_path),
            )
    else:
        target = Path(out).expanduser().resolve()
        if target.suffix.lower() != ".xlsx":
            raise CollectError(
                "出力ファイルの拡張子は .xlsx にしてください", "the output file must end in .xlsx", where=str(target)
            )
        if target.is_relative_to(data_dir().resolve()):
            raise CollectError(
                "--out に data/ の中は指定できません（データセットに入れるときは --out を付けずに実行）",
                "--out cannot be inside data/ (omit --out to write into the dataset)",
                where=str(target),
            )
    if target.is_dir():
        raise CollectError("出力先がフォルダです", "the output path is a folder", where=str(target))
    if target.exists() and not replace:
        raise CollectError(
            "調査ファイルが既にあります。置き換えるときは --replace を付けてください",
            "the survey file exists; pass --replace to overwrite it",
            where=str(target),
        )
    wb = build_workbook(
        book, ds.master(), fy, answers=coll.tidy, synthetic=ds.synthetic, prefecture=ds.meta.get("prefecture_ja")
    )
    buf = io.BytesIO()
    wb.save(buf)
    data = reproducible_zip(buf.getvalue())
    existed = target.exists()
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
        _check_written(tmp, coll, ds, book)
    if out is not None:
        return target
    try:
        surveys[fy] = target.name
        _update_dataset_yaml(meta_path, surveys)
        load_dataset(coll.dataset).survey_path(fy)
    except Exception:
        if not existed:
            target.unlink(missing_ok=True)
        raise
    return target


def _check_written(path: Path, coll: Collection, ds, book: Codebook) -> None:
    """The file as written must read back as exactly the collected answers, without errors."""
    from .survey import read_survey

    result = read_survey(
        path, book, ds.master(), fiscal_year=coll.fiscal_year, prefecture_code=ds.meta.get("prefecture_code")
    )
    expected = coll.tidy.copy()
    expected["fiscal_year"] = coll.fiscal_year
    got = result.tidy
    expected = expected.astype(got.dtypes.to_dict())[list(got.columns)].reset_index(drop=True)
    if not result.ok or not got.equals(expected):
        raise CollectError(
            "書き出した調査ファイルを読み直すと回収した回答と一致しません（書き出しを取り消しました）",
            "the written survey file does not read back as the collected answers (not written)",
            where=str(path),
        )


def _update_dataset_yaml(meta_path: Path, surveys: dict[int, str]) -> None:
    """Set `surveys` in dataset.yaml: other keys kept, leading comment lines kept, others lost."""
    import yaml

    from .export import write_text

    text = meta_path.read_text(encoding="utf-8")
    meta = yaml.safe_load(text) or {}
    meta["surveys"] = {int(k): surveys[k] for k in sorted(surveys)}
    head = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            head.append(line)
        else:
            break
    body = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    write_text(meta_path, ("\n".join(head) + "\n" if head else "") + body)


# --- command line ------------------------------------------------------------------------------------


def run_cli(args) -> int:
    """Handler of `python -m analysis collect`: 0 written, 1 problems (all messages in ja / en)."""
    from .datasets import DatasetError
    from .survey import SurveyError

    allow_missing = getattr(args, "allow_missing", False)
    try:
        coll = collect(args.dataset, args.fiscal_year, args.folder, allow_missing=allow_missing)
    except (AnalysisError, DatasetError, SurveyError, OSError) as exc:
        print(f"エラー / error: {exc}", file=sys.stderr)
        return 1
    for m in coll.messages:
        if m.severity != "info":
            print(m.text(), file=sys.stderr if m.severity == "error" else sys.stdout)
    n_files = len({f for fs in coll.sources.values() for f in fs})
    print(
        f"{coll.fiscal_year}年度: {n_files} ファイルから {len(coll.tidy)} 市町の回答、未回答 {len(coll.missing)} 市町 / "
        f"FY{coll.fiscal_year}: answers of {len(coll.tidy)} municipalities from {n_files} file(s), "
        f"{len(coll.missing)} missing"
    )
    if coll.problems(allow_missing):
        n = len(coll.errors)
        print(f"問題 {n} 件のため、調査ファイルは書き出していません / {n} problem(s); nothing written", file=sys.stderr)
        return 1
    try:
        target = write_collection(coll, out=args.out, replace=args.replace, allow_missing=allow_missing)
    except (AnalysisError, DatasetError, SurveyError, OSError) as exc:
        print(f"エラー / error: {exc}", file=sys.stderr)
        return 1
    print(f"調査ファイルを書き出しました / survey file written: {target}")
    if args.out is None:
        print(
            f"dataset.yaml に{coll.fiscal_year}年度を登録しました（先頭以外のコメント行は失われます）/ "
            f"FY{coll.fiscal_year} added to dataset.yaml (comments other than the leading ones are not kept)"
        )
    return 0


__all__ = ["CollectError", "Collection", "Message", "collect", "run_cli", "survey_file_name", "write_collection"]
