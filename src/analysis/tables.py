"""Report tables as DataFrames with Japanese headers (no file writing here).

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .codebook import Codebook
from .panel import OUTCOME
from .wareki import wareki_fy

NATIONAL_MUNICIPALITIES = 1741  # 市町村数 (総務省 code list, excl. Tokyo's 23 wards)


def _pct(num: int, den: int) -> float:
    return round(100.0 * num / den, 1) if den else float("nan")


def _count(series: pd.Series) -> int:
    return int(series.astype("boolean").fillna(False).sum())


def status_table(year: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    """The seed's table: 区分 / 市町数 (and share of respondents)."""
    n = len(year)
    status = year["jusou_status"].astype("string")
    rows = [
        ("回答市町数", n),
        ("重層的支援体制整備事業を実施済", int((status == "implemented").sum())),
        ("重層的支援体制整備事業の移行準備中", int((status == "preparing").sum())),
        ("重層的支援体制整備事業は未実施", int((status == "not_implemented").sum())),
        ("包括的な支援体制の整備に関する指針（厚労省）の主要項目を全て実施", _count(year[OUTCOME])),
    ]
    frame = pd.DataFrame(rows, columns=["区分", "市町数"])
    frame["割合(%)"] = [_pct(v, n) if i else 100.0 for i, v in enumerate(frame["市町数"])]
    return frame


def summary_counts(year: pd.DataFrame) -> dict:
    """The three figures the site index shows for a year."""
    return {
        "n_municipalities": int(len(year)),
        "n_jusou": int((year["jusou_status"].astype("string") == "implemented").sum()),
        "n_full": _count(year[OUTCOME]),
    }


def _yes_table(
    year: pd.DataFrame, variables: list[str], book: Codebook, label_col: str, count_col: str
) -> pd.DataFrame:
    n = len(year)
    rows = []
    for v in variables:
        col = year[v].astype("boolean")
        yes = int(col.fillna(False).sum())
        rows.append(
            {label_col: book.label(v), count_col: yes, "割合(%)": _pct(yes, n), "無回答": int(col.isna().sum())}
        )
    return pd.DataFrame(rows)


def main_items_table(year: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    return _yes_table(year, book.main_items, book, "指針の主要項目", "実施市町数")


def support_table(year: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    frame = _yes_table(year, book.support_measures, book, "支援施策", "活用市町数")
    frame.insert(0, "施策の視点", [book.viewpoint_of(m) for m in book.support_measures])
    return frame


def challenges_table(year: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    return _yes_table(year, book.challenges, book, "課題認識", "該当市町数")


def measure_by_full_table(year: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    """Each support measure crossed with full implementation (counts and rates).

    Counts come from crosstab.two_by_two, the table the association statistics use.
    """
    from .crosstab import two_by_two

    rows = []
    for m in book.support_measures:
        t = two_by_two(year[m], year[OUTCOME])
        rows.append(
            {
                "施策の視点": book.viewpoint_of(m),
                "支援施策": book.label(m),
                "活用あり(市町数)": t.n_exposed,
                "うち全項目実施(活用あり)": t.a,
                "全項目実施率・活用あり(%)": _pct(t.a, t.n_exposed),
                "活用なし(市町数)": t.n_unexposed,
                "うち全項目実施(活用なし)": t.c,
                "全項目実施率・活用なし(%)": _pct(t.c, t.n_unexposed),
            }
        )
    return pd.DataFrame(rows)


def _mark(value) -> str:
    """○ implemented, × not, — missing (for numpy, Python and pandas booleans alike)."""
    if pd.isna(value):
        return "—"
    return "○" if bool(value) else "×"


def municipality_items_table(year: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    """Municipality × main item matrix (○/×/—), sorted by code; feeds the heat map."""
    out = pd.DataFrame({"市町村コード": year["code"].astype(str), "市町村名": year["name"].astype(str)})
    for v in book.main_items:
        out[book.label(v)] = [_mark(x) for x in year[v]]
    out["実施項目数"] = year[book.main_items].astype("boolean").fillna(False).sum(axis=1).astype(int).to_numpy()
    out["全項目実施"] = [_mark(x) for x in year[OUTCOME]]
    return out.sort_values("市町村コード").reset_index(drop=True)


def trend_table(panel: pd.DataFrame, national: pd.DataFrame) -> pd.DataFrame:
    """Per fiscal year: prefecture counts and shares beside the national 重層 share."""
    nat = national.set_index("fiscal_year")
    rows = []
    for y, g in panel.groupby("fiscal_year", sort=True):
        s = summary_counts(g)
        nat_n = int(nat.loc[y, "municipalities_jusou"]) if y in nat.index else None
        rows.append(
            {
                "年度": f"FY{y}（{wareki_fy(int(y))}）",
                "回答市町数": s["n_municipalities"],
                "重層実施市町数": s["n_jusou"],
                "重層実施割合・県内(%)": _pct(s["n_jusou"], s["n_municipalities"]),
                "重層実施市町村数・全国": nat_n,
                "重層実施割合・全国(%)": _pct(nat_n, NATIONAL_MUNICIPALITIES) if nat_n is not None else np.nan,
                "全国値の区分": (
                    {"actual": "実績", "planned": "予定"}.get(nat.loc[y, "status"], "") if y in nat.index else ""
                ),
                "全項目実施市町数": s["n_full"],
                "全項目実施割合・県内(%)": _pct(s["n_full"], s["n_municipalities"]),
            }
        )
    return pd.DataFrame(rows)


def transition_table(panel: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    """重層 status transitions between consecutive fiscal years (counts)."""
    order = ["not_implemented", "preparing", "implemented"]
    p = panel[["code", "fiscal_year", "jusou_status"]].copy()
    nxt = p.assign(fiscal_year=p["fiscal_year"] - 1).rename(columns={"jusou_status": "next"})
    pairs = p.merge(nxt, on=["code", "fiscal_year"], how="inner")
    rows = []
    for y, g in pairs.groupby("fiscal_year", sort=True):
        for a in order:
            row: dict[str, object] = {"期間": f"FY{y}→FY{y + 1}", "前年度の状況": book.status_label(a)}
            for b in order:
                row[f"翌年度: {book.status_label(b)}"] = int(((g["jusou_status"] == a) & (g["next"] == b)).sum())
            rows.append(row)
    return pd.DataFrame(rows)


def prefecture_names() -> dict[str, str]:
    """Two-digit prefecture code -> name, from the 総務省 list in data/external."""
    from .paths import data_dir

    master = pd.read_csv(data_dir() / "external" / "municipality_codes.csv", dtype=str, keep_default_na=False)
    return dict(zip(master["pref_code"], master["prefecture"], strict=False))


def by_prefecture_table(year: pd.DataFrame) -> pd.DataFrame:
    """Per prefecture: respondents, 重層 and full implementation counts and shares (large datasets)."""
    names = prefecture_names()
    frame = year.assign(pref=year["code"].astype(str).str[:2])
    rows = []
    for pref, g in frame.groupby("pref", sort=True):
        s = summary_counts(g)
        rows.append(
            {
                "都道府県コード": pref,
                "都道府県": names.get(pref, pref),
                "回答市町村数": s["n_municipalities"],
                "重層実施": s["n_jusou"],
                "重層実施割合(%)": _pct(s["n_jusou"], s["n_municipalities"]),
                "全項目実施": s["n_full"],
                "全項目実施割合(%)": _pct(s["n_full"], s["n_municipalities"]),
            }
        )
    return pd.DataFrame(rows)


def items_count_distribution(year: pd.DataFrame, book: Codebook) -> pd.DataFrame:
    """How many municipalities implement 0, 1, …, k main items (large datasets)."""
    k = year[book.main_items].astype("boolean").fillna(False).sum(axis=1).astype(int)
    counts = k.value_counts().reindex(range(len(book.main_items) + 1), fill_value=0)
    return pd.DataFrame(
        {
            "実施している主要項目の数": counts.index,
            "市町村数": counts.to_numpy(),
            "割合(%)": [_pct(int(v), len(year)) for v in counts.to_numpy()],
        }
    )


__all__ = [
    "NATIONAL_MUNICIPALITIES",
    "by_prefecture_table",
    "challenges_table",
    "items_count_distribution",
    "main_items_table",
    "measure_by_full_table",
    "municipality_items_table",
    "prefecture_names",
    "status_table",
    "summary_counts",
    "support_table",
    "transition_table",
    "trend_table",
]
