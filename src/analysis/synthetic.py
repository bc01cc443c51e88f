"""Seeded generator of the fictional sample prefecture (架空県) and its survey files.

The data-generating process (DGP), per municipality i and fiscal year t:

* covariates: log population, aging rate, 過疎 designation and fiscal strength, plus a latent
  "capacity" u_i ~ N(0, 1) that is never published (it is the unmeasured confounder).
* support uptake (6 measures): logit P(s_mit) = a_m + trend_m (t - 2021) + b_m log(pop/30,000)
  + c_m 過疎 + d_m u_i. Large cities take up training and study groups, small 過疎 towns take
  advisor dispatch and helper courses: who gets support is confounded with who progresses.
* 重層 adoption: discrete-time hazard (absorbing) on year, log population and u_i; a municipality
  is 移行準備 in the year before it adopts (and some others prepare without adopting yet).
* full implementation of the guideline's main items: discrete-time hazard (absorbing),
  logit h_it = alpha_t + sum_m beta_m s_{m,i,t-1} + gamma_j 重層_it + gamma_p log(pop/30,000)
  + gamma_u u_i, with beta nonzero only for advisor dispatch and staff training.
  Municipalities not yet fully implementing have a random proper subset of the main items.

The published sample is conditioned on the seed material's FY2025 figures (13 run 重層, 7
implement all main items): seeds are tried in order from `BASE_SEED` and the first whose draw
matches is kept, so the DGP parameters are exactly those in `truth.json` and regeneration is
byte-identical. Names and codes are fictional (prefecture code 99 does not exist).

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import codes
from .codebook import Codebook, load_codebook
from .errors import AnalysisError
from .export import save_workbook, write_csv, write_text
from .survey import Limits
from .texts import REAL_NAMES_SYNTHETIC_BANNER_JA
from .wareki import wareki_fy

BASE_SEED = 20250901
YEARS = (2021, 2022, 2023, 2024, 2025)
SAMPLE_PREF_CODE = "99"
SAMPLE_PREF_NAME = "架空県"
SYNTHETIC_NOTE_JA = "【架空データ】実在の自治体・調査とは関係ありません"

CITY_NAMES = ["青葉市", "霞ヶ丘市", "月見台市", "白砂市", "星川市", "若草市", "朝凪市", "鈴蘭市", "紅葉台市", "水城市"]
TOWN_NAMES = [
    "花野町",
    "雲雀町",
    "萩原町",
    "小鳩町",
    "渚町",
    "野菊町",
    "松風町",
    "夕凪町",
    "桐生野町",
    "菜の花町",
    "山彦町",
    "風見町",
    "千鳥町",
    "蛍町",
    "柚木町",
    "梢町",
    "椿原町",
    "瀬音町",
    "雪見町",
    "笹森町",
    "岬町",
    "鶴見野町",
    "葵町",
    "蓬町",
    "銀杏町",
]


@dataclass(frozen=True)
class Truth:
    """True DGP parameters (log-odds scale), written to truth.json next to the sample."""

    seed: int = BASE_SEED
    years: tuple[int, ...] = YEARS
    # support uptake: intercept, yearly trend, log-pop slope, 過疎, latent capacity
    support: dict = field(
        default_factory=lambda: {
            "sup_advisor": {"a": -1.6, "trend": 0.25, "b_logpop": -0.5, "c_kaso": 0.9, "d_u": 0.3},
            "sup_staff_training": {"a": -1.0, "trend": 0.20, "b_logpop": 0.7, "c_kaso": -0.4, "d_u": 0.6},
            "sup_study_group": {"a": -0.4, "trend": 0.15, "b_logpop": 0.5, "c_kaso": -0.2, "d_u": 0.5},
            "sup_workshop": {"a": -1.2, "trend": 0.20, "b_logpop": 0.3, "c_kaso": 0.0, "d_u": 0.2},
            "sup_multiprof": {"a": -1.5, "trend": 0.25, "b_logpop": 0.2, "c_kaso": 0.3, "d_u": 0.2},
            "sup_helper_course": {"a": -1.3, "trend": 0.20, "b_logpop": -0.3, "c_kaso": 0.8, "d_u": 0.0},
        }
    )
    jusou: dict = field(
        default_factory=lambda: {
            "alpha": {"2021": -3.5, "2022": -2.6, "2023": -2.6, "2024": -1.8, "2025": -1.8},
            "b_logpop": 0.8,
            "d_u": 0.8,
            "p_prepare_other": 0.08,
        }
    )
    # full implementation hazard; support enters with a one-year lag (support in t-1)
    full: dict = field(
        default_factory=lambda: {
            "alpha": {"2021": -5.0, "2022": -4.8, "2023": -4.6, "2024": -4.4, "2025": -4.2},
            "beta": {
                "sup_advisor": 1.2,
                "sup_staff_training": 1.0,
                "sup_study_group": 0.0,
                "sup_workshop": 0.0,
                "sup_multiprof": 0.0,
                "sup_helper_course": 0.0,
            },
            "gamma_jusou": 0.8,
            "gamma_logpop": 0.3,
            "gamma_u": 0.8,
            "exposure_lag": 1,
        }
    )
    targets_last_year: dict = field(default_factory=lambda: {"n_jusou": 13, "n_full": 7})


def _logit_p(x):
    return 1.0 / (1.0 + np.exp(-x))


def fictional_municipalities(rng: np.random.Generator) -> pd.DataFrame:
    """35 fictional municipalities (10 市, 25 町) with codes under prefecture 99."""
    rows = []
    for k, name in enumerate(CITY_NAMES, start=1):
        rows.append((f"{SAMPLE_PREF_CODE}2{k:02d}", name, "市"))
    for k, name in enumerate(TOWN_NAMES):
        rows.append((f"{SAMPLE_PREF_CODE}{3 + k // 8}{(k % 8) * 2 + 1:02d}", name, "町"))
    frame = pd.DataFrame(rows, columns=["code5", "name", "kind"])
    frame["code"] = [c + str(codes.check_digit(c)) for c in frame["code5"]]
    return municipality_covariates(frame["code"], frame["name"], frame["kind"], rng, kinds=("市", "町"))


# log-population mean, aging-rate mean and sd, by kind of municipality
KIND_PARAMS = {"市": (np.log(70_000), 29.5, 2.5), "町": (np.log(11_000), 37.0, 4.0), "村": (np.log(3_500), 40.0, 4.5)}


def municipality_covariates(
    code, name, kind, rng: np.random.Generator, kinds: tuple[str, ...] = ("市", "町", "村")
) -> pd.DataFrame:
    """Synthetic population, aging rate, 過疎 designation and fiscal strength by kind (市/町/村).

    One full-length draw per kind, in the order of `kinds`, so the sample's stream is stable.
    """
    kind = np.asarray(kind)
    n = len(kind)
    logpop, aging = np.zeros(n), np.zeros(n)
    for k in kinds:
        logpop = np.where(kind == k, rng.normal(KIND_PARAMS[k][0], 0.6, n), logpop)
    for k in kinds:
        aging = np.where(kind == k, rng.normal(KIND_PARAMS[k][1], KIND_PARAMS[k][2], n), aging)
    population = np.round(np.exp(logpop), -1).astype(int)
    aging = np.clip(aging, 20, 55)
    kaso_score = -0.9 * (logpop - np.log(20_000)) + 0.25 * (aging - 33) + rng.normal(0, 0.7, n)
    kaso = (kaso_score > 0.8).astype(int)
    fiscal = np.clip(0.25 + 0.16 * (logpop - np.log(5_000)) + rng.normal(0, 0.08, n), 0.12, 1.1)
    return pd.DataFrame(
        {
            "code": list(code),
            "name": list(name),
            "population": population,
            "aging_rate": np.round(aging, 1),
            "kaso": kaso,
            "fiscal_strength": np.round(fiscal, 2),
        }
    )


def simulate_panel(munis: pd.DataFrame, truth: Truth, rng: np.random.Generator, book: Codebook) -> pd.DataFrame:
    """Draw the municipality × fiscal-year panel (tidy, codebook variable names) from the DGP."""
    n = len(munis)
    u = rng.normal(0, 1, n)
    logpop = np.log(munis["population"].to_numpy() / 30_000)
    kaso = munis["kaso"].to_numpy()
    measures = list(truth.support)
    years = list(truth.years)
    # support with a burn-in year (t0 - 1) so that lagged support exists in the first year
    support = {}
    for t in [years[0] - 1, *years]:
        draw = {}
        for m, p in truth.support.items():
            eta = p["a"] + p["trend"] * (t - years[0]) + p["b_logpop"] * logpop + p["c_kaso"] * kaso + p["d_u"] * u
            draw[m] = rng.random(n) < _logit_p(eta)
        support[t] = draw
    jusou = np.zeros(n, dtype=bool)
    full = np.zeros(n, dtype=bool)
    items = book.main_items
    item_difficulty = np.linspace(-0.8, 0.8, len(items))  # later items are harder
    code_values, name_values = munis["code"].tolist(), munis["name"].tolist()
    columns: dict[str, list] = {}
    for t in years:
        # 重層 adoption (absorbing)
        h_j = _logit_p(truth.jusou["alpha"][str(t)] + truth.jusou["b_logpop"] * logpop + truth.jusou["d_u"] * u)
        new_j = (~jusou) & (rng.random(n) < h_j)
        # full implementation (absorbing), lagged support
        lag = truth.full["exposure_lag"]
        eta = (
            truth.full["alpha"][str(t)]
            + truth.full["gamma_jusou"] * (jusou | new_j)
            + truth.full["gamma_logpop"] * logpop
            + truth.full["gamma_u"] * u
        )
        for m, beta in truth.full["beta"].items():
            eta = eta + beta * support[t - lag][m]
        new_f = (~full) & (rng.random(n) < _logit_p(eta))
        jusou |= new_j
        full |= new_f
        # the year before adoption is not known yet; preparing = a random share of the rest,
        # more likely for high-capacity municipalities
        prep = (~jusou) & (rng.random(n) < truth.jusou["p_prepare_other"] + 0.12 * (u > 0.5))
        status = np.where(jusou, "implemented", np.where(prep, "preparing", "not_implemented"))
        # items: all for full; otherwise a proper subset whose size grows with time and capacity
        item_vals = np.ones((n, len(items)), dtype=bool)
        for i in np.flatnonzero(~full).tolist():
            score = 0.3 * (t - years[0]) + 0.8 * u[i] + 0.4 * jusou[i]
            p = _logit_p(score - item_difficulty + 0.6)
            row = rng.random(len(items)) < p
            if row.all():
                row[rng.integers(len(items))] = False
            item_vals[i] = row
        # challenges
        ch = {
            "ch_manpower": rng.random(n) < _logit_p(0.6 - 0.4 * logpop),
            "ch_internal": rng.random(n) < _logit_p(-0.2 - 0.5 * u - 0.2 * (t - years[0])),
            "ch_knowhow": rng.random(n) < _logit_p(0.4 + 0.3 * kaso),
            "ch_residents": rng.random(n) < _logit_p(-0.4 + 0.5 * kaso),
        }
        # one year's rows, built column by column (the notes keep their per-row draws, in row order)
        year = {"fiscal_year": [t] * n, "code": code_values, "name": name_values, "jusou_status": list(status)}
        year.update({item: item_vals[:, k].tolist() for k, item in enumerate(items)})
        year.update({m: support[t][m].tolist() for m in measures})
        year.update({c: v.tolist() for c, v in ch.items()})
        year["notes"] = [_note(rng, status[i], f) for i, f in enumerate(new_f.tolist())]
        for col, values in year.items():
            columns.setdefault(col, []).extend(values)
    panel = pd.DataFrame(columns)
    panel["full_implementation"] = panel[items].all(axis=1)
    return panel


_NOTES_PREP = ["次年度から重層的支援体制整備事業へ移行予定", "移行準備事業を活用して庁内調整中"]
_NOTES_OTHER = [
    "",
    "",
    "",
    "",
    "",
    "",
    "アドバイザー派遣を引き続き希望",
    "研修の開催回数を増やしてほしい",
    "庁内連携会議を設置済み",
    "社会福祉協議会と連携して実施",
]


def _note(rng: np.random.Generator, status: str, newly_full: bool) -> str:
    if newly_full:
        return "今年度、指針の主要項目を全て実施"
    if status == "preparing" and rng.random() < 0.5:
        return _NOTES_PREP[int(rng.integers(len(_NOTES_PREP)))]
    return _NOTES_OTHER[int(rng.integers(len(_NOTES_OTHER)))]


def draw_sample(
    truth: Truth | None = None, book: Codebook | None = None, max_tries: int = 5000
) -> tuple[pd.DataFrame, pd.DataFrame, Truth]:
    """Municipalities and panel of the first seed ≥ BASE_SEED matching the FY2025 targets."""
    truth = truth or Truth()
    book = book or load_codebook()
    last = truth.years[-1]
    for k in range(max_tries):
        seed = truth.seed + k
        rng = np.random.default_rng(seed)
        munis = fictional_municipalities(rng)
        panel = simulate_panel(munis, truth, rng, book)
        final = panel[panel["fiscal_year"] == last]
        n_j = int((final["jusou_status"] == "implemented").sum())
        n_f = int(final["full_implementation"].sum())
        first = panel[panel["fiscal_year"] == truth.years[0]]
        if (n_j, n_f) == (truth.targets_last_year["n_jusou"], truth.targets_last_year["n_full"]) and first[
            "full_implementation"
        ].sum() >= 1:
            used = Truth(**{**asdict(truth), "seed": seed})
            return munis, panel, used
    raise RuntimeError("no seed matched the targets; widen max_tries or revisit the DGP")


# --- writing the survey files -------------------------------------------------------------


def _answer_text(value: bool) -> str:
    return "○" if value else "×"


def write_survey_xlsx(
    panel_year: pd.DataFrame,
    book: Codebook,
    target: Path,
    fiscal_year: int,
    prefecture: str = SAMPLE_PREF_NAME,
    note: str | None = SYNTHETIC_NOTE_JA,
) -> Path:
    """A survey export shaped like a prefectural questionnaire summary sheet.

    Title rows, a two-row header (merged group cells over question texts), ○/× answers,
    the 重層 status as text and a notes column.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, Side

    wb = Workbook()
    ws = wb.active
    ws.title = "回答一覧"
    ws["A1"] = f"{wareki_fy(fiscal_year)} {book.raw['survey']['title_ja']} 集計表（{prefecture}）"
    ws["A1"].font = Font(bold=True, size=13)
    if note:
        ws["A2"] = note
        ws["A2"].font = Font(bold=True, color="C00000")
    header_top, header_row = 4, 5
    cols = [
        ("基本情報", book.id_columns["code"]["header_ja"], "code"),
        ("基本情報", book.id_columns["name"]["header_ja"], "name"),
    ]
    for q in book.questions:
        cols.append((q.group_ja, q.header_ja, q.variable))
    thin = Side(style="thin")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    for j, (group, header, _) in enumerate(cols, start=1):
        ws.cell(row=header_top, column=j, value=group)
        c = ws.cell(row=header_row, column=j, value=header)
        c.alignment = Alignment(wrap_text=True, vertical="center")
        for r in (header_top, header_row):
            ws.cell(row=r, column=j).border = border
            ws.cell(row=r, column=j).font = Font(bold=True)
    # merge runs of the same group in the top header row
    start = 1
    for j in range(2, len(cols) + 2):
        if j > len(cols) or cols[j - 1][0] != cols[start - 1][0]:
            if j - 1 > start:
                ws.merge_cells(start_row=header_top, start_column=start, end_row=header_top, end_column=j - 1)
            start = j
    status_text = {"implemented": "実施", "preparing": "移行準備", "not_implemented": "未実施"}
    for i, rec in enumerate(panel_year.sort_values("code").to_dict("records"), start=header_row + 1):
        for j, (_, _, var) in enumerate(cols, start=1):
            value = rec[var]
            if var == "jusou_status":
                value = status_text[value]
            elif isinstance(value, (bool, np.bool_)):
                value = _answer_text(bool(value))
            elif var == "notes" and not value:
                value = None
            c = ws.cell(row=i, column=j, value=value)
            c.border = border
            if var == "code":
                c.number_format = "@"
    ws.freeze_panes = ws.cell(row=header_row + 1, column=3)
    ws.column_dimensions["A"].width = 12
    ws.column_dimensions["B"].width = 12
    wb.properties.creator = SAMPLE_PREF_NAME
    return save_workbook(wb, target)


def write_sample(out_dir: Path, book: Codebook | None = None) -> dict:
    """Write data/raw/sample/: municipalities.csv, survey_FY<yyyy>.xlsx, truth.json, dataset.yaml."""
    import yaml

    book = book or load_codebook()
    munis, panel, truth = draw_sample(book=book)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(munis, out_dir / "municipalities.csv")
    files = {}
    for t in truth.years:
        name = f"survey_FY{t}.xlsx"
        write_survey_xlsx(panel[panel["fiscal_year"] == t], book, out_dir / name, t)
        files[t] = name
    summary = (
        panel.assign(jusou=panel["jusou_status"] == "implemented")
        .groupby("fiscal_year")[["jusou", "full_implementation"]]
        .sum()
        .astype(int)
    )
    truth_doc = {
        "description_ja": "架空県サンプルデータの真のデータ生成過程（対数オッズ）。実在の自治体とは関係ありません。",
        "description_en": "True data-generating parameters (log-odds) of the fictional sample.",
        "generator": "analysis.synthetic (python -m analysis sample)",
        "parameters": asdict(truth),
        "realised_counts": {
            str(t): {"n_jusou": int(r["jusou"]), "n_full": int(r["full_implementation"])} for t, r in summary.iterrows()
        },
    }
    write_text(out_dir / "truth.json", json.dumps(truth_doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    dataset = {
        "name": "sample",
        "label_ja": "架空県（サンプル・架空データ）",
        "label_en": "Fictional prefecture (sample, synthetic data)",
        "synthetic": True,
        "prefecture_code": SAMPLE_PREF_CODE,
        "prefecture_ja": SAMPLE_PREF_NAME,
        "description_ja": (
            "動作確認と説明のためにプログラムで作成した架空の県（35市町、令和3〜7年度）です。"
            "市町名・コードとも架空で、実在の自治体とは関係ありません。"
        ),
        "municipalities": "municipalities.csv",
        "surveys": {int(t): f for t, f in files.items()},
        # the fictional prefecture's plan: numeric targets for FY2027 (analysis.targets)
        "targets": [
            {"indicator": "jusou", "target_year": 2027, "value": 20},
            {"indicator": "full", "target_year": 2027, "value": 15},
        ],
    }
    write_text(
        out_dir / "dataset.yaml",
        "# Dataset definition (written by `python -m analysis sample`).\n"
        + yaml.safe_dump(dataset, allow_unicode=True, sort_keys=False),
    )
    return {"seed": truth.seed, "counts": truth_doc["realised_counts"]}


# --- national-scale synthetic data ----------------------------------------------------------

NATIONAL_NAME = "national-synthetic"
NATIONAL_SEED = BASE_SEED + 100_000
NATIONAL_NOTE_JA = "【合成データ】実在の市町村コード・名称に架空の回答を割り当てたもので、実際の調査結果ではありません"


# scale factor of the national synthetic data: 1 = the 1,741 real codes; k > 1 adds k - 1 fictional copies
MAX_SCALE = 25
# 3-digit municipality parts given to fictional copies: 201-999 (市 and 町村 ranges; 100-199 are
# designated cities and their wards, 000 the prefecture itself), skipping every code in the 総務省 list
_COPY_PARTS = range(201, 1000)


class ScaleError(AnalysisError, ValueError):
    """A scale factor the national synthetic data cannot have (ja / en)."""


def check_scale(scale: object) -> int:
    """`scale` as an int in 1..MAX_SCALE, else ScaleError (the code space of 47 prefectures is finite)."""
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
        raise ScaleError(
            f"倍率は 1 から {MAX_SCALE} までの整数で指定してください（今は『{scale}』）",
            f"the scale factor must be an integer from 1 to {MAX_SCALE}, not {scale!r}",
        )
    return scale


def national_dataset_name(scale: int = 1) -> str:
    """Dataset name of the national synthetic data at `scale`: national-synthetic, national-synthetic-x10."""
    return NATIONAL_NAME if check_scale(scale) == 1 else f"{NATIONAL_NAME}-x{scale}"


def scaled_codes(master: pd.DataFrame, scale: int) -> pd.DataFrame:
    """The real municipalities of `master` plus `scale - 1` fictional copies of each, with unique codes.

    Columns: code, name, source (the real code copied), copy (0 = the real one). A copy keeps its
    original's prefecture while that prefecture has free codes (3-digit parts 201–999 not in the
    総務省 list, ascending), then takes the next free code of the prefecture with the most left,
    so every code is a valid-looking 6-digit code (check digit included) and none is real.
    Deterministic: depends only on the master and `scale`.
    """
    check_scale(scale)
    real = master[master["municipality"] != ""].sort_values("lg_code")
    rows = [(c, n, c, 0) for c, n in zip(real["lg_code"], real["municipality"], strict=True)]
    if scale == 1:
        return pd.DataFrame(rows, columns=["code", "name", "source", "copy"])
    taken = {c[:5] for c in master["lg_code"]}
    free: dict[str, list[str]] = {}
    for pref in sorted(set(master["pref_code"])):
        parts = (f"{pref}{k:03d}" for k in _COPY_PARTS)
        free[pref] = [c for c in parts if c not in taken][::-1]  # pop() gives the lowest
    needed = (scale - 1) * len(real)
    if needed > sum(len(v) for v in free.values()):
        raise ScaleError(
            f"倍率 {scale} では市町村コードが足りません", f"not enough free municipality codes for scale {scale}"
        )
    for k in range(1, scale):
        for code, name in zip(real["lg_code"], real["municipality"], strict=True):
            pref = code[:2]
            if not free[pref]:
                pref = max(sorted(free), key=lambda p: len(free[p]))
            code5 = free[pref].pop()
            rows.append((code5 + str(codes.check_digit(code5)), f"{name}（合成{k}）", code, k))
    return pd.DataFrame(rows, columns=["code", "name", "source", "copy"]).sort_values("code", ignore_index=True)


def national_municipalities(rng: np.random.Generator, master_path: Path, scale: int = 1) -> pd.DataFrame:
    """All 1,741 real municipality codes (総務省 list) with synthetic covariates; `scale` × as many when > 1.

    At scale k > 1 each real municipality gets k - 1 fictional copies (see `scaled_codes`), of the
    same kind (市/町/村), with their own covariate draws.
    """
    master = codes.load_master(master_path)
    munis = scaled_codes(master, scale)
    base = munis["source"].map(dict(zip(master["lg_code"], master["municipality"], strict=False)))
    kind = base.str[-1].map({"市": "市", "区": "市", "町": "町", "村": "村"}).fillna("町")
    return municipality_covariates(munis["code"], munis["name"], kind.to_numpy(), rng)


def _national_draw(
    book: Codebook, master_path: Path | None = None, scale: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame, Truth]:
    """(municipalities, panel, truth) of the national synthetic data at `scale`: one fixed-seed draw."""
    from .paths import data_dir

    master_path = master_path or data_dir() / "external" / "municipality_codes.csv"
    truth = Truth(seed=NATIONAL_SEED)
    rng = np.random.default_rng(truth.seed)
    munis = national_municipalities(rng, master_path, scale)
    panel = simulate_panel(munis, truth, rng, book)
    return munis, panel, truth


def _write_surveys(out_dir: Path, munis: pd.DataFrame, panel: pd.DataFrame, book: Codebook, years, prefecture: str):
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(munis, out_dir / "municipalities.csv")
    files = {}
    for t in years:
        name = f"survey_FY{t}.xlsx"
        write_survey_xlsx(
            panel[panel["fiscal_year"] == t], book, out_dir / name, t, prefecture=prefecture, note=NATIONAL_NOTE_JA
        )
        files[t] = name
    return files


def write_national(
    out_dir: Path, book: Codebook | None = None, master_path: Path | None = None, scale: int = 1
) -> dict:
    """Write data/raw/national-synthetic/: every real code, FY2021–FY2025, marked synthetic.

    With `scale` k > 1 (data/raw/national-synthetic-x<k>/ by default): k × 1,741 municipalities,
    the real ones plus fictional copies (see `scaled_codes`), for scale and memory tests. Scale 1
    is byte-identical to the data written before scaling existed.
    """
    import yaml

    check_scale(scale)
    book = book or load_codebook()
    munis, panel, truth = _national_draw(book, master_path, scale)
    files = _write_surveys(out_dir, munis, panel, book, truth.years, "全国・合成データ")
    doc: dict = {"description_ja": "全国規模の合成データの真のパラメータ（対数オッズ）。", "parameters": asdict(truth)}
    if scale > 1:
        doc["scale"] = scale
    write_text(out_dir / "truth.json", json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    dataset: dict = {
        "name": national_dataset_name(scale),
        "label_ja": "全国（合成データ・架空の回答）",
        "label_en": "National synthetic data (fictional answers)",
        "synthetic": True,
        "banner_ja": REAL_NAMES_SYNTHETIC_BANNER_JA,
        "prefecture_code": None,
        "description_ja": (
            "全国1,741市町村の実在のコード・名称に、analysis.synthetic が固定シードで生成した架空の回答を"
            "割り当てた検証用データです。実際の調査結果ではありません。"
        ),
        "municipalities": "municipalities.csv",
        "surveys": files,
    }
    if scale > 1:
        dataset["label_ja"] = f"全国の{scale}倍規模（合成データ・架空の市町村と回答）"
        dataset["label_en"] = f"National synthetic data at {scale}x size (fictional municipalities and answers)"
        dataset["description_ja"] = (
            f"全国1,741市町村の実在のコード・名称に、その{scale - 1}倍の架空の市町村（名前の末尾が「（合成k）」、"
            f"実在しないコード）を加えた{len(munis):,}市町村の規模検証用データです。回答は analysis.synthetic が"
            "固定シードで生成した架空のもので、実際の調査結果ではありません。"
        )
        rows = len(munis) + 100  # title and header rows with room to spare
        if rows > Limits().max_rows:
            dataset["limits"] = {"max_rows": rows}
    command = "python -m analysis sample --national" + (f" --scale {scale}" if scale > 1 else "")
    write_text(
        out_dir / "dataset.yaml",
        f"# Written by `{command}`.\n" + yaml.safe_dump(dataset, allow_unicode=True, sort_keys=False),
    )
    return {"seed": truth.seed, "n_municipalities": len(munis)}


def prefecture_dataset_name(pref_code: str) -> str:
    """Dataset name of one prefecture's part of the national synthetic data, e.g. national_pref01."""
    return f"national_pref{pref_code}"


def write_national_by_prefecture(
    raw_root: Path,
    book: Codebook | None = None,
    master_path: Path | None = None,
    prefectures: list[str] | None = None,
) -> list[Path]:
    """The national synthetic data split into one dataset per prefecture: raw_root/national_pref<01..47>/.

    The same draw as write_national (same seed), so a prefecture's answers are its municipalities'
    rows of the national data. `prefectures` (two-digit codes) limits the output; returns the folders.
    """
    import yaml

    from .paths import data_dir

    book = book or load_codebook()
    master_path = master_path or data_dir() / "external" / "municipality_codes.csv"
    munis, panel, truth = _national_draw(book, master_path)
    master = codes.load_master(master_path)
    names = dict(zip(master["pref_code"], master["prefecture"], strict=False))
    pref_of = munis["code"].astype(str).str[:2]
    written = []
    for pref in sorted(pref_of.unique()):
        if prefectures is not None and pref not in prefectures:
            continue
        name, pref_ja = prefecture_dataset_name(pref), names[pref]
        sub = munis[pref_of == pref].reset_index(drop=True)
        out_dir = raw_root / name
        files = _write_surveys(out_dir, sub, panel[panel["code"].isin(sub["code"])], book, truth.years, pref_ja)
        dataset = {
            "name": name,
            "label_ja": f"{pref_ja}（全国合成データ・架空の回答）",
            "label_en": f"Prefecture {pref} of the national synthetic data (fictional answers)",
            "synthetic": True,
            "banner_ja": REAL_NAMES_SYNTHETIC_BANNER_JA,
            "prefecture_code": pref,
            "prefecture_ja": pref_ja,
            "description_ja": (
                f"全国合成データ（national-synthetic と同じ固定シード）のうち{pref_ja}の{len(sub)}市町村の分です。"
                "実在のコード・名称に架空の回答を割り当てたもので、実際の調査結果ではありません。"
            ),
            "municipalities": "municipalities.csv",
            "surveys": files,
        }
        write_text(
            out_dir / "dataset.yaml",
            "# Written by `python -m analysis sample --national --by-prefecture`.\n"
            + yaml.safe_dump(dataset, allow_unicode=True, sort_keys=False),
        )
        written.append(out_dir)
    return written


__all__ = [
    "BASE_SEED",
    "CITY_NAMES",
    "KIND_PARAMS",
    "MAX_SCALE",
    "NATIONAL_NAME",
    "NATIONAL_NOTE_JA",
    "NATIONAL_SEED",
    "SAMPLE_PREF_CODE",
    "SAMPLE_PREF_NAME",
    "SYNTHETIC_NOTE_JA",
    "TOWN_NAMES",
    "YEARS",
    "ScaleError",
    "Truth",
    "check_scale",
    "draw_sample",
    "fictional_municipalities",
    "municipality_covariates",
    "national_dataset_name",
    "national_municipalities",
    "prefecture_dataset_name",
    "scaled_codes",
    "simulate_panel",
    "write_national",
    "write_national_by_prefecture",
    "write_sample",
    "write_survey_xlsx",
]
