"""JIS X 0402 / 全国地方公共団体コード: normalisation, check digit and look-up.

A municipality code has five digits (2 prefecture + 3 municipality) plus a check digit.
Survey files carry it in many shapes: 6 digits, 5 digits without the check digit, a number that
lost its leading zero in Excel (1002 for 01002), full-width digits, with hyphens or spaces.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pandas as pd

from .errors import AnalysisError

WEIGHTS = (6, 5, 4, 3, 2)


class CodeError(AnalysisError, ValueError):
    """A value that cannot be a municipality code; `ja` and `en` say why."""


def check_digit(code5: str) -> int:
    """Check digit of a 5-digit code: (11 - sum(d_i * w_i) mod 11) mod 10, w = 6,5,4,3,2."""
    if len(code5) != 5 or not code5.isdigit():
        raise CodeError("5桁の数字ではありません", f"not 5 digits: {code5!r}")
    total = sum(int(d) * w for d, w in zip(code5, WEIGHTS, strict=False))
    return (11 - total % 11) % 10


def is_valid(code6: str) -> bool:
    """True when `code6` is 6 digits whose last digit is the check digit of the first five."""
    return isinstance(code6, str) and len(code6) == 6 and code6.isdigit() and check_digit(code6[:5]) == int(code6[5])


def _digits(value) -> str:
    if isinstance(value, bool) or value is None:
        raise CodeError("コードが空か不正です", f"empty or invalid code: {value!r}")
    if isinstance(value, float):
        if value != value or not value.is_integer():  # NaN or fractional
            raise CodeError("コードが整数ではありません", f"code is not an integer: {value!r}")
        value = int(value)
    text = unicodedata.normalize("NFKC", str(value)).strip()
    text = text.replace("-", "").replace(" ", "")
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    if not text.isdigit():
        raise CodeError("コードに数字以外が含まれます", f"code has non-digits: {value!r}")
    return text


def candidates(value) -> list[str]:
    """All 6-digit codes that `value` could spell, most likely first.

    6 digits: itself (if the check digit is right). 5 digits: the code plus its check digit, and,
    when the first digit is not 0, the zero-dropped 6-digit reading "0"+value if that is valid.
    4 digits: a zero-dropped 5-digit code.
    """
    text = _digits(value)
    if len(text) == 6:
        if not is_valid(text):
            expected = check_digit(text[:5])
            raise CodeError(
                f"検査数字が誤っています（正しくは {text[:5]}{expected}）",
                f"wrong check digit in {text} (expected {text[:5]}{expected})",
            )
        return [text]
    if len(text) == 5:
        found = [text + str(check_digit(text))]
        if text[0] != "0" and is_valid("0" + text):
            found.append("0" + text)
        return found
    if len(text) == 4:
        return ["0" + text + str(check_digit("0" + text))]
    raise CodeError(f"コードの桁数が不正です（{len(text)}桁）", f"code has {len(text)} digits: {value!r}")


def normalize(value, known: set[str] | frozenset[str] | None = None) -> str:
    """Return the 6-digit code (with check digit) for any accepted spelling of a code.

    With `known` (the codes of a master list) an ambiguous 5-digit value is resolved to the
    reading that exists; a value none of whose readings exists raises CodeError.
    """
    found = candidates(value)
    if known is None:
        return found[0]
    hits = [c for c in found if c in known]
    if not hits:
        raise CodeError("コード表にない市町村コードです", f"code not in the master list: {value!r}")
    return hits[0]


def prefecture_of(code6: str) -> str:
    """Two-digit prefecture code of a normalised code."""
    return code6[:2]


def load_master(path: Path | str) -> pd.DataFrame:
    """Read the 総務省 code list shipped in data/external (codes kept as strings)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    return frame


def normalize_name(name: str) -> str:
    """Municipality name for matching: NFKC, no spaces."""
    return unicodedata.normalize("NFKC", str(name)).replace(" ", "").replace("\u3000", "").strip()


__all__ = [
    "WEIGHTS",
    "CodeError",
    "candidates",
    "check_digit",
    "is_valid",
    "load_master",
    "normalize",
    "normalize_name",
    "prefecture_of",
]
