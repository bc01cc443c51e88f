"""Small, fast version of validation/recovery.py: the estimator finds the known truth."""
from analysis import recovery


def test_hazard_estimator_recovers_the_truth_at_national_size():
    truth = recovery.truth_without_confounding()
    reps = recovery.run(6, "national", confounded=False, n_boot=99)
    assert "error" not in reps or reps["error"].isna().all()
    table = recovery.summarise(reps, truth).set_index("measure")
    # loose bounds for 6 replications (per-replication SD is about 0.14)
    assert abs(table.loc["sup_advisor", "bias"]) < 0.3
    assert abs(table.loc["sup_staff_training", "bias"]) < 0.3
    assert abs(table.loc["sup_workshop", "bias"]) < 0.3
    assert table.loc["sup_advisor", "reject_rate_wild"] >= 5 / 6  # a true effect of 1.2 at N = 1,741
    assert table["coverage_95"].min() >= 0.5


def test_unobserved_confounding_biases_the_association_upwards():
    reps = recovery.run(4, "national", confounded=True, n_boot=49)
    table = recovery.summarise(reps, recovery.Truth()).set_index("measure")
    # u raises both support uptake and progress: the null measure looks beneficial
    assert table.loc["sup_workshop", "mean_estimate"] > 0


def test_replications_are_reproducible():
    a = recovery.run(2, "prefecture", confounded=False, n_boot=49)
    b = recovery.run(2, "prefecture", confounded=False, n_boot=49, n_jobs=2)
    assert a.equals(b)
