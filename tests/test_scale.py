"""Scale: the national synthetic data at k × 1,741 municipalities, and memory-lean bootstrap weights.

Cheap by design: codes and covariates at scale 2 (no survey files written, no pipeline run);
the 10× run itself is measured by benchmarks/pipeline.py, not here.
"""

import numpy as np
import pytest
from conftest import run_cli

from analysis import codes
from analysis.models import _chunks, _draw_weights, single_blas_thread
from analysis.simchunks import boot_chunk
from analysis.synthetic import (
    MAX_SCALE,
    ScaleError,
    check_scale,
    national_dataset_name,
    national_municipalities,
    scaled_codes,
)


@pytest.fixture(scope="module")
def master(root):
    return codes.load_master(root / "data" / "external" / "municipality_codes.csv")


def test_scale_one_is_the_real_list(master):
    real = master[master["municipality"] != ""].sort_values("lg_code")
    one = scaled_codes(master, 1)
    assert one["code"].tolist() == real["lg_code"].tolist()
    assert one["name"].tolist() == real["municipality"].tolist()
    assert (one["copy"] == 0).all()


def test_scale_two_doubles_with_unique_valid_fictional_codes(master):
    two = scaled_codes(master, 2)
    real = set(master["lg_code"])
    assert len(two) == 2 * 1741
    assert two["code"].is_unique and two["code"].map(codes.is_valid).all()
    copies = two[two["copy"] == 1]
    assert len(copies) == 1741 and not set(copies["code"]) & real  # no copy takes a real code
    assert copies["name"].str.endswith("（合成1）").all()
    # copies stay in their prefecture (every prefecture has room at scale 2) and in 201-999
    assert (copies["code"].str[:2] == copies["source"].str[:2]).all()
    assert copies["code"].str[2:5].astype(int).between(201, 999).all()
    assert two["code"].is_monotonic_increasing


def test_scale_ten_spills_over_only_when_a_prefecture_is_full(master):
    ten = scaled_codes(master, 10)
    assert len(ten) == 17_410 and ten["code"].is_unique and ten["code"].map(codes.is_valid).all()
    moved = ten[(ten["copy"] > 0) & (ten["code"].str[:2] != ten["source"].str[:2])]
    assert 0 < len(moved) < 0.1 * len(ten)  # 北海道's 179 × 9 copies do not fit in its 799 free codes
    assert set(moved["source"].str[:2]) == {"01"}
    assert ten["code"].str[:2].isin(set(master["pref_code"])).all()  # still the 47 prefectures


def test_scaled_draw_is_deterministic_and_scale_one_unchanged(master, root):
    path = root / "data" / "external" / "municipality_codes.csv"
    a = national_municipalities(np.random.default_rng(5), path, scale=2)
    b = national_municipalities(np.random.default_rng(5), path, scale=2)
    assert a.equals(b) and len(a) == 3482
    assert a[["population", "aging_rate", "kaso", "fiscal_strength"]].notna().all().all()
    # the copies are drawn, not duplicated: their covariates differ from their originals'
    two = scaled_codes(master, 2)
    pop = dict(zip(a["code"], a["population"], strict=True))
    copies = two[two["copy"] == 1]
    assert (copies["code"].map(pop).to_numpy() != copies["source"].map(pop).to_numpy()).mean() > 0.9


def test_scale_factor_is_checked():
    assert check_scale(3) == 3 and national_dataset_name(1) == "national-synthetic"
    assert national_dataset_name(10) == "national-synthetic-x10"
    for bad in (0, MAX_SCALE + 1, 2.0, True, "10"):
        with pytest.raises(ScaleError) as err:
            check_scale(bad)
        assert "倍率" in err.value.ja and "scale" in err.value.en


def test_cli_scale_needs_national(tmp_path):
    proc = run_cli(tmp_path, "sample", "--scale", "2")
    assert proc.returncode == 2 and "--scale" in proc.stderr and "--national" in proc.stderr


@pytest.mark.parametrize("kind", ["rademacher", "webb"])
@pytest.mark.parametrize("n_clusters", [35, 3001])
def test_bootstrap_weights_are_rng_choice_draws_kept_small(kind, n_clusters):
    """int8 indices drawn block by block = rng.choice's weights; the statistics are bitwise unchanged."""
    idx, pts = _draw_weights(np.random.default_rng(7), 999, n_clusters, kind)
    assert idx.dtype == np.int8 and idx.shape == (999, n_clusters)
    reference = np.random.default_rng(7).choice(pts, size=(999, n_clusters))
    assert np.array_equal(pts[idx], reference)
    u = np.random.default_rng(1).normal(size=n_clusters)
    for n_jobs in (1, 2):
        got = np.concatenate([boot_chunk(idx[sl], pts, u) for sl in _chunks(999, n_jobs)])
        whole = [reference[sl] for sl in _chunks(999, n_jobs)]
        with single_blas_thread():  # as the estimator computes it (see models.single_blas_thread)
            expected = np.concatenate([(w @ u) / np.sqrt((w**2) @ (u**2)) for w in whole])
        assert np.array_equal(got, expected)
