"""Municipality profiles (市町別カルテ): every page of the sample, read back and tied to the panel.

The pages are parsed with BeautifulSoup (html.parser) and every mark, count, covariate and
median on them is compared with the panel built from the sample's survey files; the comparison
group is recomputed here with scipy's distance function. The A4 one-page print check and the
screenshots are in test_browser_profiles.py.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from bs4 import BeautifulSoup
from scipy.spatial.distance import cdist

from analysis import profiles
from analysis.codebook import load_codebook
from analysis.htmlexport import find_offline_violations
from analysis.panel import build_panel
from analysis.texts import SYNTHETIC_BANNER_JA
from analysis.wareki import wareki_fy

MARKS = {True: "○", False: "×", None: "—"}


@pytest.fixture(scope="module")
def panel(sample, book) -> pd.DataFrame:
    return build_panel(sample, book)


@pytest.fixture(scope="module")
def site(sample, book, panel, tmp_path_factory) -> Path:
    """reports/sample/ with every profile of every year and the 市町一覧 page."""
    reports = tmp_path_factory.mktemp("reports") / "sample"
    for fy in sample.years:
        written = profiles.write_profiles(sample, panel, book, fy, reports / "profiles" / f"FY{fy}")
        assert written == sorted(written)
    profiles.write_profile_index(sample, panel, book, sample.years, reports)
    return reports


_PARSED: dict[Path, BeautifulSoup] = {}


def _page(site: Path, code: str, fy: int) -> BeautifulSoup:
    """The parsed page (parsed once per test module; the tests only read it)."""
    path = site / profiles.profile_href(code, fy)
    if path not in _PARSED:
        _PARSED[path] = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    return _PARSED[path]


def _value(v):
    """None for a missing answer, else the answer as a Python bool (or the value itself)."""
    if pd.isna(v):
        return None
    return bool(v) if isinstance(v, (bool, np.bool_)) else v


def _mark(v) -> str:
    v = _value(v)
    return MARKS[None] if v is None else MARKS[bool(v)]


def _status(book, v) -> str:
    return "—" if pd.isna(v) else book.status_label(str(v))


def _items(book, row) -> str:
    vals = [_value(row[i]) for i in book.main_items]
    text = f"{sum(v is True for v in vals)}/{len(vals)}"
    missing = sum(v is None for v in vals)
    return text + (f"（無回答{missing}）" if missing else "")


def _number(text: str) -> float | None:
    """'151,310人' -> 151310, '32.0%' -> 32.0, '—' -> None."""
    if text.strip() == "—":
        return None
    return float(re.sub(r"[^0-9.\-]", "", text))


def _codes(panel, fy) -> list[str]:
    return sorted(panel.loc[panel["fiscal_year"] == fy, "code"].astype(str))


# --- coverage and links --------------------------------------------------------------------------


def test_every_municipality_has_a_page_for_every_year(site, sample, panel):
    for fy in sample.years:
        files = sorted(p.name for p in (site / "profiles" / f"FY{fy}").glob("*.html"))
        assert files == [f"{c}.html" for c in _codes(panel, fy)], fy
    assert sum(len(_codes(panel, fy)) for fy in sample.years) == 35 * 5


def test_profile_index_links_every_profile(site, sample, panel, book):
    index = BeautifulSoup((site / profiles.PROFILE_INDEX_HREF).read_text(encoding="utf-8"), "html.parser")
    links = {a["href"] for a in index.select("table#profiles a[href]")}
    expected = {f"FY{fy}/{c}.html" for fy in sample.years for c in _codes(panel, fy)}
    assert links == expected
    for href in links:
        assert (site / "profiles" / href).is_file(), href
    # each link shows that year's 重層 status and number of main items
    rows = {tr["data-code"]: tr for tr in index.select("table#profiles tbody tr")}
    for r in panel.to_dict("records"):
        cell = rows[r["code"]].find("td", attrs={"data-fy": str(r["fiscal_year"])})
        assert cell.get_text().strip() == f"{_status(book, r['jusou_status'])} {_items(book, r)}", (
            r["code"],
            r["fiscal_year"],
        )
    assert index.find("html")["lang"] == "ja"
    assert index.find("a", href="../index.html") is not None


def test_pages_link_back_and_to_their_peers(site, sample, panel):
    for fy in sample.years:
        for code in _codes(panel, fy):
            page = _page(site, code, fy)
            hrefs = [a["href"] for a in page.find_all("a", href=True)]
            assert "../../index.html" in hrefs and f"../../FY{fy}/report.html" in hrefs and "../index.html" in hrefs
            for a in page.select("table#similar a[href]"):
                assert (site / "profiles" / f"FY{fy}" / a["href"]).is_file(), a["href"]


# --- numbers on the page = the panel --------------------------------------------------------------


def test_grids_equal_the_panel(site, sample, panel, book):
    """Every ○/×/— of the year grids, the status history and the item counts, for every page."""
    checked = 0
    for fy in sample.years:
        for code in _codes(panel, fy):
            page = _page(site, code, fy)
            hist = panel[(panel["code"] == code) & (panel["fiscal_year"] <= fy)]
            years = [str(y) for y in hist["fiscal_year"]]
            hist_rows = [r for _, r in hist.iterrows()]
            for table, variables in (
                ("items", ["jusou_status", *book.main_items, "n_items", "full_implementation"]),
                ("measures", book.support_measures),
            ):
                # the table found once; its rows' cells by data-var (= "table#t tr[data-var=v] td")
                (tbl,) = page.select(f"table#{table}")
                shown = [tr["data-var"] for tr in tbl.select("tbody tr")]
                assert shown == variables, (code, fy, table)
                cells_of: dict[str, list] = {}
                for tr in tbl.find_all("tr"):
                    if tr.has_attr("data-var"):
                        cells_of.setdefault(tr["data-var"], []).extend(tr.find_all("td"))
                for var in variables:
                    cells = cells_of.get(var, [])
                    assert [c["data-fy"] for c in cells] == years, (code, fy, var)
                    for c, r in zip(cells, hist_rows, strict=False):
                        if var == "jusou_status":
                            want = _status(book, r[var])
                        elif var == "n_items":
                            want = _items(book, r)
                        else:
                            want = _mark(r[var])
                        assert c.get_text(strip=True) == want, (code, fy, var, r["fiscal_year"])
                        checked += 1
            # the current year is the last column and is highlighted
            assert "current" in page.select("table#items tr[data-var=item_hub] td")[-1]["class"]
    assert checked > 5000


def test_summary_equals_the_panel(site, sample, panel, book):
    for r in panel.to_dict("records"):
        page = _page(site, r["code"], r["fiscal_year"])
        dd = {d["data-var"]: d.get_text(strip=True) for d in page.select(".summary dd[data-var]")}
        assert dd["jusou_status"] == _status(book, r["jusou_status"])
        n_yes = sum(_value(r[i]) is True for i in book.main_items)
        assert dd["n_items"].startswith(f"{len(book.main_items)}項目中{n_yes}項目を実施")
        assert dd["n_items"].endswith(f"全て実施: {_mark(r['full_implementation'])}")
        for key, variables, wanted in (
            ("not_implemented", book.main_items, False),
            ("measures", book.support_measures, True),
            ("challenges", book.challenges, True),
        ):
            labels = [book.label(v) for v in variables if _value(r[v]) is wanted]
            head = dd[key].split("（無回答")[0]
            assert head == ("、".join(labels) if labels else "なし"), (r["code"], r["fiscal_year"], key)
    # neutral wording for what is not yet in place
    page = _page(site, "992011", 2021)
    text = page.get_text()
    assert "未実施の主要項目" in text
    for word in ("失敗", "不合格", "落第", "劣っ", "遅れ", "failing", "fail"):
        assert word not in text, word


def test_covariates_and_prefecture_medians_equal_the_panel(site, sample, panel, book):
    covs = [c["variable"] for c in book.covariates]
    assert covs == ["population", "aging_rate", "kaso", "fiscal_strength"]
    for fy in sample.years:
        year = panel[panel["fiscal_year"] == fy]
        for code in _codes(panel, fy):
            page = _page(site, code, fy)
            r = year[year["code"] == code].iloc[0]
            own = {td["data-var"]: td.get_text(strip=True) for td in page.select("table#similar tr.self td")}
            assert _number(own["population"]) == r["population"]
            assert _number(own["aging_rate"]) == pytest.approx(round(r["aging_rate"], 1))
            assert _number(own["fiscal_strength"]) == pytest.approx(round(r["fiscal_strength"], 2))
            assert own["kaso"] == ("指定あり" if r["kaso"] == 1 else "指定なし")
            pref = {td["data-var"]: td.get_text(strip=True) for td in page.select("table#similar tr.pref td")}
            assert _number(pref["population"]) == round(year["population"].median())
            assert _number(pref["aging_rate"]) == pytest.approx(round(year["aging_rate"].median(), 1))
            assert _number(pref["fiscal_strength"]) == pytest.approx(round(year["fiscal_strength"].median(), 2))
            assert pref["kaso"] == f"{int((year['kaso'] == 1).sum())}/{len(year)}市町"
            assert pref["jusou_status"] == f"実施{int((year['jusou_status'] == 'implemented').sum())}市町"
            assert pref["full_implementation"] == f"{int(year['full_implementation'].fillna(False).sum())}市町"
            n_yes = year[book.main_items].fillna(False).astype(bool).sum(axis=1)
            assert pref["n_items"] == f"中央値{n_yes.median():g}/{len(book.main_items)}"
    # FY2025 of the sample: 13 run 重層, 7 implement every main item (the seed's figures)
    pref = _page(site, "992011", 2025).select_one("table#similar tr.pref")
    assert "実施13市町" in pref.get_text() and "7市町" in pref.get_text()


# --- comparison group ------------------------------------------------------------------------------


def _expected_peers(panel, code, fy, k=profiles.N_SIMILAR) -> list[str]:
    year = panel[panel["fiscal_year"] == fy].sort_values("code")
    x = np.column_stack(
        [
            np.log(year["population"].astype(float)),
            year["aging_rate"].astype(float),
            year["kaso"].astype(float),
            year["fiscal_strength"].astype(float),
        ]
    )
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    codes = year["code"].astype(str).tolist()
    i = codes.index(code)
    d = cdist(z[i : i + 1], z)[0]
    order = sorted((round(float(d[j]), 9), codes[j]) for j in range(len(codes)) if j != i)
    return [c for _, c in order[:k]]


def test_comparison_group_is_the_nearest_neighbours(site, sample, panel, book):
    for fy in sample.years:
        for code in _codes(panel, fy):
            page = _page(site, code, fy)
            peers = [tr["data-code"] for tr in page.select("table#similar tbody.peers tr")]
            assert peers == _expected_peers(panel, code, fy), (code, fy)
            assert code not in peers
            assert [c for c, _ in profiles.similar_municipalities(panel, book, code, fy)] == peers
            # each peer's row shows its own facts of that year
            year = panel[panel["fiscal_year"] == fy].set_index("code")
            for tr in page.select("table#similar tbody.peers tr"):
                r = year.loc[tr["data-code"]]
                cells = {td["data-var"]: td.get_text(strip=True) for td in tr.find_all("td")}
                assert cells["jusou_status"] == _status(book, r["jusou_status"])
                assert cells["n_items"] == _items(book, r)
                assert cells["full_implementation"] == _mark(r["full_implementation"])
                assert _number(cells["population"]) == r["population"]
    text = _page(site, "992011", 2025).select_one("p.method").get_text()
    assert "人口（対数）・高齢化率・過疎地域指定・財政力指数" in text and "ユークリッド距離" in text
    assert "予測・評価するものではありません" in text


def test_comparison_group_ties_are_broken_by_code(sample, book, panel):
    year = panel[panel["fiscal_year"] == 2025].copy()
    # three municipalities with identical covariates: from the first, the other two are at distance 0
    a, b, c = "992020", "993018", "992089"
    for col in ("population", "aging_rate", "kaso", "fiscal_strength"):
        year.loc[year["code"].isin([b, c]), col] = year.loc[year["code"] == a, col].iloc[0]
    got = profiles.similar_municipalities(year, book, a, 2025, k=3)
    assert [g[0] for g in got[:2]] == sorted([b, c]) and got[0][1] == got[1][1] == 0.0
    # the row order of the panel does not matter
    shuffled = year.sample(frac=1.0, random_state=3)
    assert profiles.similar_municipalities(shuffled, book, a, 2025, k=3) == got


def test_missing_year_and_covariates_are_shown_as_dash(sample, book, panel):
    """A covariate left empty is 「—」, left out of the median and the distances, never filled in."""
    p = panel.copy()
    gone = "992046"
    p.loc[p["code"] == gone, "fiscal_strength"] = np.nan
    p = p[~((p["code"] == "992038") & (p["fiscal_year"] == 2023))]  # no answer in FY2023
    page = BeautifulSoup(profiles.render_profile(sample, p, book, gone, 2025), "html.parser")
    own = {td["data-var"]: td.get_text(strip=True) for td in page.select("table#similar tr.self td")}
    assert own["fiscal_strength"] == "—"
    year = p[p["fiscal_year"] == 2025]
    pref = {td["data-var"]: td.get_text(strip=True) for td in page.select("table#similar tr.pref td")}
    assert _number(pref["fiscal_strength"]) == pytest.approx(round(year["fiscal_strength"].median(), 2))
    # its group is chosen on the three covariates it has; it is in nobody's group (it lacks one they use)
    for code in _codes(p, 2025):
        peers = [c for c, _ in profiles.similar_municipalities(p, book, code, 2025)]
        assert (gone in peers) is False
    peers = profiles.similar_municipalities(p, book, gone, 2025)
    assert len(peers) == profiles.N_SIMILAR
    text = page.select_one("p.method").get_text()
    assert "人口（対数）・高齢化率・過疎地域指定をそれぞれ" in text
    # the year without an answer is not a column of that municipality's grid
    page = BeautifulSoup(profiles.render_profile(sample, p, book, "992038", 2025), "html.parser")
    fys = [td["data-fy"] for td in page.select("table#items tr[data-var=item_hub] td")]
    assert fys == ["2021", "2022", "2024", "2025"]
    index = BeautifulSoup(profiles.profile_index_html(sample, p, book, sample.years), "html.parser")
    cell = index.select_one('tr[data-code="992038"] td[data-fy="2023"]')
    assert cell.get_text(strip=True) == "—" and cell.find("a") is None


# --- determinism, incrementality ----------------------------------------------------------------


def test_pages_are_deterministic_and_independent_of_later_years(site, sample, book, panel):
    shuffled = panel.sample(frac=1.0, random_state=7)
    for code in ("992011", "994031"):
        html = profiles.render_profile(sample, shuffled, book, code, 2023)
        assert html == (site / profiles.profile_href(code, 2023)).read_text(encoding="utf-8")
        # a profile of FY2023 uses nothing of FY2024-25: adding a year never changes it
        early = panel[panel["fiscal_year"] <= 2023]
        assert profiles.render_profile(sample, early, book, code, 2023) == html
    assert not re.search(r"20\d\d-\d\d-\d\d|\d\d:\d\d:\d\d", html)  # no timestamps


def test_rewrite_keeps_unchanged_files_and_removes_stale_ones(sample, book, panel, tmp_path):
    out = tmp_path / "FY2025"
    first = profiles.write_profiles(sample, panel, book, 2025, out)
    stamps = {p: p.stat().st_mtime_ns for p in first}
    (out / "999999.html").write_text("old", encoding="utf-8")
    (out / "README.txt").write_text("keep", encoding="utf-8")
    again = profiles.write_profiles(sample, panel, book, 2025, out)
    assert again == first
    assert {p: p.stat().st_mtime_ns for p in again} == stamps
    assert not (out / "999999.html").exists() and (out / "README.txt").exists()


def test_the_list_page_is_rewritten_only_when_it_changes(sample, book, panel, tmp_path):
    path = profiles.write_profile_index(sample, panel, book, sample.years, tmp_path)
    stamp, text = path.stat().st_mtime_ns, path.read_text(encoding="utf-8")
    assert profiles.write_profile_index(sample, panel, book, sample.years, tmp_path) == path
    assert path.stat().st_mtime_ns == stamp
    fewer = profiles.write_profile_index(sample, panel, book, sample.years[:-1], tmp_path)  # a year less: new page
    assert fewer.read_text(encoding="utf-8") != text


# --- safety and privacy --------------------------------------------------------------------------


def test_every_page_is_offline_script_free_and_japanese(site, sample, panel):
    pages = sorted((site / "profiles").rglob("*.html"))
    assert len(pages) == 35 * 5 + 1
    for path in pages:
        html = path.read_text(encoding="utf-8")
        assert find_offline_violations(html) == [], path
        assert html.startswith('<!DOCTYPE html>\n<html lang="ja">')
        assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_names_and_free_text_are_escaped(sample, book, panel, tmp_path):
    p = panel.copy()
    evil = '<script>alert("x")</script>青葉&市'
    p.loc[p["code"] == "992011", "name"] = evil
    p.loc[p["code"] == "992011", "notes"] = "<img src=x onerror=alert(1)>連携"
    book2 = _book_with(book, tmp_path, publishable=True)
    for code in ("992011", "992020"):  # its own page, and a page where it may be a peer
        html = profiles.render_profile(sample, p, book2, code, 2025)
        assert "<script" not in html.lower() and "<img" not in html.lower()
        assert find_offline_violations(html) == []
    html = profiles.render_profile(sample, p, book2, "992011", 2025)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;青葉&amp;市" in html
    page = BeautifulSoup(html, "html.parser")
    assert page.select_one("h1 .name").get_text() == evil
    assert page.select_one(".free-text dd").get_text() == "<img src=x onerror=alert(1)>連携"
    index = profiles.profile_index_html(sample, p, book2, sample.years)
    assert "<script" not in index.lower() and "&lt;script&gt;" in index


def _book_with(book, tmp_path: Path, publishable):
    raw = yaml.safe_load(Path(book.path).read_text(encoding="utf-8"))
    for q in raw["questions"]:
        if q["variable"] == "notes":
            q["publishable"] = publishable
    path = tmp_path / f"codebook_{publishable}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_codebook(path)


def test_free_text_is_published_only_when_the_codebook_says_so(site, sample, book, panel, tmp_path):
    note = panel.loc[(panel["code"] == "992011") & (panel["fiscal_year"] == 2022), "notes"].iloc[0]
    assert note == "社会福祉協議会と連携して実施"
    assert book.question("notes").answers == "text"
    assert yaml.safe_load(Path(book.path).read_text(encoding="utf-8"))["questions"][-1]["publishable"] is False
    assert profiles.publishable_text_columns(book) == []
    page = (site / profiles.profile_href("992011", 2022)).read_text(encoding="utf-8")
    assert note not in page and "自由記述" not in page
    # every note of the sample stays off every page
    notes = set(panel["notes"].dropna())
    for path in (site / "profiles").rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not any(n in text for n in notes), path
    # without the flag at all: not published either
    raw = yaml.safe_load(Path(book.path).read_text(encoding="utf-8"))
    for q in raw["questions"]:
        q.pop("publishable", None)
    (tmp_path / "noflag.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert profiles.publishable_text_columns(load_codebook(tmp_path / "noflag.yaml")) == []
    # marked publishable: shown for that year only
    open_book = _book_with(book, tmp_path, publishable=True)
    assert profiles.publishable_text_columns(open_book) == ["notes"]
    page = BeautifulSoup(profiles.render_profile(sample, panel, open_book, "992011", 2022), "html.parser")
    assert page.select_one(".free-text dt").get_text() == "備考"
    assert page.select_one(".free-text dd").get_text() == note
    page = BeautifulSoup(profiles.render_profile(sample, panel, open_book, "992011", 2021), "html.parser")
    assert page.select_one(".free-text dd").get_text() == "記載なし"
    with pytest.raises(profiles.ProfileError, match="publishable"):
        profiles.publishable_text_columns(_book_with(book, tmp_path, publishable="yes"))


def test_banner_on_synthetic_data_only(site, sample, book, panel):
    page = _page(site, "992011", 2025)
    note = page.select_one("[role=note]")
    assert note is not None and note.get_text(strip=True) == SYNTHETIC_BANNER_JA
    assert (
        "架空データ"
        in BeautifulSoup((site / profiles.PROFILE_INDEX_HREF).read_text(encoding="utf-8"), "html.parser")
        .select_one("[role=note]")
        .get_text()
    )
    real = dataclasses.replace(sample, meta={**sample.meta, "synthetic": False})
    html = profiles.render_profile(real, panel, book, "992011", 2025)
    assert SYNTHETIC_BANNER_JA not in html and 'role="note"' not in html


def test_header_names_the_municipality_year_and_dataset(site, sample, panel):
    page = _page(site, "992011", 2025)
    assert page.select_one("h1 .name").get_text() == "青葉市"
    assert "992011" in page.select_one("h1").get_text()
    sub = page.select_one(".subtitle").get_text()
    assert wareki_fy(2025) in sub and "FY2025" in sub and sample.label_ja in sub
    assert page.title.get_text() == f"青葉市（992011）市町別カルテ {wareki_fy(2025)}"


def test_errors_name_the_problem_in_japanese_and_english(sample, book, panel):
    with pytest.raises(profiles.ProfileError, match=r"2030年度.*/ no FY2030"):
        profiles.render_profile(sample, panel, book, "992011", 2030)
    with pytest.raises(profiles.ProfileError, match=r"123456.*/ no municipality 123456"):
        profiles.render_profile(sample, panel, book, "123456", 2025)
    with pytest.raises(profiles.ProfileError, match="ファイル名に使えません"):
        profiles.profile_href("../../etc", 2025)
    dup = pd.concat([panel, panel[panel["code"] == "992011"]])
    with pytest.raises(profiles.ProfileError, match="duplicate"):
        profiles.write_profiles(sample, dup, book, 2025, Path("/nonexistent"))


def test_profile_href_convention():
    assert profiles.profile_href("992011", 2025) == "profiles/FY2025/992011.html"
    assert profiles.PROFILE_INDEX_HREF == "profiles/index.html"
    assert profiles.profile_dir(2025) == "profiles/FY2025"
    assert 3 <= profiles.N_SIMILAR <= 5


def _nearest_by_full_sort(z, code: str, k: int) -> list[tuple[str, float]]:
    """The definition: every comparable municipality sorted by rounded distance, ties by code."""
    values, codes = z.to_numpy(dtype=float), z.index.to_numpy()
    i = int(np.flatnonzero(codes == code)[0])
    used = ~np.isnan(values[i])
    if not used.any():
        return []
    diff = values[:, used] - values[i, used]
    ok = ~np.isnan(diff).any(axis=1)
    ok[i] = False
    dist = np.sqrt((diff[ok] ** 2).sum(axis=1))
    order = np.argsort(np.round(dist, 9), kind="stable")[:k]
    return [(str(c), float(d)) for c, d in zip(codes[ok][order], dist[order], strict=True)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nearest_keeps_the_full_sorts_order_with_ties_and_gaps(seed):
    """The partition-then-sort search gives exactly the full sort's neighbours, distances and order."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = 400
    # few distinct values: many equal distances, so ties at the k-th place are common
    z = pd.DataFrame(rng.integers(0, 4, size=(n, 4)).astype(float), index=[f"{i:06d}" for i in range(n)])
    z = z.mask(rng.random(z.shape) < 0.05)  # a few covariates missing
    z.iloc[7] = np.nan  # one with none: no neighbours
    z = z.sort_index()
    search = profiles._Neighbours(z)
    for code in z.index:
        for k in (1, 5, profiles.N_SIMILAR, n):
            assert search.nearest(code, k) == _nearest_by_full_sort(z, code, k), (code, k)
    assert search.nearest(z.index[7], 5) == []
