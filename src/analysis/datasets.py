"""Datasets: a folder data/raw/<name>/ with dataset.yaml, a municipality master and survey files.

Safe by construction: a dataset name is a plain identifier (no path), dataset.yaml is validated
key by key with Japanese and English messages, and every file it names must resolve (symlinks
followed) to a regular file inside the dataset's own folder — never an absolute path, a `..`
escape or a link to /dev/zero. Outputs given on the command line may not point into data/raw/.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import yaml

from . import codes, filecache
from .codebook import Codebook, load_codebook
from .errors import AnalysisError
from .filecache import content_key, file_key
from .paths import data_dir
from .survey import Limits, ResponsePolicy, SurveyError, SurveyResult, read_master, read_survey
from .wareki import parse_fy

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
FY_RANGE = (1989, 2100)
# key -> (type(s), required, description ja)
KEYS = {
    "name": (str, False),
    "label_ja": (str, False),
    "label_en": (str, False),
    "synthetic": (bool, False),
    "prefecture_code": ((str, int, type(None)), False),
    "prefecture_ja": (str, False),
    "description_ja": (str, False),
    "description_en": (str, False),
    "banner_ja": (str, False),
    "municipalities": (str, True),
    "surveys": (dict, True),
    "min_response_rate": ((int, float), False),
    "non_responding": (dict, False),
    "limits": (dict, False),
    "targets": (list, False),
}
_TYPE_JA = {str: "文字列", bool: "true/false", dict: "対応表（キー: 値）", int: "整数", float: "数値", type(None): "空"}


class DatasetError(AnalysisError):
    """Unknown dataset, fiscal year outside the data, or a broken dataset.yaml (ja / en)."""


@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path
    meta: dict

    @property
    def years(self) -> list[int]:
        return sorted(int(y) for y in self.meta["surveys"])

    @property
    def synthetic(self) -> bool:
        return bool(self.meta.get("synthetic", False))

    @property
    def banner_ja(self) -> str | None:
        """The banner over every page of a synthetic dataset (dataset.yaml `banner_ja`, else the
        fictional-prefecture one); None for real data."""
        if not self.synthetic:
            return None
        from .texts import SYNTHETIC_BANNER_JA

        return str(self.meta.get("banner_ja") or SYNTHETIC_BANNER_JA)

    @property
    def label_ja(self) -> str:
        return self.meta.get("label_ja", self.name)

    @property
    def limits(self) -> Limits:
        return Limits(**self.meta.get("limits", {}))

    @property
    def response_policy(self) -> ResponsePolicy:
        """Minimum response rate (default: every municipality answers or is listed as non-responding)."""
        return ResponsePolicy(
            float(self.meta.get("min_response_rate", 1.0)),
            {int(y): frozenset(c) for y, c in self.meta.get("non_responding", {}).items()},
        )

    def survey_path(self, year: int) -> Path:
        surveys = {int(k): v for k, v in self.meta["surveys"].items()}
        if year not in surveys:
            raise DatasetError(
                f"データセット『{self.name}』に{year}年度の調査ファイルはありません（あるのは {_years_text(self.years)}）",
                f"dataset {self.name!r} has no survey for FY{year} (available: {_years_text(self.years)})",
            )
        return self._inside(surveys[year], f"surveys: {year}")

    @property
    def master_path(self) -> Path:
        return self._inside(self.meta["municipalities"], "municipalities")

    def _inside(self, rel: str, key: str) -> Path:
        """root / rel, checked again at use: inside the dataset folder, a regular file if it exists."""
        path = self.root / rel
        _confine(self.root, rel, key, self.root / "dataset.yaml")
        return path

    def master(self) -> pd.DataFrame:
        """The municipality master (read once per process and file content; a fresh copy each call)."""
        path, limits = self.master_path, self.limits
        fkey = _master_key(path)
        if fkey is None:
            return read_master(path, limits=limits)
        return filecache.cache("master", 8).get((fkey, limits), lambda: read_master(path, limits=limits), _copy_frame)

    def read(self, year: int, book: Codebook | None = None) -> SurveyResult:
        """Read the survey of `year` with this dataset's master, limits and response policy."""
        return self.read_file(self.survey_path(year), book, fiscal_year=year)

    def read_file(self, path: Path | str, book: Codebook | None = None, fiscal_year: int | None = None) -> SurveyResult:
        """Read any survey file (e.g. one being validated) as a survey of this dataset.

        Each file is read once per process for the same content and settings: the key holds the
        file's path, size, mtime and sha256, the master's and the codebook's content, the fiscal
        year, prefecture code, limits and response policy. Every caller gets its own copy.
        """
        book = book or load_codebook()
        policy = self.response_policy
        prefecture = self.meta.get("prefecture_code")
        try:
            key = (
                file_key(path),
                _master_key(self.master_path),
                str(book.path),
                content_key(book.raw),
                fiscal_year,
                prefecture,
                self.limits,
                policy.min_rate,
                content_key(sorted((y, sorted(c)) for y, c in policy.non_responding.items())),
            )
        except OSError:  # missing or unreadable: the reader reports it in its own words
            key = None

        def read() -> SurveyResult:
            return read_survey(
                path,
                book,
                self.master(),
                fiscal_year=fiscal_year,
                prefecture_code=prefecture,
                limits=self.limits,
                response=policy,
            )

        if key is None:
            return read()
        return filecache.cache("survey", 32).get(key, read, _copy_result)

    def report_years(self, fiscal_year: int, exposure_lag: int = 0) -> list[int]:
        """The survey years a fiscal-year report reads (and the runner hashes).

        The year itself and, with `exposure_lag=1`, the previous one; with targets, every year up
        to this one, since progress is measured from the first surveyed year.
        """
        first = min(self.years) if self.meta.get("targets") else fiscal_year - exposure_lag
        return [y for y in self.years if first <= y <= fiscal_year]

    def input_files(self, years: list[int] | None = None) -> list[Path]:
        years = self.years if years is None else years
        return [self.root / "dataset.yaml", self.master_path, *[self.survey_path(y) for y in years]]


def _master_key(path: Path) -> tuple | None:
    """The master file's cache key, or None when it cannot be read (the reader then says why)."""
    try:
        return file_key(path)
    except OSError:
        return None


def _copy_frame(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.copy(deep=True)


def _copy_result(result: SurveyResult) -> SurveyResult:
    """A copy of a survey result that shares nothing mutable with the cached one."""
    return replace(
        result, tidy=result.tidy.copy(deep=True), issues=result.issues.copy(deep=True), info=copy.deepcopy(result.info)
    )


def _years_text(years: list[int]) -> str:
    return ", ".join(f"FY{y}" for y in years) or "なし"


def check_name(name: object) -> str:
    """`name` if it is a plain dataset name (letters, digits, _ and -; no path), else DatasetError."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise DatasetError(
            f"データセット名『{name}』は使えません。半角英数字・_・- だけの名前（64文字まで、先頭は英数字）にしてください",
            f"invalid dataset name {name!r}: use letters, digits, '_' and '-' only (up to 64, starting with a "
            "letter or digit)",
        )
    return name


def available() -> list[str]:
    raw = data_dir() / "raw"
    if not raw.is_dir():
        return []
    return sorted(p.name for p in raw.iterdir() if NAME_RE.fullmatch(p.name) and (p / "dataset.yaml").is_file())


def load_dataset(name: str) -> Dataset:
    check_name(name)
    root = data_dir() / "raw" / name
    meta_path = root / "dataset.yaml"
    if not meta_path.is_file():
        have = available()
        close = difflib.get_close_matches(name, have, n=1, cutoff=0.8)
        hint_ja, hint_en = (f"もしかして『{close[0]}』？ ", f"did you mean {close[0]!r}? ") if close else ("", "")
        # a national run has 49 datasets: name a few, say how many
        shown = ", ".join(have[:8]) + (f" ほか {len(have) - 8} 件" if len(have) > 8 else "")
        shown_en = ", ".join(have[:8]) + (f" and {len(have) - 8} more" if len(have) > 8 else "")
        raise DatasetError(
            f"データセット『{name}』が見つかりません（{meta_path} がありません）。{hint_ja}"
            f"利用できるもの: {shown or 'なし'}",
            f"unknown dataset {name!r}; {hint_en}available: {shown_en or 'none'}",
        )
    meta = validate_meta(_load_yaml(meta_path), meta_path)
    for key, rel in [
        ("municipalities", meta["municipalities"]),
        *((f"surveys: {y}", p) for y, p in meta["surveys"].items()),
    ]:
        _confine(root, rel, key, meta_path)
    return Dataset(name=name, root=root, meta=meta)


def _load_yaml(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DatasetError(
            f"UTF-8 で読めません（{line}行目）。UTF-8 で保存してください",
            f"not valid UTF-8 (line {line}); save it as UTF-8",
            where=str(path),
        ) from None
    except OSError as exc:
        raise DatasetError(f"読めません（{exc.strerror or exc}）", f"cannot read: {exc}", where=str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line_ja = f"{mark.line + 1}行目" if mark is not None else ""
        line_en = f" on line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DatasetError(
            f"YAML の書式が正しくありません（{line_ja}: {problem}）。字下げやコロン（:）の後の空白を確認してください",
            f"invalid YAML{line_en}: {problem}",
            where=str(path),
        ) from None


def validate_meta(meta, path: Path) -> dict:
    """dataset.yaml checked key by key; returns it with fiscal-year keys as int, codes as 6-digit str."""
    problems: list[tuple[str, str]] = []
    if meta is None:
        raise DatasetError(
            "ファイルが空です（municipalities と surveys が必要です）",
            "the file is empty (municipalities and surveys are required)",
            where=str(path),
        )
    if not isinstance(meta, dict):
        raise DatasetError(
            "「キー: 値」の形の YAML ではありません", "not a YAML mapping of keys to values", where=str(path)
        )
    meta = dict(meta)
    for key, value in meta.items():
        if key not in KEYS:
            import difflib

            close = difflib.get_close_matches(str(key), list(KEYS), n=1)
            hint_ja, hint_en = (
                (f"（もしかして『{close[0]}』）", f" (did you mean {close[0]!r}?)") if close else ("", "")
            )
            problems.append((f"知らない項目『{key}』があります{hint_ja}", f"unknown key {key!r}{hint_en}"))
            continue
        types, _ = KEYS[key]
        types = types if isinstance(types, tuple) else (types,)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            want = "、".join(_TYPE_JA.get(t, t.__name__) for t in types)
            problems.append(
                (
                    f"項目『{key}』は{want}で書いてください（今は『{value}』）",
                    f"{key!r} must be {' or '.join(t.__name__ for t in types)}, not {type(value).__name__}",
                )
            )
    for key, (_, required) in KEYS.items():
        if required and key not in meta:
            problems.append((f"項目『{key}』がありません", f"missing key {key!r}"))
    if isinstance(meta.get("municipalities"), str) and not meta["municipalities"].strip():
        problems.append(("項目『municipalities』が空です", "'municipalities' is empty"))
    if isinstance(meta.get("surveys"), dict):
        surveys = {}
        for y, p in meta["surveys"].items():
            fy = _fiscal_year_key(y, "surveys", problems)
            if not isinstance(p, str) or not p.strip():
                problems.append(
                    (
                        f"surveys の {y} のファイル名が文字列ではありません（今は『{p}』）",
                        f"surveys: {y}: the file name must be a string, not {p!r}",
                    )
                )
            elif fy is not None:
                surveys[fy] = p
        if not meta["surveys"]:
            problems.append(("surveys に年度がありません", "surveys lists no fiscal year"))
        meta["surveys"] = surveys
    pc = meta.get("prefecture_code")
    if pc is not None and isinstance(pc, (str, int)) and not isinstance(pc, bool):
        text = f"{pc:02d}" if isinstance(pc, int) else pc.strip()
        if not re.fullmatch(r"\d{2}", text) or not 1 <= int(text) <= 99:
            problems.append(
                (
                    f"prefecture_code は2桁の都道府県コードで書いてください（今は『{pc}』）",
                    f"prefecture_code must be a 2-digit prefecture code, not {pc!r}",
                )
            )
        else:
            meta["prefecture_code"] = text
    rate = meta.get("min_response_rate")
    if isinstance(rate, (int, float)) and not isinstance(rate, bool) and not 0 <= rate <= 1:
        problems.append(
            (
                f"min_response_rate は 0 から 1 の数で書いてください（今は {rate}。0.9 なら 90%）",
                f"min_response_rate must be between 0 and 1, not {rate}",
            )
        )
    if isinstance(meta.get("non_responding"), dict):
        meta["non_responding"] = _non_responding(meta["non_responding"], problems)
    if isinstance(meta.get("limits"), dict):
        meta["limits"] = _limits(meta["limits"], problems)
    if isinstance(meta.get("targets"), list):
        from .targets import TargetError, parse_targets

        try:
            parse_targets(meta["targets"])
        except TargetError as err:
            problems.append((err.ja, err.en))
    if problems:
        ja = f"dataset.yaml に問題が {len(problems)} 件あります: " + "／".join(p[0] for p in problems)
        en = f"{len(problems)} problem(s) in dataset.yaml: " + "; ".join(p[1] for p in problems)
        raise DatasetError(ja, en, where=str(path))
    return meta


def _fiscal_year_key(y, key: str, problems: list) -> int | None:
    """A fiscal-year key (2025 or '2025'); 令和7 and the like get the western year suggested."""
    text = str(y).strip()
    if (isinstance(y, int) and not isinstance(y, bool)) or re.fullmatch(r"\d{4}", text):
        fy = int(text)
        if FY_RANGE[0] <= fy <= FY_RANGE[1]:
            return fy
    guess = parse_fy(text)
    hint_ja, hint_en = (f"（『{y}』なら {guess}）", f" ({y!r} is {guess})") if guess else ("", "")
    problems.append(
        (
            f"{key} の年度『{y}』は西暦4桁（例: 2025）で書いてください{hint_ja}",
            f"{key}: fiscal year {y!r} must be a 4-digit western year such as 2025{hint_en}",
        )
    )
    return None


def _non_responding(value: dict, problems: list) -> dict[int, list[str]]:
    out = {}
    for y, listed in value.items():
        fy = _fiscal_year_key(y, "non_responding", problems)
        if not isinstance(listed, list):
            problems.append(
                (
                    f"non_responding の {y} はコードの一覧（[992011, ...]）で書いてください",
                    f"non_responding: {y} must be a list of codes",
                )
            )
            continue
        found = []
        for c in listed:
            try:
                cands = codes.candidates(c)
            except codes.CodeError as exc:
                problems.append(
                    (
                        f"non_responding の {y} のコード『{c}』が不正です（{exc.ja}）",
                        f"non_responding: {y}: invalid code {c!r} ({exc.en})",
                    )
                )
                continue
            if len(cands) > 1 and not isinstance(c, str):
                problems.append(
                    (
                        f"non_responding の {y} のコード『{c}』は曖昧です（{'/'.join(cands)}）。"
                        "6桁のコードを引用符で囲んで書いてください（例: '011002'）",
                        f"non_responding: {y}: ambiguous code {c!r} ({'/'.join(cands)}); quote the 6-digit code",
                    )
                )
                continue
            found.append(cands[0])
        if fy is not None:
            out[fy] = found
    return out


def _limits(value: dict, problems: list) -> dict[str, int]:
    out = {}
    for k, v in value.items():
        if k not in Limits.names():
            problems.append(
                (
                    f"limits の『{k}』は知らない項目です（使えるもの: {', '.join(Limits.names())}）",
                    f"limits: unknown limit {k!r} (known: {', '.join(Limits.names())})",
                )
            )
        elif not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            problems.append(
                (
                    f"limits の『{k}』は正の整数で書いてください（今は『{v}』）",
                    f"limits: {k} must be a positive integer, not {v!r}",
                )
            )
        else:
            out[k] = v
    return out


def _confine(root: Path, rel, key: str, meta_path: Path) -> None:
    """`rel` (from dataset.yaml) must name a regular file (if it exists) inside `root`, links resolved."""

    def fail(ja, en):
        raise DatasetError(f"項目『{key}』のパス『{rel}』: {ja}", f"{key}: path {rel!r}: {en}", where=str(meta_path))

    if not isinstance(rel, str) or not rel.strip() or "\x00" in rel:
        fail("ファイル名が空か不正です", "empty or invalid file name")
    p = Path(rel)
    if p.is_absolute() or p.drive or rel.startswith(("~", "\\")):
        fail(
            "絶対パスは使えません。データセットのフォルダ（dataset.yaml と同じ場所）からの相対パスで書いてください",
            "absolute paths are not allowed; give a path relative to the dataset folder",
        )
    base = root.resolve()
    target = (root / p).resolve()
    if target != base and base not in target.parents:
        fail(
            f"データセットのフォルダ（{root}）の外を指しています（リンクをたどると {target}）。ファイルをフォルダの中に置いてください",
            f"points outside the dataset folder {root} (resolves to {target}); put the file inside the folder",
        )
    if target.exists():
        mode = target.stat().st_mode
        if not stat.S_ISREG(mode):
            fail(
                "通常のファイルではありません（フォルダ、デバイス、パイプなど）",
                "not a regular file (folder, device, pipe…)",
            )


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


__all__ = [
    "Dataset",
    "DatasetError",
    "SurveyError",
    "available",
    "check_name",
    "load_dataset",
    "sha256",
    "validate_meta",
]
