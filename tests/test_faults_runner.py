"""Faults survived and said clearly (issue 10): real runs, real kernels, real file systems.

One copy of the session's good sample run (conftest ``sample_run``: every report of every year,
made once for the whole test session) holds the reports. Then, each on that copy:

* a notebook whose kernel is SIGKILLed (FY2024) or exceeds the memory limit (FY2025);
* a full disk (a tiny tmpfs mounted over reports/sample/) and a read-only output folder (a
  read-only bind mount) — as root, chmod does not stop writes, mounts do;
* SIGTERM, SIGINT and SIGKILL of the main ``run`` process: its workers and kernels (listed from
  /proc before the signal) must all be gone afterwards; a second ``run`` meanwhile is refused;
* stale staging folders and an interrupted swap, repaired by the next run.

Every time: exit status 1 (or the signal's), the summary table, one line of Japanese and English
per failed report, and the earlier reports byte-for-byte intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from conftest import copy_of_sample_run, failure_lines, make_project_copy, python_kernelspec, run_cli

from analysis import processes, runner
from analysis.site import build_index

DATASET = "sample"
#: a forced HTML-only run of one year on one worker (the faults are in the reports, not in printing
#: or in how jobs share workers)
FORCED_FY2025 = ("run", "--dataset", DATASET, "--years", "2025", "--force", "--jobs", "1", "--no-progress", "--no-pdf")
STALE = "最新の実行で失敗：前回（"


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _statuses(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("fiscal_year_report", "trends", "data_quality", "site"):
            out[f"{parts[0]} {parts[1]}"] = parts[2]
    return out


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def mounts_allowed(tmp_path_factory) -> bool:
    probe = tmp_path_factory.mktemp("mount-probe")
    try:
        _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe))
    except (OSError, subprocess.CalledProcessError):
        return False
    _umount(probe)
    return True


@pytest.fixture(scope="module")
def project(sample_run, tmp_path_factory) -> Path:
    """A copy of the good sample run (file times kept, so its reports are up to date), for this module to break."""
    proc = sample_run[1]
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return copy_of_sample_run(sample_run, tmp_path_factory.mktemp("faults") / "project")


@pytest.fixture()
def base(project) -> Path:
    return project / "reports" / DATASET


# ---------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sample", "a", "pref-2025_v2", "A" * 64, "0x"])
def test_identifier_dataset_names_are_accepted(name):
    assert runner.validate_dataset_name(name) == name


@pytest.mark.parametrize(
    "name", ["../x", "a/b", "/tmp/x", "", ".hidden", "-x", "_x", "A" * 65, "x\n", "サンプル", "a b", "..", None]
)
def test_other_dataset_names_are_refused(name):
    with pytest.raises(runner.RunError) as info:
        runner.validate_dataset_name(name)
    assert "データセット名" in info.value.ja and "invalid dataset name" in info.value.en


def test_every_command_refuses_a_path_as_dataset_name(project):
    survey = project / "data" / "raw" / DATASET / "survey_FY2025.xlsx"
    for args in (
        ["run", "--dataset", "../x", "--no-progress"],
        ["site", "--dataset", "../x"],
        ["validate", str(survey), "--dataset", "../x", "--tidy-out", str(project / "t.csv")],
    ):
        proc = run_cli(project, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "データセット名『../x』は使えません" in proc.stderr and "invalid dataset name '../x'" in proc.stderr
    assert not (project / "x").exists() and not (project / "t.csv").exists()


# ---------------------------------------------------------------------------
# kernel death and memory limit
# ---------------------------------------------------------------------------


def _inject(notebook: Path, source: str) -> bytes:
    """Insert a code cell right after the parameters cell (so after papermill's injected one)."""
    original = notebook.read_bytes()
    nb = nbformat.reads(original.decode("utf-8"), as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(source))
    nbformat.write(nb, notebook)
    return original


@pytest.mark.full
def test_killed_kernel_and_memory_limit_fail_their_year_only(project, base):
    before = {y: _digest(base / y) for y in ("FY2024", "FY2025")}
    notebook = project / "notebooks" / "fiscal_year_report.ipynb"
    original = _inject(
        notebook,
        (
            "import os\n"
            "if fiscal_year == 2024:\n"
            "    os.kill(os.getpid(), 9)\n"
            "if fiscal_year == 2025:\n"
            "    import numpy\n"
            "    _ballast = numpy.zeros(6 * 1024 ** 3, dtype=numpy.uint8)  # lazily mapped: no RAM without the limit\n"
        ),
    )
    try:
        proc = run_cli(
            project,
            "run",
            "--dataset",
            DATASET,
            "--years",
            "2024-2025",
            "--force",
            "--jobs",
            "2",
            "--memory-limit-mb",
            "4096",
            "--no-progress",
            "--no-pdf",
        )
    finally:
        notebook.write_bytes(original)
    assert proc.returncode == 1, proc.stderr[-2000:]
    st = _statuses(proc.stdout)
    assert st["fiscal_year_report FY2024"] == st["fiscal_year_report FY2025"] == "失敗"
    assert st["trends 全年度"] == st["data_quality FY2024"] == st["data_quality FY2025"] == "成功"
    lines = failure_lines(proc.stdout)
    assert set(lines) == {"FY2024", "FY2025"}
    assert (
        "カーネルが強制終了されました（SIGKILL）" in lines["FY2024"]
        and "kernel was killed (SIGKILL)" in lines["FY2024"]
    )
    assert (
        "メモリ上限（4,096 MB）を超えました" in lines["FY2025"]
        and "memory limit (4,096 MB) exceeded" in lines["FY2025"]
    )
    for y in ("FY2024", "FY2025"):
        assert _digest(base / y) == before[y], f"{y} changed"
        record = json.loads((base / ".failed" / f"{y}.json").read_text(encoding="utf-8"))
        assert record["reason_ja"] in lines[y] and record["reason_en"] in lines[y]
    # the index keeps the earlier reports, says that the latest run failed, and why
    index = (base / "index.html").read_text(encoding="utf-8")
    assert index.count(STALE) == 2 and "FY2025/report.html" in index
    assert "カーネルが強制終了されました" in index and "メモリ上限（4,096 MB）を超えました" in index


# ---------------------------------------------------------------------------
# full disk, read-only output
# ---------------------------------------------------------------------------


def _tmpfs_copy_of(base: Path, tmp: Path, free_kib: int) -> None:
    """Mount a tmpfs over `base` holding a copy of it, with only `free_kib` KiB left."""
    backup = tmp / "backup"
    shutil.copytree(base, backup, symlinks=True)
    _mount("-t", "tmpfs", "-o", "size=256m", "tmpfs", str(base))
    shutil.copytree(backup, base, symlinks=True, dirs_exist_ok=True)
    st = os.statvfs(base)
    used_kib = (st.f_blocks - st.f_bfree) * st.f_frsize // 1024
    _mount("-o", f"remount,size={used_kib + free_kib}k", str(base))


def test_full_disk_fails_clearly_and_keeps_the_old_report(project, base, tmp_path, mounts_allowed):
    if not mounts_allowed:
        pytest.skip("needs root to mount a tmpfs (a real full disk)")
    before = _digest(base / "FY2025")
    # the fiscal-year notebook edited since: FY2025's report is out of date, its trends and
    # data-quality reports are not (no --force: only the one report is made, on a full disk)
    notebook = project / "notebooks" / "fiscal_year_report.ipynb"
    original = _inject(notebook, "# edited since the last run")
    _tmpfs_copy_of(base, tmp_path, free_kib=8)
    try:
        proc = run_cli(
            project, "run", "--dataset", DATASET, "--years", "2025", "--jobs", "1", "--no-progress", "--no-pdf"
        )
        after = _digest(base / "FY2025")
        index = (base / "index.html").read_text(encoding="utf-8")
    finally:
        _umount(base)
        notebook.write_bytes(original)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "ノートブック" in proc.stdout  # the summary table
    line = failure_lines(proc.stdout)["FY2025"]
    assert "ディスクの空き容量が足りないため書き込めませんでした" in line and "no space left on device" in line
    assert str(base) in line  # names the path
    assert after == before and "FY2025/report.html" in index


def test_read_only_output_fails_clearly_and_keeps_the_old_report(project, base, mounts_allowed):
    if not mounts_allowed:
        pytest.skip("needs root for a read-only bind mount")
    # without the record of the last finishing step, the run tries to rebuild the index too
    (base / ".site-state.json").unlink(missing_ok=True)
    before = _digest(base)
    _mount("--bind", str(base), str(base))
    try:
        _mount("-o", "remount,bind,ro", str(base))
        proc = run_cli(project, *FORCED_FY2025)
    finally:
        _umount(base)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = failure_lines(proc.stdout)
    for name in ("FY2025", "trends", "quality/FY2025", "index.html"):
        assert "読み取り専用の場所のため書き込めませんでした" in lines[name], lines
        assert "read-only file system" in lines[name] and str(base) in lines[name]
    assert _digest(base) == before


def test_write_failures_name_the_file_they_were_writing(tmp_path, mounts_allowed):
    """A full disk reports no file name ("[Errno 28] No space left on device"): export adds it."""
    from analysis import export

    if not mounts_allowed:
        pytest.skip("needs root to mount a tmpfs")
    full = tmp_path / "full"
    full.mkdir()
    _mount("-t", "tmpfs", "-o", "size=16k", "tmpfs", str(full))
    try:
        with pytest.raises(OSError) as info:
            export.write_bytes(full / "big.bin", b"x" * 65536)
        leftovers = list(full.iterdir())
    finally:
        _umount(full)
    assert info.value.filename == str(full / "big.bin") and leftovers == []  # no half-written temp file
    ja, en = export.write_error_text(info.value.errno, info.value.filename)
    assert ja == f"ディスクの空き容量が足りないため書き込めませんでした: {full / 'big.bin'}"
    assert en == f"no space left on device: {full / 'big.bin'}"
    # an immutable folder (chattr +i stops even root): permission
    locked = tmp_path / "locked"
    locked.mkdir()
    if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i not available here")
    try:
        with pytest.raises(OSError) as info:
            export.write_text(locked / "t.txt", "x")
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)
    assert info.value.filename == str(locked / "t.txt")
    ja, en = export.write_error_text(info.value.errno, info.value.filename)
    assert ja.startswith("書き込む権限がないため書き込めませんでした") and en.startswith("permission denied")


# ---------------------------------------------------------------------------
# signals, the lock, orphans
# ---------------------------------------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _wait_for_kernels(pid: int, n: int, timeout: float = 120) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tree = runner.descendants(pid)
        if sum("ipykernel" in _cmdline(p) for p in tree) >= n:
            return tree
        time.sleep(0.1)
    raise AssertionError(f"no {n} kernels under {pid} after {timeout} s")


def _still_running(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(processes.alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if processes.alive(p)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_stopping_the_main_process_stops_workers_and_kernels(project, base, sig):
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    before = _digest(base / "FY2025")
    env = {**os.environ, "ANALYSIS_ROOT": str(project)}
    main = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "analysis",
            "run",
            "--dataset",
            DATASET,
            "--years",
            "2025",
            "--force",
            "--jobs",
            "2",
            "--no-progress",
            "--no-pdf",
        ],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        tree = _wait_for_kernels(main.pid, 2)
        # meanwhile a second run of the same dataset is refused, with a clear message
        second = run_cli(project, "run", "--dataset", DATASET, "--years", "2025", "--no-progress", "--no-pdf")
        assert second.returncode == 1
        assert f"別の実行（プロセス {main.pid}）が作成中です" in second.stderr and "another run" in second.stderr
        main.send_signal(sig)
        _, stderr = main.communicate(timeout=60)
    finally:
        if main.poll() is None:
            main.kill()
            main.communicate()
    assert main.returncode == (-9 if sig == signal.SIGKILL else 128 + sig)
    if sig != signal.SIGKILL:
        assert "中断しました" in stderr and "interrupted" in stderr and "Traceback" not in stderr
        assert not (base / ".staging").exists()
    assert len(tree) >= 4  # two workers, two kernels (and multiprocessing's resource tracker)
    assert _still_running(tree, timeout=15) == [], [_cmdline(p) for p in tree if processes.alive(p)]
    assert _digest(base / "FY2025") == before


def _watch_tree(proc: subprocess.Popen) -> dict[int, str]:
    """{pid: command line} of every process that ran under `proc` (sampled every 50 ms until it ends)."""
    seen: dict[int, str] = {}
    while proc.poll() is None:
        for pid in runner.descendants(proc.pid):
            seen[pid] = _cmdline(pid) or seen.get(pid, "")  # again: a process forks, then execs
        time.sleep(0.05)
    return seen


@pytest.mark.full
@pytest.mark.parametrize("outcome", ["error", "normal"])  # normal last: it clears the failure record
def test_no_process_outlives_a_run_that_ends_normally_or_with_an_error(project, base, outcome):
    """Workers, their kept kernels (reused between notebooks), and the PDF printer's browser all
    end with the run: normally, and when a notebook fails (its kernel is stopped at once)."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc")
    notebook = project / "notebooks" / "fiscal_year_report.ipynb"
    original = notebook.read_bytes()
    if outcome == "error":
        _inject(notebook, "if fiscal_year == 2025:\n    raise ValueError('boom')\n")
    env = {**os.environ, "ANALYSIS_ROOT": str(project)}
    cmd = [sys.executable, "-m", "analysis", "run", "--dataset", DATASET, "--years", "2024-2025", "--force"]
    cmd += ["--jobs", "2", "--no-progress"]
    try:
        main = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        seen = _watch_tree(main)
        stdout = main.stdout.read() if main.stdout else ""
    finally:
        notebook.write_bytes(original)
    assert main.returncode == (0 if outcome == "normal" else 1), stdout[-2000:]
    assert sum("ipykernel" in c for c in seen.values()) >= 2, seen  # the workers' kernels were seen
    assert _still_running(sorted(seen), timeout=10) == [], [seen[p] for p in seen if processes.alive(p)]


def test_lock_refuses_or_waits_in_process(tmp_path):
    base = tmp_path / "reports" / "x"
    with runner.run_lock(base):
        with pytest.raises(runner.RunLocked) as info, runner.run_lock(base):
            pass
        assert str(os.getpid()) in info.value.ja
    held = threading.Event()

    def hold():
        with runner.run_lock(base):
            held.set()
            time.sleep(0.5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    t0 = time.monotonic()
    with runner.run_lock(base, wait=True):
        waited = time.monotonic() - t0
    t.join()
    assert waited >= 0.3


def test_stale_staging_and_an_interrupted_swap_are_repaired(project, base):
    fy2024 = _digest(base / "FY2024")
    (base / ".staging" / "FY2025-99999").mkdir(parents=True, exist_ok=True)
    (base / ".staging" / "FY2025-99999" / "report.html").write_text("half", encoding="utf-8")
    os.replace(base / "FY2024", base / ".old-FY2024-99999")  # killed between the two renames
    (base / ".failed").mkdir(exist_ok=True)
    (base / ".failed" / "FY2024.json").write_text(json.dumps({"reason_ja": "前の失敗"}), encoding="utf-8")
    proc = run_cli(project, "run", "--dataset", DATASET, "--years", "2024-2025", "--no-progress", "--no-pdf")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not (base / ".staging").exists() and not list(base.glob(".old-*"))
    assert _digest(base / "FY2024") == fy2024
    # FY2024 is current again: its failure record is gone and the index no longer warns about it
    assert not (base / ".failed" / "FY2024.json").exists()
    assert "前の失敗" not in (base / "index.html").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# the index tells the truth (site level)
# ---------------------------------------------------------------------------


def _write_report(d: Path, year: int | None, finished: str) -> None:
    d.mkdir(parents=True)
    (d / "report.html").write_text("<!DOCTYPE html><title>r</title>", encoding="utf-8")
    (d / "manifest.json").write_text(
        json.dumps({"dataset": "s", "fiscal_year": year, "status": "ok", "finished": finished}), encoding="utf-8"
    )


def test_index_marks_reports_whose_latest_run_failed(tmp_path):
    reports = tmp_path / "s"
    _write_report(reports / "FY2025", 2025, "2026-11-28T01:30:00+00:00")
    _write_report(reports / "trends", None, "2026-11-28T01:00:00+00:00")
    _write_report(reports / "quality" / "FY2025", 2025, "2026-11-28T01:00:00+00:00")
    failed = reports / ".failed"
    failed.mkdir()
    for name, reason in (
        ("FY2025", "読み取り専用 <b>x</b>"),
        ("trends", "傾向の失敗"),
        ("quality_FY2025", "品質の失敗"),
        ("FY2024", "未作成の年度の失敗"),
    ):
        (failed / f"{name}.json").write_text(json.dumps({"reason_ja": reason, "reason_en": "why"}), encoding="utf-8")
    html = build_index(reports, {"name": "s", "fiscal_years": [2024, 2025]}).read_text(encoding="utf-8")
    assert "最新の実行で失敗：前回（2026年11月28日 10:30）のレポートを表示しています" in html  # JST
    assert html.count(STALE) == 3  # FY2025, its quality report, trends: still linked
    assert 'href="FY2025/report.html"' in html and 'href="trends/report.html"' in html
    assert "読み取り専用 &lt;b&gt;x&lt;/b&gt; / why" in html and "傾向の失敗" in html and "品質の失敗" in html
    # a year with no earlier report is plainly failed, with the reason
    assert "最新の実行で失敗しました：未作成の年度の失敗" in html
    # the notice and its reason take a row of their own, the table's whole width, under the year
    # (in the レポート column they made the row a few characters wide and a screen tall)
    from bs4 import BeautifulSoup

    table = BeautifulSoup(html, "html.parser").find("table", class_="years")
    n_columns = len(table.thead.find_all("th"))
    (cell,) = table.find_all("td", class_="stale-cell")
    assert int(cell["colspan"]) == n_columns and "読み取り専用" in cell.get_text()
    year_row = cell.parent.find_previous_sibling("tr")
    assert year_row.th["id"] == "year-FY2025" and cell["headers"] == ["year-FY2025"]  # bs4: a list
    assert STALE not in year_row.find("td", attrs={"data-label": "レポート"}).get_text()


def test_reports_link_back_to_the_index(project, base):
    for page, href in (
        ("FY2025/report.html", "../index.html"),
        ("trends/report.html", "../index.html"),
        ("quality/FY2025/report.html", "../../index.html"),
    ):
        html = (base / page).read_text(encoding="utf-8")
        assert f'<a href="{href}">レポート一覧に戻る</a>' in html, page
        assert (base / page).parent.joinpath(href).resolve() == (base / "index.html").resolve()


@pytest.mark.full
def test_a_kernel_that_dies_before_answering_is_started_again(tmp_path, monkeypatch):
    """A kernel that exits at start-up (e.g. its port taken by a kernel starting at the same
    moment) ran no cell: the job starts another instead of failing the year. The kernelspec
    `python3` found first on JUPYTER_PATH dies once, then starts the real kernel."""
    marker = tmp_path / "died-once"
    prelude = f"marker = Path({str(marker)!r})\nif not marker.exists():\n    marker.write_text('x')\n    sys.exit(1)\n"
    python_kernelspec(tmp_path, prelude, "Python 3 (flaky)")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    project = make_project_copy(tmp_path / "p")
    proc = run_cli(project, "run", "--dataset", "sample", "--years", "2025", "--jobs", "1", "--no-progress", "--no-pdf")
    assert marker.exists(), "the flaky kernelspec was not used"
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "失敗" not in proc.stdout
    assert (project / "reports" / "sample" / "FY2025" / "report.html").is_file()
