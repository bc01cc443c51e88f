"""The survey codebook (data/codebook/*.yaml): questions, answer maps and analysis definitions.

Nothing here touches survey data; `io` uses it to recognise columns and map answers, and the
analysis uses its lists (main items, support measures, challenges) so that a prefecture can change
the definition of "full implementation" in YAML rather than in code.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import copy
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml

from . import filecache
from .filecache import file_key
from .paths import project_root

Lang = Literal["ja", "en"]  # the codebook's label languages (label_ja / label_en)


def header_key(text: str) -> str:
    """Form used to match header text: NFKC, no white space, no brackets' width differences."""
    text = unicodedata.normalize("NFKC", str(text))
    return "".join(text.split())


def answer_key(text) -> str:
    """Form used to match answers: NFKC and stripped (so full-width digits and ＴＲＵＥ match)."""
    return unicodedata.normalize("NFKC", str(text)).strip()


@dataclass(frozen=True)
class Question:
    variable: str
    header_ja: str
    aliases: tuple[str, ...]
    group_ja: str
    answers: str
    required: bool
    label_ja: str
    label_en: str

    @property
    def header_keys(self) -> tuple[str, ...]:
        return tuple(header_key(h) for h in (self.header_ja, *self.aliases))


@dataclass(frozen=True)
class Codebook:
    path: Path
    raw: dict = field(repr=False, compare=False)

    @cached_property
    def questions(self) -> tuple[Question, ...]:
        out = []
        for q in self.raw["questions"]:
            out.append(
                Question(
                    variable=q["variable"],
                    header_ja=q["header_ja"],
                    aliases=tuple(q.get("aliases", ())),
                    group_ja=q.get("group_ja", ""),
                    answers=q["answers"],
                    required=bool(q.get("required", False)),
                    label_ja=q.get("label_ja", q["header_ja"]),
                    label_en=q.get("label_en", q["variable"]),
                )
            )
        return tuple(out)

    @cached_property
    def id_columns(self) -> dict[str, dict]:
        return self.raw["id_columns"]

    def question(self, variable: str) -> Question:
        for q in self.questions:
            if q.variable == variable:
                return q
        raise KeyError(f"codebook has no question {variable!r}")

    @property
    def variables(self) -> list[str]:
        return [q.variable for q in self.questions]

    @property
    def main_items(self) -> list[str]:
        return list(self.raw["main_items"])

    @property
    def support_groups(self) -> list[dict]:
        return list(self.raw["support_measures"])

    @property
    def support_measures(self) -> list[str]:
        return [m for g in self.support_groups for m in g["measures"]]

    def viewpoint_of(self, measure: str) -> str:
        for g in self.support_groups:
            if measure in g["measures"]:
                return g["viewpoint_ja"]
        raise KeyError(measure)

    @property
    def challenges(self) -> list[str]:
        return list(self.raw["challenges"])

    @property
    def covariates(self) -> list[dict]:
        return list(self.raw["covariates"])

    @property
    def model_covariates(self) -> list[str]:
        """Covariate terms of the adjusted models (`analysis.covariates`; assumptions log A4).

        A term is a covariate variable (`kaso`) or its logarithm (`log_population`).
        """
        terms = list(self.raw.get("analysis", {}).get("covariates", ["log_population", "kaso"]))
        check_covariate_terms(terms, self)
        return terms

    def term_label(self, term: str, lang: Lang = "ja") -> str:
        """Label of a model term: a covariate's label, or 「人口（対数）」 for log_population."""
        if term.startswith("log_"):
            base = self.label(term[4:], lang)
            return f"{base}（対数）" if lang == "ja" else f"log {base}"
        return self.label(term, lang)

    def label(self, variable: str, lang: Lang = "ja") -> str:
        """Reader-facing label of a variable (question, covariate or id column)."""
        key = f"label_{lang}"
        for q in self.raw["questions"]:
            if q["variable"] == variable:
                return q.get(key, variable)
        for c in self.raw["covariates"]:
            if c["variable"] == variable:
                return c.get(key, variable)
        if variable in self.raw["id_columns"]:
            return self.raw["id_columns"][variable].get(key, variable)
        raise KeyError(f"codebook has no label for {variable!r}")

    def status_label(self, status: str, lang: Lang = "ja") -> str:
        return self.raw["jusou_status_labels"][status][lang]

    @cached_property
    def answer_maps(self) -> dict[str, dict[str, object]]:
        """answer map name -> {normalised spelling: value}; value None means 'missing'."""
        maps: dict[str, dict[str, object]] = {}
        for name, spec in self.raw["answer_maps"].items():
            table: dict[str, object] = {}
            for value, spellings in spec.items():
                mapped = {"true": True, "false": False, "missing": None}.get(value, value)
                if name != "yes_no" and value == "missing":
                    mapped = None
                for s in spellings:
                    table[answer_key(s)] = mapped
            maps[name] = table
        return maps

    def spellings(self, answers: str, value) -> list[str]:
        """Spellings in the codebook that map to `value` (used by tests and the generator)."""
        return [k for k, v in self.answer_maps[answers].items() if v == value and k != ""]


def check_covariate_terms(terms, book: Codebook) -> None:
    """Every term names a codebook covariate, or log_ of one (JA+EN error otherwise)."""
    known = {c["variable"] for c in book.covariates}
    allowed = sorted(known | {f"log_{v}" for v in known})
    bad = [t for t in terms if t not in allowed]
    if bad or len(set(terms)) != len(terms):
        from .errors import AnalysisError

        raise AnalysisError(
            f"共変量 {bad or terms} は使えません（使えるもの: {', '.join(allowed)}。重複も不可）",
            f"unknown or duplicate covariate terms {bad or terms}; use {', '.join(allowed)}",
            where=str(book.path),
        )


def load_codebook(path: Path | str | None = None) -> Codebook:
    """Load the codebook YAML (default: data/codebook/survey.yaml of the project)."""
    path = Path(path) if path else project_root() / "data" / "codebook" / "survey.yaml"

    def parse() -> dict:
        with open(path, encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
        book = Codebook(path=path, raw=raw)
        known = set(book.variables)
        for name in (*book.main_items, *book.support_measures, *book.challenges):
            if name not in known:
                raise ValueError(
                    f"{path}: 定義リストの変数 {name!r} が questions にありません / "
                    f"variable {name!r} is listed but not defined under questions"
                )
        return raw

    # parsed once per process and file content (each report loads it); every caller gets its own copy
    raw = filecache.cache("codebook", 8).get(file_key(path), parse, copy.deepcopy)
    return Codebook(path=path, raw=raw)


__all__ = ["Codebook", "Question", "answer_key", "check_covariate_terms", "header_key", "load_codebook"]
