"""Reader-level invariants: every published number agrees with the tidy data and the other tables.

Each check recomputes what a table should say straight from the tidy rows (plain Python loops, not
the project's table code) and compares. The same checks run on the sample, on random synthetic
datasets (tests/test_invariants.py) and on the published files of a real run.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

FULL_LABEL = "包括的な支援体制の整備に関する指針（厚労省）の主要項目を全て実施"
JUSOU_LABEL = "重層的支援体制整備事業を実施済"


def _v(x):
    """Tidy cell -> True / False / None."""
    return None if pd.isna(x) else bool(x)


def expected_full(row, items) -> bool | None:
    values = [_v(row[i]) for i in items]
    if any(v is False for v in values):
        return False
    if all(v is True for v in values):
        return True
    return None


def exposure_of(panel: pd.DataFrame, fiscal_year: int, lag: int, measures) -> dict:
    """code -> {measure: True/False/None} for the support the report should use."""
    src = panel[panel["fiscal_year"] == fiscal_year - lag]
    by_code = {str(r["code"]): {m: _v(r[m]) for m in measures} for _, r in src.iterrows()}
    codes = panel.loc[panel["fiscal_year"] == fiscal_year, "code"].astype(str)
    return {c: by_code.get(c, {m: None for m in measures}) for c in codes}


def check_fiscal_year(rep, panel: pd.DataFrame, book, fiscal_year: int, lag: int) -> None:
    year = panel[panel["fiscal_year"] == fiscal_year]
    items, measures = book.main_items, book.support_measures
    n = len(year)
    full = {str(r["code"]): expected_full(r, items) for _, r in year.iterrows()}
    n_full = sum(v is True for v in full.values())
    n_jusou = int((year["jusou_status"].astype("string") == "implemented").sum())

    # headline counts: status table = summary = independent count
    status = rep.tables["status"].set_index("区分")["市町数"]
    assert int(status["回答市町数"]) == n
    assert int(status[FULL_LABEL]) == n_full
    assert int(status[JUSOU_LABEL]) == n_jusou
    assert rep.summary["n_municipalities"] == n and rep.summary["n_full"] == n_full
    assert rep.summary["n_jusou"] == n_jusou

    # main items: counts and missing per item
    mi = rep.tables["main_items"].set_index("指針の主要項目")
    for i in items:
        col = [_v(x) for x in year[i]]
        assert int(mi.loc[book.label(i), "実施市町数"]) == sum(v is True for v in col), i
        assert int(mi.loc[book.label(i), "無回答"]) == sum(v is None for v in col), i

    if "municipality_items" in rep.tables:
        mt = rep.tables["municipality_items"].set_index("市町村コード")
        assert len(mt) == n
        mark = {True: "○", False: "×", None: "—"}
        for _, r in year.iterrows():
            row = mt.loc[str(r["code"])]
            for i in items:
                assert row[book.label(i)] == mark[_v(r[i])], (r["code"], i)
            assert int(row["実施項目数"]) == sum(_v(r[i]) is True for i in items)
            assert row["全項目実施"] == mark[full[str(r["code"])]], r["code"]
        # the marks add up to the headline count, and per item to the main-items table
        assert int((mt["全項目実施"] == "○").sum()) == int(status[FULL_LABEL])
        for i in items:
            assert int((mt[book.label(i)] == "○").sum()) == int(mi.loc[book.label(i), "実施市町数"])
    else:  # national scale: distribution and by-prefecture tables
        dist = rep.tables["items_distribution"]
        assert int(dist["市町村数"].sum()) == n
        assert int(dist["市町村数"].iloc[-1]) == n_full
        pref = rep.tables["by_prefecture"]
        assert int(pref["回答市町村数"].sum()) == n
        assert int(pref["全項目実施"].sum()) == n_full and int(pref["重層実施"].sum()) == n_jusou

    # support: every table that speaks of support uses the same exposure
    exp = exposure_of(panel, fiscal_year, lag, measures)
    timing = "前年度" if lag else "同じ年度"
    if "support" in rep.tables:
        assert ("前年度" in rep.titles["support"]) == bool(lag)
        st = rep.tables["support"].set_index("支援施策")
        for m in measures:
            vals = [exp[c][m] for c in exp]
            assert int(st.loc[book.label(m), "活用市町数"]) == sum(v is True for v in vals), m
            assert int(st.loc[book.label(m), "無回答"]) == sum(v is None for v in vals), m
    if "association" not in rep.tables:
        assert lag == 1 and "support_by_full" not in rep.tables
        return
    assert timing in rep.titles["association"] and timing in rep.titles["support_by_full"]
    sbf = rep.tables["support_by_full"].set_index("支援施策")
    assoc = rep.tables["association"].set_index("支援施策")
    for m in measures:
        lab = book.label(m)
        pairs = [(exp[c][m], full[c]) for c in exp if exp[c][m] is not None and full[c] is not None]
        n1 = sum(e for e, _ in pairs)
        n0 = len(pairs) - n1
        a = sum(1 for e, f in pairs if e and f)
        c = sum(1 for e, f in pairs if not e and f)
        assert int(sbf.loc[lab, "活用あり(市町数)"]) == n1 == int(assoc.loc[lab, "活用あり(市町数)"]), m
        assert int(sbf.loc[lab, "活用なし(市町数)"]) == n0 == int(assoc.loc[lab, "活用なし(市町数)"]), m
        assert int(sbf.loc[lab, "うち全項目実施(活用あり)"]) == a
        assert int(sbf.loc[lab, "うち全項目実施(活用なし)"]) == c
        # 2×2 margins vs the headline count: the events are the fully implementing municipalities
        # whose exposure is known
        assert a + c == sum(1 for cd in exp if exp[cd][m] is not None and full[cd] is True)
        r1 = 100 * a / n1 if n1 else math.nan
        r0 = 100 * c / n0 if n0 else math.nan
        _close(assoc.loc[lab, "全項目実施率・あり(%)"], r1)
        _close(assoc.loc[lab, "全項目実施率・なし(%)"], r0)
        _close(sbf.loc[lab, "全項目実施率・活用あり(%)"], round(r1, 1) if n1 else math.nan)
        _close(assoc.loc[lab, "差(ポイント)"], r1 - r0)
        row = assoc.loc[lab]
        if not math.isnan(r1 - r0):
            assert row["差・下限(ポイント)"] <= r1 - r0 + 1e-9 <= row["差・上限(ポイント)"] + 2e-9
        for col in ("Fisher正確検定p値", "尤度比検定p値", "Holm調整p値", "BH調整p値"):
            p = float(row[col])
            assert math.isnan(p) or 0.0 <= p <= 1.0, (m, col, p)
        if not math.isnan(float(row["尤度比検定p値"])):
            assert float(row["Holm調整p値"]) >= float(row["尤度比検定p値"]) - 1e-12
        elif not re.search("(計算|推定)でき(ません|ませんでした)", row["注記"]):
            raise AssertionError(f"{m}: missing p-value without a note")
        o, lo, hi = (float(row[k]) for k in ("調整オッズ比(Firth)", "調整オッズ比・下限", "調整オッズ比・上限"))
        if not math.isnan(o) and not (math.isnan(lo) or math.isnan(hi)):
            assert lo <= o <= hi
    # the published numbers are numbers: no formatted strings in numeric columns
    for key, frame in rep.tables.items():
        for col in frame.columns:
            if any(t in col for t in ("p値", "(%)", "(ポイント)", "オッズ比", "市町数")):
                assert pd.api.types.is_numeric_dtype(frame[col]), (key, col)


def _close(got, want, tol=1e-9):
    got = float(got)
    if math.isnan(want):
        assert math.isnan(got), (got, want)
    else:
        assert abs(got - want) <= tol, (got, want)


def risk_set(panel: pd.DataFrame, items) -> list[tuple[str, int, int]]:
    """Independent person-period recomputation: (code, year, event) per at-risk year."""
    first = int(panel["fiscal_year"].min())
    out = []
    for code, g in panel.sort_values("fiscal_year").groupby("code"):
        status = {int(r["fiscal_year"]): expected_full(r, items) for _, r in g.iterrows()}
        # left-censored or unknown in the first year
        if status.get(first) is not False and first in status:
            continue
        for y in sorted(status):
            if y == first:
                continue
            if status[y] is None:
                break
            out.append((str(code), y, int(status[y])))
            if status[y]:
                break
    return out


def check_trends(rep, panel: pd.DataFrame, book, year_summaries: dict[int, dict] | None = None) -> None:
    trend = rep.tables["trend"]
    years = sorted(int(y) for y in panel["fiscal_year"].unique())
    assert len(trend) == len(years)
    for (_, row), y in zip(trend.iterrows(), years, strict=False):
        g = panel[panel["fiscal_year"] == y]
        n_full = sum(expected_full(r, book.main_items) is True for _, r in g.iterrows())
        assert row["年度"].startswith(f"FY{y}")
        assert int(row["回答市町数"]) == len(g)
        assert int(row["全項目実施市町数"]) == n_full
        assert int(row["重層実施市町数"]) == int((g["jusou_status"] == "implemented").sum())
        if year_summaries and y in year_summaries:
            s = year_summaries[y]
            assert (s["n_municipalities"], s["n_jusou"], s["n_full"]) == (
                int(row["回答市町数"]),
                int(row["重層実施市町数"]),
                int(row["全項目実施市町数"]),
            )
    # transitions: each period's counts = municipalities observed with a status in both years
    tr = rep.tables["transitions"]
    for y in years[:-1]:
        a = panel[panel["fiscal_year"] == y].set_index("code")["jusou_status"].dropna()
        b = panel[panel["fiscal_year"] == y + 1].set_index("code")["jusou_status"].dropna()
        both = len(set(a.index) & set(b.index))
        block = tr[tr["期間"] == f"FY{y}→FY{y + 1}"]
        assert int(block.drop(columns=["期間", "前年度の状況"]).to_numpy().sum()) == both
    if "hazard" in rep.tables:
        rs = risk_set(panel, book.main_items)
        hz = rep.tables["hazard"].set_index("支援施策（前年度の活用）")
        lag = {(str(r["code"]), int(r["fiscal_year"])): r for _, r in panel.iterrows()}
        for m in book.support_measures:
            rows = [(c, y, e) for c, y, e in rs if not pd.isna(lag[(c, y)][f"{m}_lag1"])]
            assert int(hz.loc[book.label(m), "市町・年度の数"]) == len(rows), m
            assert int(hz.loc[book.label(m), "全項目実施に到達した数"]) == sum(e for _, _, e in rows), m
            assert int(hz.loc[book.label(m), "市町数"]) == len({c for c, _, _ in rows}), m
    else:
        assert rep.hazard_text, "an empty hazard section must say why"


def random_panel(
    rng: np.random.Generator,
    book,
    n: int,
    n_years: int,
    *,
    missing: float = 0.0,
    constant_measure: bool | None = None,
    full_counts: dict[int, int] | None = None,
) -> pd.DataFrame:
    """A random tidy panel (as build_panel returns it) for invariant tests.

    `constant_measure` makes the first measure all-yes (True) or all-no (False) in every year;
    `full_counts` forces the number of fully implementing municipalities in some years (0 or 1...).
    """
    from analysis.panel import add_lags, add_outcome

    years = list(range(2021, 2021 + n_years))
    codes = [f"99{i:03d}0" for i in range(1, n + 1)]
    rows = []
    for y in years:
        target = (full_counts or {}).get(y)
        chosen = set(rng.choice(n, size=target, replace=False).tolist()) if target is not None else None
        for k, code in enumerate(codes):
            rec = {
                "fiscal_year": y,
                "code": code,
                "name": f"架空{k}町",
                "jusou_status": rng.choice(["implemented", "preparing", "not_implemented"], p=[0.3, 0.1, 0.6]),
                "notes": None,
            }
            p_item = 0.85 if rng.random() < 0.4 else 0.6
            for i in book.main_items:
                rec[i] = bool(rng.random() < p_item)
            if chosen is not None:
                if k in chosen:
                    for i in book.main_items:
                        rec[i] = True
                elif all(rec[i] for i in book.main_items):
                    rec[book.main_items[int(rng.integers(len(book.main_items)))]] = False
            for m in book.support_measures:
                rec[m] = bool(rng.random() < 0.45)
            if constant_measure is not None:
                rec[book.support_measures[0]] = constant_measure
            for ch in book.challenges:
                rec[ch] = bool(rng.random() < 0.5)
            if missing:
                for col in [*book.main_items, *book.support_measures, *book.challenges, "jusou_status"]:
                    if rng.random() < missing and not (chosen is not None and col in book.main_items):
                        rec[col] = None
            rows.append(rec)
    tidy = pd.DataFrame(rows)
    tidy["fiscal_year"] = tidy["fiscal_year"].astype("Int64")
    tidy["name"] = tidy["name"].astype("string")
    tidy["jusou_status"] = tidy["jusou_status"].astype("string")
    for col in [*book.main_items, *book.support_measures, *book.challenges]:
        tidy[col] = tidy[col].astype("boolean")
    panel = add_outcome(tidy, book)
    covs = pd.DataFrame(
        {"code": codes, "population": rng.integers(2_000, 400_000, size=n), "kaso": rng.integers(0, 2, size=n)}
    )
    panel = panel.merge(covs, on="code").sort_values(["code", "fiscal_year"]).reset_index(drop=True)
    return add_lags(panel, book.support_measures)
