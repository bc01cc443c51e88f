"""Dask: report jobs on a LocalCluster give the local run's files; simulations give the local numbers.

Needs the dask extra (`pip install -e '.[dask]'`, which `make test` installs); without it the tests
that need Dask are skipped with a message, and the test of that message runs regardless.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import add_prefectures, kernels_started, make_project_copy, python_kernelspec, run_cli
from published import published

from analysis import processes

SKIP_REASON = "dask.distributed is not installed (pip install -e '.[dask]'; make test installs it)"


@pytest.mark.full
def test_dask_run_gives_the_local_runs_files(sample_run):
    pytest.importorskip("distributed", reason=SKIP_REASON)
    local_project, local = sample_run
    assert local.returncode == 0, local.stderr[-3000:]
    # a folder name of another length too: nothing published may depend on where the project is
    project = make_project_copy(local_project.parent / f"dask-executor-{local_project.name}")
    args = ("run", "--dataset", "sample", "--years", "2021-2025", "--jobs", "2", "--no-progress", "--no-pdf")
    proc = run_cli(project, *args, "--executor", "dask")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "失敗" not in proc.stdout and "Traceback" not in proc.stderr
    # a single dataset's PDFs are printed in the main process after the jobs, as in a local run
    # (multi-dataset runs print on the workers: test_prefecture_datasets_run_together_on_dask...)
    local_files, dask_files = published(local_project, printed=False), published(project, printed=False)
    assert len(dask_files) > 200  # reports, tables, figures, profiles, index
    assert dask_files.keys() == local_files.keys()
    assert [k for k in dask_files if dask_files[k] != local_files[k]] == []
    assert not (project / "reports" / "sample" / ".staging").exists()
    # incremental: nothing changed, so nothing runs (and no cluster is needed)
    again = run_cli(project, *args, "--executor", "dask")
    assert again.returncode == 0 and "成功" not in again.stdout and again.stdout.count("最新") == 11


def _break_notebook(project: Path, name: str) -> None:
    """Make every run of notebooks/<name>.ipynb fail in its first code cell."""
    path = project / "notebooks" / f"{name}.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    first = next(
        c for c in nb["cells"] if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", [])
    )
    first["source"] = "raise RuntimeError('broken on purpose')\n" + "".join(first["source"])
    path.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")


@pytest.mark.full
def test_prefecture_datasets_run_together_on_dask_and_a_failure_stays_isolated(tmp_path, national_by_prefecture):
    pytest.importorskip("distributed", reason=SKIP_REASON)
    project = make_project_copy(tmp_path / "p")
    names = ["national_pref16", "national_pref31"]  # the two smallest (15 and 19 municipalities)
    add_prefectures(project, national_by_prefecture, names)
    _break_notebook(project, "data_quality")
    args = ("run", "--datasets", ",".join(names), "--years", "2025", "--jobs", "2", "--no-progress")
    proc = run_cli(project, *args, "--executor", "dask")
    # the quality reports fail, everything else is made; the command ends non-zero and says so
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 件のレポートが失敗しました" in proc.stderr and "Traceback" not in proc.stderr
    for name in names:
        base = project / "reports" / name
        for job in ("FY2025", "trends"):
            assert json.loads((base / job / "manifest.json").read_text(encoding="utf-8"))["status"] == "ok"
        assert not (base / "quality" / "FY2025").exists()
        record = json.loads((base / ".failed" / "quality_FY2025.json").read_text(encoding="utf-8"))
        assert "broken on purpose" in record["reason_ja"]
        assert (base / "index.html").is_file() and not (base / ".staging").exists()
    overview = (project / "reports" / "index.html").read_text(encoding="utf-8")
    for name, pref in zip(names, ("富山県", "鳥取県"), strict=True):
        assert f'href="{name}/index.html"' in overview and pref in overview
    assert overview.count("失敗 1 件") == 2 and '<html lang="ja"' in overview


@pytest.mark.full
def test_unreachable_scheduler_is_one_bilingual_error(tmp_path):
    pytest.importorskip("distributed", reason=SKIP_REASON)
    project = make_project_copy(tmp_path / "p")
    proc = run_cli(
        project, "run", "--years", "2025", "--no-progress", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "スケジューラ tcp://127.0.0.1:9 に接続できません" in proc.stderr and "unreachable" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (project / "reports" / "sample" / ".staging").exists()


@pytest.mark.parametrize(
    ("address", "words"),
    [("http://127.0.0.1:8787", "ダッシュボード（http）のアドレス"), ("localhost", "アドレスの形ではありません")],
)
def test_a_malformed_scheduler_address_is_one_line_even_when_nothing_runs(tmp_path, address, words):
    pytest.importorskip("distributed", reason=SKIP_REASON)
    project = make_project_copy(tmp_path / "p")
    proc = run_cli(project, "run", "--years", "2025", "--no-progress", "--executor", "dask", "--scheduler", address)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert words in proc.stderr and "tcp://" in proc.stderr and "Traceback" not in proc.stderr
    assert not (project / "reports").exists()


def test_without_dask_the_executor_says_how_to_install_it(tmp_path):
    # runs whether or not dask is installed: the import is blocked in the child process
    project = make_project_copy(tmp_path / "p")
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from analysis.cli import main\n"
        "raise SystemExit(main(['run', '--executor', 'dask', '--no-progress']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env={**os.environ, "ANALYSIS_ROOT": str(project)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "dask.distributed が必要です" in proc.stderr and "pip install -e '.[dask]'" in proc.stderr
    assert not (project / "reports").exists()


def test_scheduler_without_the_dask_executor_is_refused(tmp_path):
    project = make_project_copy(tmp_path / "p")
    proc = run_cli(project, "run", "--scheduler", "tcp://127.0.0.1:8786")
    assert proc.returncode == 2 and "--executor dask" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.full
def test_a_dask_worker_keeps_one_kernel_for_its_notebooks_and_stops_it_at_the_end(tmp_path, monkeypatch):
    pytest.importorskip("distributed", reason=SKIP_REASON)
    starts = tmp_path / "kernel-starts.txt"
    prelude = f"with open({str(starts)!r}, 'a') as fh:\n    fh.write(f'{{os.getpid()}}\\n')\n"
    monkeypatch.setenv("JUPYTER_PATH", str(python_kernelspec(tmp_path, prelude, "Python 3 (counted)")))
    project = make_project_copy(tmp_path / "p")
    args = ("run", "--years", "2025", "--jobs", "1", "--no-progress", "--force", "--no-pdf", "--executor", "dask")
    proc = run_cli(project, *args)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert kernels_started(starts, project) == 1  # three notebooks (FY2025, trends, quality), one kernel
    before = len(starts.read_text().split())
    proc = run_cli(project, *args, "--fresh-kernels")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert kernels_started(starts, project, before) == 3
    pids = [int(p) for p in starts.read_text().split()]
    assert not [p for p in pids if processes.alive(p)], "a kernel outlived its run"


# ---------------------------------------------------------------------------
# simulations: joblib's Dask backend while a client is current
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed", reason=SKIP_REASON)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _on_cluster(client, func):
    """(func(), number of tasks the cluster ran for it)."""
    from distributed import get_task_stream

    with get_task_stream(client) as stream:
        result = func()
    return result, len(stream.data)


def test_recovery_replications_on_dask_equal_the_local_run(dask_client):
    from analysis import recovery

    local = recovery.run(2, "prefecture", confounded=False, n_boot=49)
    remote, n_tasks = _on_cluster(dask_client, lambda: recovery.run(2, "prefecture", confounded=False, n_boot=49))
    assert n_tasks >= 2  # the replications really ran on the cluster
    assert remote.equals(local)


def test_power_simulation_on_dask_equals_the_local_run(dask_client):
    from analysis.power import minimal_detectable_difference, simulated_power

    local = simulated_power(20, 15, 0.6, 0.3, n_sim=2500, seed=123)
    remote, n_tasks = _on_cluster(dask_client, lambda: simulated_power(20, 15, 0.6, 0.3, n_sim=2500, seed=123))
    assert n_tasks >= 2 and remote == local
    local_mdd = minimal_detectable_difference(10, 25, 0.2, seed=7, n_sim=1000)
    remote_mdd, _ = _on_cluster(dask_client, lambda: minimal_detectable_difference(10, 25, 0.2, seed=7, n_sim=1000))
    assert remote_mdd == local_mdd


def test_hazard_wild_bootstrap_on_dask_equals_the_local_run(dask_client):
    import joblib
    import numpy as np
    import pandas as pd

    from analysis.models import discrete_time_hazard

    rng = np.random.default_rng(3)
    rows = []
    for cluster in range(20):
        support = int(rng.random() < 0.5)
        for t in range(4):
            event = int(rng.random() < 0.15 + 0.2 * support)
            rows.append({"pref": cluster, "t": t, "support": support, "full": event})
            if event:
                break
    pp = pd.DataFrame(rows)
    kw = {"method": "firth", "n_boot": 99, "seed": 11, "period_col": "t"}
    local = discrete_time_hazard("full ~ support", pp, "pref", **kw)
    remote, n_tasks = _on_cluster(dask_client, lambda: discrete_time_hazard("full ~ support", pp, "pref", **kw))
    assert n_tasks >= 1
    pd.testing.assert_frame_equal(remote.tests, local.tests, check_exact=True)
    # the explicit form documented in the README does the same
    with joblib.parallel_config(backend="dask"):
        explicit = discrete_time_hazard("full ~ support", pp, "pref", **kw)
    pd.testing.assert_frame_equal(explicit.tests, local.tests, check_exact=True)
