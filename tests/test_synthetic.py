import json

from analysis import codes
from analysis.synthetic import write_sample


def test_regenerating_gives_byte_identical_files(tmp_path, root):
    write_sample(tmp_path / "sample")
    committed = root / "data" / "raw" / "sample"
    names = sorted(p.name for p in committed.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "sample").iterdir())
    for name in names:
        assert (tmp_path / "sample" / name).read_bytes() == (committed / name).read_bytes(), name


def test_fictional_municipalities(sample):
    master = sample.master()
    assert 30 <= len(master) <= 40
    assert master["code"].map(codes.is_valid).all()
    assert (master["code"].str[:2] == "99").all()  # no real prefecture has code 99
    real = codes.load_master(sample.root.parents[1] / "external" / "municipality_codes.csv")
    assert not set(master["code"]) & set(real["lg_code"])
    assert master[["population", "aging_rate", "kaso", "fiscal_strength"]].notna().all().all()


def test_fy2025_matches_the_seed_material(sample, book):
    tidy = sample.read(2025, book).tidy
    from analysis.panel import add_outcome

    year = add_outcome(tidy, book)
    assert int(year["jusou"].sum()) == 13
    assert int(year["full_implementation"].sum()) == 7


def test_history_is_plausible(sample, book):
    from analysis.panel import build_panel

    panel = build_panel(sample, book)
    by_year = panel.groupby("fiscal_year")[["jusou", "full_implementation"]].sum()
    assert by_year["jusou"].is_monotonic_increasing and by_year["jusou"].iloc[0] < by_year["jusou"].iloc[-1]
    assert by_year["full_implementation"].is_monotonic_increasing
    # confounded uptake: larger municipalities use staff training more, 過疎 towns advisor dispatch more
    big = panel["population"] > panel["population"].median()
    assert panel.loc[big, "sup_staff_training"].mean() > panel.loc[~big, "sup_staff_training"].mean()
    assert panel.loc[panel["kaso"] == 1, "sup_advisor"].mean() > panel.loc[panel["kaso"] == 0, "sup_advisor"].mean()


def test_truth_file_states_nonzero_effects(sample):
    truth = json.loads((sample.root / "truth.json").read_text(encoding="utf-8"))
    beta = truth["parameters"]["full"]["beta"]
    assert sum(1 for v in beta.values() if v != 0) >= 2
    assert truth["realised_counts"]["2025"] == {"n_jusou": 13, "n_full": 7}


def test_survey_file_looks_like_a_questionnaire_export(sample):
    from openpyxl import load_workbook

    ws = load_workbook(sample.survey_path(2025)).active
    assert "令和7年度" in ws["A1"].value and "架空" in ws["A2"].value
    assert ws.merged_cells.ranges  # merged group header
    values = {c.value for row in ws.iter_rows(min_row=6) for c in row}
    assert {"○", "×"} <= values and "備考" in {c.value for c in ws[5]}
