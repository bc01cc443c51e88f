"""Shared fixtures: the codebook, the bundled sample, and throw-away copies of the project."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def book():
    from analysis.codebook import load_codebook

    return load_codebook(ROOT / "data" / "codebook" / "survey.yaml")


@pytest.fixture(scope="session")
def sample():
    from analysis.datasets import load_dataset

    return load_dataset("sample")


def make_project_copy(dest: Path) -> Path:
    """A minimal copy of the project (data, notebooks, pyproject) to run the CLI against.

    The package itself is imported from the installed (editable) source; ANALYSIS_ROOT points
    the data and reports at the copy, so tests never touch the repository's reports/.
    """
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "data", dest / "data", ignore=shutil.ignore_patterns("processed"))
    shutil.copytree(ROOT / "notebooks", dest / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(ROOT / "docs", dest / "docs")
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def python_kernelspec(tmp_path: Path, prelude: str, display_name: str) -> Path:
    """A `python3` kernelspec under tmp_path/jupyter (put it first on JUPYTER_PATH) whose kernel
    runs `prelude` (Python source) and then is ipykernel. Returns the JUPYTER_PATH folder."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    launcher = spec / "wrapped_kernel.py"
    launcher.write_text(
        "import os, runpy, sys\nfrom pathlib import Path\n"
        + prelude
        + "sys.argv = ['ipykernel_launcher', *sys.argv[1:]]\n"
        "runpy.run_module('ipykernel_launcher', run_name='__main__')\n",
        encoding="utf-8",
    )
    argv = [sys.executable, str(launcher), "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": display_name, "language": "python"}), encoding="utf-8"
    )
    return tmp_path / "jupyter"


def kernels_started(starts: Path, project: Path, before: int = 0, dataset: str = "sample") -> int:
    """Kernels a run started (lines the counting kernelspec added to `starts` since `before`),
    less the ones that died at start and were replaced: on a loaded machine the runner rightly
    starts another, and says so in the job's kernel log (kernels.KERNEL_REPLACED_NOTE)."""
    from analysis.kernels import KERNEL_REPLACED_NOTE

    n = len(starts.read_text().split()) if starts.exists() else 0
    logs = project / "reports" / dataset / ".logs"
    replaced = sum(p.read_text(encoding="utf-8", errors="replace").count(KERNEL_REPLACED_NOTE) for p in logs.glob("*"))
    return n - before - replaced


def run_cli(project: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANALYSIS_ROOT": str(project)}
    return subprocess.run(
        [sys.executable, "-m", "analysis", *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )


SAMPLE_RUN_ARGS = ("run", "--dataset", "sample", "--years", "2021-2025", "--jobs", "2", "--no-progress")


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory, worker_id):
    """One full CLI run on a copy of the sample: (project path, completed process). Read only.

    Made once per test session, also under pytest-xdist: the first worker to ask runs it in the
    folder the workers' temporary folders share (under a file lock: pytest-xdist's documented
    pattern); the others wait for it and read the same project. A test that runs again there or
    changes a file takes `sample_run_copy` instead.
    """
    if worker_id == "master":  # not under xdist
        project = make_project_copy(tmp_path_factory.mktemp("sample_run") / "project")
        return project, run_cli(project, *SAMPLE_RUN_ARGS)
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / "sample_run"
    project, result = shared / "project", shared / "result.json"
    with FileLock(str(shared) + ".lock"):
        if not result.is_file():
            shutil.rmtree(project, ignore_errors=True)  # what a worker that failed here left
            proc = run_cli(make_project_copy(project), *SAMPLE_RUN_ARGS)
            fields = {"args": proc.args, "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
            result.write_text(json.dumps(fields), encoding="utf-8")
    return project, subprocess.CompletedProcess(**json.loads(result.read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def national_by_prefecture(tmp_path_factory, worker_id) -> Path:
    """`data/raw/` of a project after `sample --national --by-prefecture` (the 47 prefecture
    datasets national_pref01..47 and national-synthetic). Read only: copy what you need.

    Generated once per session and shared by the xdist workers, as `sample_run` is.
    """

    def generate(project: Path) -> Path:
        gen = run_cli(make_project_copy(project), "sample", "--national", "--by-prefecture")
        assert gen.returncode == 0, gen.stderr[-2000:]
        return project / "data" / "raw"

    if worker_id == "master":
        return generate(tmp_path_factory.mktemp("national_by_prefecture") / "project")
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / "national_by_prefecture"
    done = shared / "done"
    with FileLock(str(shared) + ".lock"):
        if not done.is_file():
            shutil.rmtree(shared / "project", ignore_errors=True)
            generate(shared / "project")
            done.write_text("ok", encoding="utf-8")
    return shared / "project" / "data" / "raw"


def add_sample_subset(project: Path, name: str, years: tuple[int, ...]) -> None:
    """A dataset `name` in `project`: the sample's municipalities and its surveys of `years` only.

    Cheaper than the national data for tests of how several datasets run (no generation step).
    """
    import yaml

    src, dst = project / "data" / "raw" / "sample", project / "data" / "raw" / name
    dst.mkdir()
    meta = yaml.safe_load((src / "dataset.yaml").read_text(encoding="utf-8"))
    meta.update(name=name, surveys={y: f"survey_FY{y}.xlsx" for y in years})
    (dst / "dataset.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    for file in ("municipalities.csv", *(f"survey_FY{y}.xlsx" for y in years)):
        shutil.copy2(src / file, dst / file)


def add_prefectures(project: Path, raw: Path, names: list[str]) -> None:
    """Copy the prefecture datasets `names` from `national_by_prefecture`'s `raw` into `project`."""
    for name in names:
        shutil.copytree(raw / name, project / "data" / "raw" / name)


@pytest.fixture()
def sample_run_copy(sample_run, tmp_path):
    """`sample_run` in a folder of this test's own (a copy, file times kept): for a test that changes it."""
    project, proc = sample_run
    copy = tmp_path / "project"
    shutil.copytree(project, copy, symlinks=True)
    return copy, proc


@pytest.fixture(scope="module")
def chromium_browser():
    """A headless system chromium for the browser tests of one module (tests/browser_support.py).

    Module scope, not session: Playwright's sync API cannot start while another instance runs in
    the same thread, and code under test (analysis.pdf.Printer) starts its own.
    """
    from browser_support import CHROMIUM, ENABLE_HINT

    from analysis.pdf import LAUNCH_ARGS  # the pipeline's own flags: tests render as it prints

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found; to enable the browser tests, {ENABLE_HINT}")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
