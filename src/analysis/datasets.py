"""Datasets: a folder data/raw/<name>/ with dataset.yaml, a municipality master and survey files."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from .codebook import Codebook, load_codebook
from .io import SurveyError, SurveyResult, read_master, read_survey
from .paths import data_dir


class DatasetError(Exception):
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
    def label_ja(self) -> str:
        return self.meta.get("label_ja", self.name)

    def survey_path(self, year: int) -> Path:
        surveys = {int(k): v for k, v in self.meta["surveys"].items()}
        if year not in surveys:
            raise DatasetError(
                f"データセット『{self.name}』に{year}年度の調査ファイルはありません（あるのは {_years_text(self.years)}）/ "
                f"dataset {self.name!r} has no survey for FY{year} (available: {_years_text(self.years)})"
            )
        return self.root / surveys[year]

    @property
    def master_path(self) -> Path:
        return self.root / self.meta["municipalities"]

    def master(self) -> pd.DataFrame:
        return read_master(self.master_path)

    def read(self, year: int, book: Codebook | None = None) -> SurveyResult:
        path = self.survey_path(year)
        return read_survey(path, book or load_codebook(), self.master(), fiscal_year=year,
                           prefecture_code=self.meta.get("prefecture_code"))

    def input_files(self, years: list[int] | None = None) -> list[Path]:
        years = self.years if years is None else years
        return [self.root / "dataset.yaml", self.master_path, *[self.survey_path(y) for y in years]]


def _years_text(years: list[int]) -> str:
    return ", ".join(f"FY{y}" for y in years) or "なし"


def available() -> list[str]:
    raw = data_dir() / "raw"
    return sorted(p.name for p in raw.iterdir() if (p / "dataset.yaml").is_file()) if raw.is_dir() else []


def load_dataset(name: str) -> Dataset:
    root = data_dir() / "raw" / name
    meta_path = root / "dataset.yaml"
    if not meta_path.is_file():
        raise DatasetError(
            f"データセット『{name}』が見つかりません（{meta_path} がありません）。利用できるもの: {', '.join(available()) or 'なし'} / "
            f"unknown dataset {name!r}; available: {', '.join(available()) or 'none'}"
        )
    with open(meta_path, encoding="utf-8") as fh:
        meta = yaml.safe_load(fh)
    for key in ("municipalities", "surveys"):
        if key not in meta:
            raise DatasetError(f"{meta_path}: 項目『{key}』がありません / missing key {key!r}")
    return Dataset(name=name, root=root, meta=meta)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


__all__ = ["Dataset", "DatasetError", "SurveyError", "available", "load_dataset", "sha256"]
