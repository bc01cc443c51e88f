"""Which municipality a row is about: its code or name resolved against the dataset's master.

Names are not unique nationally (伊達市 is in Hokkaido and Fukushima), so a name resolves to a
set of codes; only a single candidate is used, several are reported as ambiguous. A name that
matches nothing gets "did you mean" candidates (御殿場 → 御殿場市) but is never taken as one.
"""

from __future__ import annotations

import difflib
from functools import lru_cache

import pandas as pd

from .. import codes
from ._cells import cell_text


def name_key(name) -> str:
    text = codes.normalize_name(cell_text(name))
    return text.replace("ヶ", "ケ").replace("ヵ", "カ").replace("・", "")


@lru_cache(maxsize=1)
def national() -> dict[str, tuple[str, str]]:
    """code -> (municipality, prefecture) from data/external, or {} when unavailable."""
    try:
        from ..paths import data_dir

        frame = codes.load_master(data_dir() / "external" / "municipality_codes.csv")
        return {r.lg_code: (r.municipality or r.prefecture, r.prefecture) for r in frame.itertuples(index=False)}
    except Exception:  # an optional nicety for messages and prefecture prefixes only
        return {}


@lru_cache(maxsize=1)
def national_names() -> dict[str, str]:
    """code -> 'municipality（prefecture）' for messages."""
    return {c: f"{m}（{p}）" for c, (m, p) in national().items()}


class Resolver:
    """Turns a row's code / name cells into a master code, or says why it cannot."""

    def __init__(self, master: pd.DataFrame, prefecture_code: str | None):
        self.by_code = dict(zip(master["code"], master["name"], strict=False))
        self.known = frozenset(self.by_code)
        self.by_name: dict[str, set[str]] = {}
        for c, n in self.by_code.items():
            if isinstance(n, str) and n:
                self.by_name.setdefault(name_key(n), set()).add(c)
        prefixes = {c[:2] for c in self.known}
        self.prefecture = prefecture_code or (prefixes.pop() if len(prefixes) == 1 else None)

    def names(self, text: str) -> set[str]:
        """Master codes whose name `text` spells (exactly, or after a prefecture / 郡 prefix)."""
        key = name_key(text)
        if not key:
            return set()
        if key in self.by_name:
            return set(self.by_name[key])
        # 「架空県青葉市」「北海道伊達市」「○○郡花野町」: the longest master names the text ends with
        hits = [(len(n), cs) for n, cs in self.by_name.items() if len(n) >= 2 and key.endswith(n)]
        if not hits:
            return set()
        longest = max(n for n, _ in hits)
        found = set().union(*(cs for n, cs in hits if n == longest))
        if len(found) > 1:  # a prefecture name in front can settle it
            nat = national()
            settled = {c for c in found if c in nat and key.startswith(name_key(nat[c][1]))}
            if len(settled) == 1:
                return settled
        return found

    def suggestions(self, text: str, n: int = 3) -> list[str]:
        """Master names close to `text` (difflib), best first, for a 'did you mean' hint."""
        key = name_key(text)
        if not key:
            return []
        close = difflib.get_close_matches(key, list(self.by_name), n=n, cutoff=0.6)
        return [self.by_code[c] for k in close for c in sorted(self.by_name[k])][:n]

    def describe(self, found: set[str]) -> str:
        return "、".join(f"{c} {self.by_code[c]}" for c in sorted(found))

    def by_code_value(self, value) -> tuple[str | None, str, str]:
        """(code, reason_ja, reason_en): code None with the reason when it cannot be used."""
        try:
            return codes.normalize(value, known=self.known), "", ""
        except codes.CodeError:
            try:
                found = codes.candidates(value)
            except codes.CodeError as exc:
                return None, f"市町村コードが不正です: {exc.ja}", f"invalid municipality code: {exc.en}"
            others = [c for c in found if self.prefecture and c[:2] != self.prefecture]
            if others and len(others) == len(found):
                names = national_names()
                named = next((c for c in others if c in names), others[0])
                where = names.get(named, f"都道府県コード {named[:2]}")
                return (
                    None,
                    f"他の都道府県の市町村コードです（{named}: {where}）",
                    f"municipality of another prefecture ({named}, prefecture {named[:2]}, not {self.prefecture})",
                )
            names = national_names()
            known_as = "".join(f"、{c} は{names[c]}" for c in found if c in names)
            known_as_en = "".join(f"; {c} is {names[c]}" for c in found if c in names)
            return (
                None,
                f"コード表（市町村マスタ）にない市町村コードです（{'/'.join(found)}{known_as}）",
                f"unknown municipality code, not in the master list ({'/'.join(found)}{known_as_en})",
            )


__all__ = ["Resolver", "name_key", "national", "national_names"]
