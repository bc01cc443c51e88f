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


def failure_lines(stdout: str) -> dict[str, str]:
    """{'FY2025': line, ...} from the summary's 「失敗 / failed: <notebook> <name>: reason」 lines."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("失敗 / failed: "):
            label = line[len("失敗 / failed: ") :].split(":", 1)[0]
            out[label.split()[-1]] = line
    return out


def once_per_session(tmp_path_factory, worker_id: str, name: str, make) -> tuple[Path, object]:
    """`make(project)` once per test session, also under pytest-xdist: (project, what it returned).

    The first worker to ask makes it in the folder the workers' temporary folders share (under a
    file lock: pytest-xdist's documented pattern); the others wait for it and read the same
    project. What `make` returns is kept as JSON, so every worker gets the same plain values.
    """
    if worker_id == "master":  # not under xdist
        project = tmp_path_factory.mktemp(name) / "project"
        return project, json.loads(json.dumps(make(project)))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / name
    project, result = shared / "project", shared / "result.json"
    with FileLock(str(shared) + ".lock"):
        if not result.is_file():
            shutil.rmtree(project, ignore_errors=True)  # what a worker that failed here left
            result.write_text(json.dumps(make(project)), encoding="utf-8")
    return project, json.loads(result.read_text(encoding="utf-8"))


def _process_fields(proc: subprocess.CompletedProcess) -> dict:
    return {"args": proc.args, "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory, worker_id):
    """One full CLI run on a copy of the sample: (project path, completed process). Read only.

    Made once per test session and shared by the xdist workers (`once_per_session`). A test that
    runs again there or changes a file takes `sample_run_copy` instead.
    """

    def make(project: Path) -> dict:
        return _process_fields(run_cli(make_project_copy(project), *SAMPLE_RUN_ARGS))

    project, fields = once_per_session(tmp_path_factory, worker_id, "sample_run", make)
    return project, subprocess.CompletedProcess(**fields)


@pytest.fixture(scope="session")
def national_by_prefecture(tmp_path_factory, worker_id) -> Path:
    """`data/raw/` of a project after `sample --national --by-prefecture` (the 47 prefecture
    datasets national_pref01..47 and national-synthetic). Read only: copy what you need.

    Generated once per session and shared by the xdist workers, as `sample_run` is.
    """

    def generate(project: Path) -> str:
        gen = run_cli(make_project_copy(project), "sample", "--national", "--by-prefecture")
        assert gen.returncode == 0, gen.stderr[-2000:]
        return "ok"

    project, _ = once_per_session(tmp_path_factory, worker_id, "national_by_prefecture", generate)
    return project / "data" / "raw"


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
    """`sample_run` in a folder of this test's own: for a test that changes it."""
    return copy_of_sample_run(sample_run, tmp_path / "project"), sample_run[1]


def copy_of_sample_run(sample_run, dest: Path) -> Path:
    """A copy of `sample_run`'s project at `dest`, file times kept (so its reports stay up to date)."""
    shutil.copytree(sample_run[0], dest, symlinks=True)
    return dest


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


# --- one dataset with hostile values, shared by test_escaping and test_spreadsheet_safety ---------

HOSTILE_SCRIPT = "<script>alert(1)</script>"  # appended to a municipality name (HTML escaping)
HOSTILE_IMG = "<img src=x onerror=alert(2)>"  # in a 備考 (notes) cell
HOSTILE_BOLD = "<b>x</b>"  # in the dataset's label_ja
HOSTILE_NOTE_MARK = "備考XSSNOTE"  # shows whether (and where) the notes column is rendered at all
# what a hostile or careless survey file could hold (spreadsheet formula injection)
HOSTILE_FORMULA_NAMES = ['=HYPERLINK("http://example.invalid/","青葉市")', "+1+1町", "-2+3村", "@SUM(1,1)市"]
HOSTILE_FORMULA_NOTE = "=cmd|' /C calc'!A0"
HOSTILE_HTML_ROW = 4  # the survey row (0 = first data row) whose municipality gets the markup


def make_hostile_dataset(project: Path) -> dict:
    """data/raw/hostile: the sample's FY2024-2025 with hostile values where a user writes them.

    * formula-like names for the master's first municipalities (HOSTILE_FORMULA_NAMES), and
      HOSTILE_FORMULA_NOTE in the 備考 cell of the first three survey rows of both years;
    * HTML markup: HOSTILE_SCRIPT after the name of the municipality of survey row
      HOSTILE_HTML_ROW (the reports take names from the master, the survey rows match it by
      code), NOTE_MARK + HOSTILE_IMG in that row's FY2025 備考 cell, and HOSTILE_BOLD in label_ja.

    The two kinds are in different rows, so neither hides the other. Returns the HTML values
    injected: code, name, note, label.
    """
    import csv
    import io

    import yaml
    from openpyxl import load_workbook

    src, dst = project / "data" / "raw" / "sample", project / "data" / "raw" / "hostile"
    add_sample_subset(project, "hostile", (2024, 2025))  # then its master, surveys and label are rewritten
    html_code = html_note = None
    formula_codes = []
    for year in (2024, 2025):
        wb = load_workbook(src / f"survey_FY{year}.xlsx")
        ws = wb.worksheets[-1]
        header = next(r for r in range(1, 10) if ws.cell(row=r, column=1).value == "市町村コード")
        note_col = next(c.column for c in ws[header] if c.value == "備考")
        assert note_col == ws.max_column, "the survey layout changed: 備考 is not the last column"
        formula_codes.append([str(ws.cell(row=r, column=1).value) for r in range(header + 1, header + 4)])
        for r in range(header + 1, header + 4):
            cell = ws.cell(row=r, column=note_col, value=HOSTILE_FORMULA_NOTE)
            cell.data_type = "s"  # text typed into the survey, not a formula
        if year == 2025:
            row = header + 1 + HOSTILE_HTML_ROW
            html_code = str(ws.cell(row=row, column=1).value)
            html_note = f"{HOSTILE_NOTE_MARK}{HOSTILE_IMG}"
            ws.cell(row=row, column=note_col).value = html_note
        wb.save(dst / f"survey_FY{year}.xlsx")

    master = dst / "municipalities.csv"  # written with the csv module, not the project's writer
    rows = list(csv.DictReader(io.StringIO(master.read_text(encoding="utf-8-sig"))))
    for row, name in zip(rows, HOSTILE_FORMULA_NAMES, strict=False):
        row["name"] = name
    [html_row] = [r for r in rows if r["code"] == html_code]
    assert html_row["name"] not in HOSTILE_FORMULA_NAMES, "the HTML and the formula payloads share a municipality"
    html_name = html_row["name"] = f"{html_row['name']}{HOSTILE_SCRIPT}"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    master.write_text(out.getvalue(), encoding="utf-8-sig")

    meta_path = dst / "dataset.yaml"
    meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    assert meta["synthetic"] is True
    meta["label_ja"] = label = f"架空県{HOSTILE_BOLD}（サンプル・架空データ）"
    meta_path.write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    return {"code": html_code, "name": html_name, "note": html_note, "label": label}


HOSTILE_RUN_ARGS = ("run", "--dataset", "hostile", "--jobs", "1", "--no-progress", "--no-pdf")


@pytest.fixture(scope="session")
def hostile_run(tmp_path_factory, worker_id):
    """One CLI run on a project copy with `make_hostile_dataset`: (project, completed process,
    the HTML values injected). Read only. Made once per session, shared by xdist workers as
    `sample_run` is."""

    def make(project: Path) -> dict:
        values = make_hostile_dataset(make_project_copy(project))
        return {"proc": _process_fields(run_cli(project, *HOSTILE_RUN_ARGS)), "values": values}

    project, saved = once_per_session(tmp_path_factory, worker_id, "hostile_run", make)
    return project, subprocess.CompletedProcess(**saved["proc"]), saved["values"]


def pytest_collection_modifyitems(config, items):
    """Longest test files first (tests/file_costs.json, from benchmarks/suite.py --save-costs).

    pytest-xdist (`--dist loadfile --no-loadscope-reorder`, the Makefile) hands files to the
    workers in this order: with the long ones first, the last files taken are short, so neither
    worker waits long for the other at the end. `make test`'s seconds order a run that leaves out
    the long forms (-m '... not full'), the whole suite's any other (`make full`). A file not listed comes
    after the listed ones; the tests of a file keep their order.
    """
    costs_file = Path(__file__).parent / "file_costs.json"
    if not costs_file.is_file():
        return
    tiers = json.loads(costs_file.read_text(encoding="utf-8"))["wall_seconds"]
    seconds = tiers.get("test" if "not full" in (config.getoption("markexpr") or "") else "all", {})
    items.sort(key=lambda item: -seconds.get(item.nodeid.split("::")[0], 0.0))
