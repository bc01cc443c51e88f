"""Several datasets in one run: their finishing steps (profiles, PDFs, index) run on the executor's workers.

Printing 47 prefectures' profiles and PDFs one dataset after another in the main process took longer
than their reports, so a multi-dataset run sends each dataset's finishing step to the workers. What
it publishes must be what running each dataset alone (finishing in the main process) publishes.
"""

from __future__ import annotations

import shutil

import pytest
from conftest import add_prefectures, add_sample_subset, make_project_copy, run_cli
from published import published

from analysis.runner import run_many
from analysis.texts import REAL_NAMES_SYNTHETIC_BANNER_JA, SYNTHETIC_BANNER_JA

NAMES = ["national_pref16", "national_pref31"]  # the two smallest prefectures (15 and 19 municipalities)


YEARS = ("--years", "2025", "--jobs", "2")


SMALL = ["sample_a", "sample_b"]  # the sample's FY2025 survey as two datasets: no generation step


@pytest.fixture(scope="module")
def seed(tmp_path_factory, national_by_prefecture):
    """A project with two prefectures of the national synthetic data (not run)."""
    seed = make_project_copy(tmp_path_factory.mktemp("seed"))
    add_prefectures(seed, national_by_prefecture, NAMES)
    return seed


@pytest.fixture(scope="module")
def prefectures(tmp_path_factory, seed):
    """A copy of `seed` where both prefectures ran in one run: (project, completed process)."""
    together = tmp_path_factory.mktemp("together")
    shutil.copytree(seed, together, dirs_exist_ok=True)
    return together, run_cli(together, "run", "--datasets", ",".join(NAMES), *YEARS)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Two small datasets (SMALL) run together, HTML only, one worker (printing and two workers: the long form above)."""
    project = make_project_copy(tmp_path_factory.mktemp("small"))
    for name in SMALL:
        add_sample_subset(project, name, (2025,))
    # one worker: the test below replaces the executor, this run only makes the reports
    return project, run_cli(project, "run", "--datasets", ",".join(SMALL), "--years", "2025", "--jobs", "1", "--no-pdf")


@pytest.mark.full
def test_datasets_run_together_publish_what_each_run_alone_publishes(prefectures, seed, tmp_path):
    together, both = prefectures
    alone = tmp_path / "alone"
    shutil.copytree(seed, alone)
    singles = [run_cli(alone, "run", "--dataset", name, *YEARS, "--no-progress") for name in NAMES]
    assert both.returncode == 0, both.stdout[-3000:] + both.stderr[-3000:]
    assert all(p.returncode == 0 for p in singles), [p.stderr[-2000:] for p in singles]
    # the plan comes first; then the finishing steps ran as tasks (one progress line each)
    assert both.stderr.startswith("データセット 2 件・レポート 6 件: 作成 6 件、最新のため省略 0 件")
    for name in NAMES:
        assert f"] {name}: 完了" in both.stderr and "[仕上げ " in both.stderr
    for name in NAMES:
        files_together, files_alone = published(together, name), published(alone, name)
        assert any(k.startswith("profiles/FY2025/") and k.endswith(".pdf") for k in files_together)
        assert any(k.endswith(".pdf") and k.startswith("FY2025/") for k in files_together)
        assert "index.html" in files_together
        assert files_together.keys() == files_alone.keys()
        # real municipality names with fictional answers: the banner says exactly that
        for page in ("index.html", "FY2025/report.html", "profiles/index.html"):
            html = (together / "reports" / name / page).read_text(encoding="utf-8")
            assert REAL_NAMES_SYNTHETIC_BANNER_JA in html and SYNTHETIC_BANNER_JA not in html, page
        assert [k for k in files_together if files_together[k] != files_alone[k]] == []


class _WorkersLost:
    """An executor whose workers die under every finishing task (the report jobs are up to date)."""

    def __init__(self):
        self.notes: list[str] = []

    def run_jobs(self, todo, root):
        raise AssertionError("nothing to execute: every report is up to date")

    def run_calls(self, fn, calls):
        for i in range(len(calls)):
            yield i, RuntimeError("worker lost")


class _NoWorkers(_WorkersLost):
    """An executor that must not be given anything."""

    def run_calls(self, fn, calls):
        raise AssertionError(f"nothing to finish on a worker, got {len(calls)} call(s)")


@pytest.mark.full  # the finishing step's record needs the PDFs printed: a run that prints
def test_an_unchanged_dataset_is_not_sent_to_a_worker(prefectures, monkeypatch):
    # a warm re-run of many datasets: nothing made, nothing changed, so no finishing task (and no
    # worker or cluster) for any of them; one whose page was deleted is finished on a worker
    together, both = prefectures
    assert both.returncode == 0, both.stdout[-3000:] + both.stderr[-3000:]
    monkeypatch.setenv("ANALYSIS_ROOT", str(together))
    states = {n: (together / "reports" / n / ".site-state.json").read_bytes() for n in NAMES}
    out = run_many(NAMES, [2025], executor=_NoWorkers(), progress=False)
    for name in NAMES:
        assert all(r.status == "skipped" for r in out[name]) and out[name].warnings == []
        assert (together / "reports" / name / ".site-state.json").read_bytes() == states[name]
    again = run_cli(together, "run", "--datasets", ",".join(NAMES), *YEARS)
    assert again.returncode == 0 and again.stdout.count("最新") == 6 and "仕上げ" not in again.stderr
    profile = sorted((together / "reports" / NAMES[1] / "profiles" / "FY2025").glob("*.html"))[0]
    profile.unlink()
    third = run_cli(together, "run", "--datasets", ",".join(NAMES), *YEARS)
    assert third.returncode == 0 and f"[仕上げ 1/1] {NAMES[1]}: 完了" in third.stderr, third.stderr
    assert profile.is_file()


def test_a_finishing_step_lost_on_its_worker_is_done_in_the_main_process(small, monkeypatch):
    together, both = small
    assert both.returncode == 0, both.stdout[-3000:] + both.stderr[-3000:]
    indexes = [together / "reports" / name / "index.html" for name in SMALL]
    for index in indexes:
        index.unlink()  # so that neither dataset's finishing step can be skipped
    monkeypatch.setenv("ANALYSIS_ROOT", str(together))
    out = run_many(SMALL, [2025], executor=_WorkersLost(), progress=False, pdfs=False)
    for name in SMALL:
        assert all(r.status == "skipped" for r in out[name])
        assert any("本体で実行しました" in w and "worker lost" in w for w in out[name].warnings)
    assert all(index.is_file() for index in indexes)  # rebuilt here
