"""Pipeline benchmark (on demand; not part of the test suite): the issue-14 figures in one run.

One run measures, each in a fresh copy of the project (sample figures: median of --repeat runs):
  (a) naive: `papermill` CLI + `jupyter nbconvert --to html --no-input` per notebook, sequential,
      over the sample's 11 notebooks (5 fiscal-year, 1 trends, 5 data-quality),
  (b) `python -m analysis run --jobs 2 --force`, cold,
  (c) the same `run` again, warm (nothing changed),
  (d) `run --jobs 2` cold on the national synthetic dataset (1,741 municipalities),
  (e) `run --jobs 2` cold on the national synthetic data at --scale times that size (default 10,
      17,410 municipalities; skipped with --quick),
  (f) the one-process floor: the same 11 reports' tables, figures and files computed in one plain
      Python process (benchmarks/floor.py's measure_floor when present, else the fallback here),
  (g) `run --jobs 2 --force --no-pdf`, cold: HTML reports, profiles and index without printing,
      the like-for-like of (a), which prints nothing either,
  (h) one more `run --jobs 2 --force` with its process tree polled: CPU seconds per kind of process
      (main, workers, kernels, chromium, Playwright's driver, short-lived processes),
and prints wall and CPU seconds (CPU of the whole process tree: kernels, workers and chromium
included, also processes orphaned by their parent: this process is a child subreaper and reaps
them; any still running when its command returned is listed),
the peak resident memory of a notebook kernel (manifests' peak_kernel_rss_mb) and the ratios of
the issue: pipeline CPU / floor CPU, run --jobs 2 wall / floor wall, warm / cold, 10× / national
time, peak kernel MB at 10×.

    .venv/bin/python benchmarks/pipeline.py                # --repeat 3, with the 10× run
    .venv/bin/python benchmarks/pipeline.py --quick        # smoke run: --repeat 1, no 10× run
    .venv/bin/python benchmarks/pipeline.py --markdown     # also print the README table
    .venv/bin/python benchmarks/pipeline.py --only scale --generated /tmp/gen   # just (d) and (e)

The national and 10× datasets are generated once per run (`python -m analysis sample --national
[--scale K]`, about 20 s and 3 min); --generated DIR keeps them in DIR for the next run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
YEARS = [2021, 2022, 2023, 2024, 2025]
NATIONAL = "national-synthetic"
#: the sample's 11 notebooks as (notebook, output name, fiscal year or None)
JOBS = (
    [("fiscal_year_report", f"FY{y}", y) for y in YEARS]
    + [("trends", "trends", None)]
    + [("data_quality", f"quality-FY{y}", y) for y in YEARS]
)


def scaled_name(scale: int) -> str:
    return NATIONAL if scale == 1 else f"{NATIONAL}-x{scale}"


def fresh_copy(base: Path, name: str) -> Path:
    """A minimal project copy (data without generated national data, notebooks, docs, pyproject)."""
    dest = base / name
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("national-synthetic*", "national_pref*", "processed")
    shutil.copytree(ROOT / "data", dest / "data", ignore=ignore)
    shutil.copytree(ROOT / "notebooks", dest / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(ROOT / "docs", dest / "docs")
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


#: processes of a measured command found still running after it returned (target 5: none)
OUTLIVED: list[str] = []


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux prctl PR_SET_CHILD_SUBREAPER).

    Without it, a process whose parent ends before reaping it (chromium's renderers and print
    compositors when the browser is closed) goes to init, and its CPU time never reaches
    RUSAGE_CHILDREN: measured 2026-12-01, `run --jobs 2 --force` 21.7 CPU-s counted, 28.6 with.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _orphans() -> list[tuple[int, str, str]]:
    """(pid, state, command) of this process's children: after a command returned, its orphans."""
    me, found = os.getpid(), []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            if int(ppid) == me:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                found.append((int(d.name), state, cmd))
        except (OSError, ValueError):
            continue
    return found


def reap_orphans(label: str, grace: float = 1.0, timeout: float = 10.0) -> None:
    """Reap what the command left (its CPU then counts); name any process still running after `grace` s.

    A process that is exiting when the command returns (multiprocessing's resource tracker ends
    a few milliseconds after its parent) is not counted as having outlived the run.
    """
    t0 = time.monotonic()
    named: set[int] = set()
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            continue
        waited = time.monotonic() - t0
        if waited > grace and not named:
            for p, state, cmd in _orphans():
                if state != "Z":
                    named.add(p)
                    OUTLIVED.append(
                        f"{label}: pid {p} still running {grace:.0f} s after the command returned: {cmd[:120]}"
                    )
        if waited > timeout:
            for p in named:
                with contextlib.suppress(OSError):
                    os.kill(p, signal.SIGKILL)
            timeout = float("inf")
        time.sleep(0.01)


def measured(cmd: list[str], project: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one command; CPU = user + system of it and every descendant, orphans included.

    Wall ends when the command returns; its orphans are reaped afterwards (see become_subreaper),
    so their CPU counts, and any still running is recorded in OUTLIVED.
    """
    env = {**os.environ, "ANALYSIS_ROOT": str(project)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    reap_orphans(" ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd[:6])))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def naive_pipeline(project: Path) -> tuple[float, float]:
    """(a): papermill CLI then `jupyter nbconvert --to html --no-input`, one notebook at a time."""
    papermill = str(Path(sys.executable).with_name("papermill"))
    jupyter = str(Path(sys.executable).with_name("jupyter"))
    wall = cpu = 0.0
    for notebook, name, year in JOBS:
        d = project / "naive" / name
        d.mkdir(parents=True, exist_ok=True)
        params = ["-p", "dataset", "sample", "-p", "output_dir", str(d)]
        if year is not None:
            params += ["-p", "fiscal_year", str(year)]
        nb = d / "nb.ipynb"
        for cmd in (
            [papermill, f"notebooks/{notebook}.ipynb", str(nb), "--cwd", "notebooks", *params, "--no-progress-bar"],
            [jupyter, "nbconvert", "--to", "html", "--no-input", str(nb), "--output", "report.html"],
        ):
            w, c = measured(cmd, project)
            wall, cpu = wall + w, cpu + c
    return wall, cpu


ROLES = ("main", "workers", "kernels", "chromium", "playwright driver", "other", "unattributed")


def _role(pid: int, main_pid: int, cmd: str) -> str:
    if pid == main_pid:
        return "main"
    if "multiprocessing.spawn" in cmd:
        return "workers"
    if "ipykernel" in cmd:
        return "kernels"
    if "chrom" in cmd:
        return "chromium"
    if "playwright" in cmd or "/node" in cmd.split(" ", 1)[0]:
        return "playwright driver"
    return "other"


def cpu_by_role(cmd: list[str], project: Path, interval: float = 0.05) -> dict:
    """(h): where one command's CPU goes: its process tree polled every `interval` s (psutil).

    Each process's last reading counts. Processes that live shorter than a poll (chromium's print
    compositor, one per PDF) are "unattributed": the rusage total minus the polled sum. Polling
    costs CPU of its own (not counted) and slows the run a little: a separate run, not (b).
    """
    import psutil

    env = {**os.environ, "ANALYSIS_ROOT": str(project)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root, last = psutil.Process(proc.pid), {}
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            for q in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = q.cpu_times()
                    last[q.pid] = (_role(q.pid, proc.pid, " ".join(q.cmdline())), t.user + t.system)
        time.sleep(interval)
    wall = time.perf_counter() - t0
    reap_orphans("(h)")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = dict.fromkeys(ROLES, 0.0)
    for role, cpu in last.values():
        out[role] += cpu
    out["unattributed"] = max(0.0, total - sum(out.values()))
    return {"wall": wall, "cpu": total, "roles": out, "processes": len(last)}


def run_cmd(dataset: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "analysis", "run", "--dataset", dataset, "--no-progress", *extra]


def peak_kernel_mb(project: Path, dataset: str) -> float:
    """The largest peak_kernel_rss_mb of the dataset's manifests (the runner records it per job)."""
    peaks = [
        json.loads(p.read_text(encoding="utf-8")).get("peak_kernel_rss_mb", 0)
        for p in (project / "reports" / dataset).rglob("manifest.json")
    ]
    return max(peaks) if peaks else float("nan")


# --- the one-process floor ------------------------------------------------------------------------

_FLOOR_SCRIPT = r"""
import json, sys, time
from pathlib import Path
from analysis import report
from analysis.datasets import load_dataset

dataset, out = sys.argv[1], Path(sys.argv[2])
years = load_dataset(dataset).years
per = {}
def timed(name, make):
    t0 = time.perf_counter()
    make().save(out / name)
    per[name] = round(time.perf_counter() - t0, 3)
for y in years:
    timed(f"FY{y}", lambda: report.fiscal_year_report(dataset, y))
timed("trends", lambda: report.trends_report(dataset))
for y in years:
    timed(f"quality/FY{y}", lambda: report.quality_report(dataset, y))
print(json.dumps(per))
"""


def _fallback_measure_floor(root: Path, dataset: str = "sample") -> dict:
    """The same reports' tables, figures and files in one plain Python process (no kernels, no HTML).

    Returns {"wall", "cpu", "per_report"}: the process's wall and CPU seconds (imports included)
    and each report's wall seconds. Stand-in until benchmarks/floor.py (same name and signature).
    """
    out = Path(tempfile.mkdtemp(prefix="floor-"))
    env = {**os.environ, "ANALYSIS_ROOT": str(root)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _FLOOR_SCRIPT, dataset, str(out)], cwd=root, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    shutil.rmtree(out, ignore_errors=True)
    if proc.returncode != 0:
        sys.exit(f"floor failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "per_report": json.loads(proc.stdout.strip().splitlines()[-1])}


def floor_function() -> Callable[..., dict]:
    """benchmarks/floor.py's measure_floor in a fresh process each time, else the fallback above.

    A fresh process per measurement: in this one, a second measure_floor would find the
    scientific stack imported and the per-process caches (survey files, exact intervals) warm.
    """
    floor_py = Path(__file__).resolve().parent / "floor.py"
    if not floor_py.is_file():
        return _fallback_measure_floor

    def measure(root: Path, dataset: str = "sample") -> dict:
        with tempfile.TemporaryDirectory(prefix="floor-json-") as tmp:
            out = Path(tmp) / "floor.json"
            cmd = [sys.executable, str(floor_py), "--root", str(root), "--dataset", dataset, "--json", str(out)]
            proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"floor failed:\n{proc.stderr[-3000:]}")
            return json.loads(out.read_text(encoding="utf-8"))

    return measure


# --- generated datasets ---------------------------------------------------------------------------


def generated(cache: Path, scale: int) -> Path:
    """data/raw/<national-synthetic[-xK]> generated once into `cache` (reused when already there)."""
    name = scaled_name(scale)
    target = cache / name
    if (target / "dataset.yaml").is_file():
        return target
    src = fresh_copy(cache / "_project", "p")
    extra = ["--scale", str(scale)] if scale > 1 else []
    measured([sys.executable, "-m", "analysis", "sample", "--national", *extra], src)
    shutil.move(str(src / "data" / "raw" / name), target)
    shutil.rmtree(cache / "_project", ignore_errors=True)
    return target


def national_run(base: Path, cache: Path, scale: int, tag: str) -> dict:
    """(d) or (e): `run --jobs 2` cold on the national synthetic data at `scale`."""
    name = scaled_name(scale)
    p = fresh_copy(base, tag)
    shutil.copytree(generated(cache, scale), p / "data" / "raw" / name)
    wall, cpu = measured(run_cmd(name, "--jobs", "2"), p)
    out = {"wall": wall, "cpu": cpu, "peak_mb": peak_kernel_mb(p, name), "n": 1741 * scale}
    shutil.rmtree(p, ignore_errors=True)
    return out


# --- machine and report ---------------------------------------------------------------------------


def machine() -> dict:
    cpu_model = platform.processor() or platform.machine()
    ram_gb = float("nan")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = int(line.split()[1]) / 2**20
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu_model, "ram_gb": ram_gb, "python": platform.python_version()}


def ratios(r: dict) -> list[tuple[str, float, str]]:
    """(name, value, target) of the issue's ratios, for whatever was measured."""
    out = []
    if "b" in r and "f" in r:
        out.append(("pipeline CPU / floor CPU: (b) CPU / (f) CPU", r["b"]["cpu"] / r["f"]["cpu"], "≤ 1.3"))
        out.append(("run --jobs 2 wall / floor wall: (b) / (f)", r["b"]["wall"] / r["f"]["wall"], "≤ 0.75"))
    if "g" in r and "f" in r:
        out.append(("without PDFs, CPU / floor CPU: (g) / (f)", r["g"]["cpu"] / r["f"]["cpu"], "≤ 1.3"))
        out.append(("without PDFs, wall / floor wall: (g) / (f)", r["g"]["wall"] / r["f"]["wall"], "≤ 0.75"))
    if "a" in r and "f" in r:
        out.append(("naive CPU / floor CPU: (a) / (f)", r["a"]["cpu"] / r["f"]["cpu"], "—"))
    if "b" in r and "c" in r:
        out.append(("warm / cold wall: (c) / (b)", r["c"]["wall"] / r["b"]["wall"], "—"))
    if "d" in r and "e" in r:
        k = r["e"]["n"] / r["d"]["n"]
        out.append((f"{k:.0f}× / national wall: (e) / (d)", r["e"]["wall"] / r["d"]["wall"], f"≤ {k:.0f}"))
        out.append((f"{k:.0f}× / national CPU: (e) / (d)", r["e"]["cpu"] / r["d"]["cpu"], f"≤ {k:.0f}"))
    if "e" in r:
        out.append((f"peak kernel MB at {r['e']['n']:,} municipalities", r["e"]["peak_mb"], "≤ 500"))
    return out


LABELS = {
    "a": "(a) naive: papermill CLI + `jupyter nbconvert --to html --no-input`, sequential",
    "b": "(b) `run --jobs 2 --force`, cold",
    "c": "(c) `run`, warm (nothing changed)",
    "d": "(d) `run --jobs 2`, national (1,741 municipalities), cold",
    "e": "(e) `run --jobs 2`, {n:,} municipalities, cold",
    "f": "(f) floor: the same 11 reports in one plain Python process",
    "g": "(g) `run --jobs 2 --force --no-pdf`, cold (HTML only, like (a))",
}


def markdown(r: dict, repeat: int) -> str:
    m = machine()
    lines = [
        f"Measured on {_dt.date.today().isoformat()} with `benchmarks/pipeline.py --repeat {repeat}` "
        f"(sample rows: medians of {repeat}; national and scaled runs: one each) on {m['nproc']} cores "
        f"({m['cpu']}), {m['ram_gb']:.1f} GB RAM, Python {m['python']}:",
        "",
        "| way | wall s | CPU s | peak kernel MB |",
        "|---|---|---|---|",
    ]
    for key in "abcdefg":
        if key in r:
            x = r[key]
            peak = f"{x['peak_mb']:.0f}" if "peak_mb" in x else "—"
            lines.append(f"| {LABELS[key].format(n=x.get('n', 0))} | {x['wall']:.1f} | {x['cpu']:.1f} | {peak} |")
    lines += ["", "| ratio | value | target |", "|---|---|---|"]
    for name, value, target in ratios(r):
        lines.append(f"| {name} | {value:.2f} | {target} |")
    if "h" in r:
        lines += ["", breakdown(r["h"])]
    lines += ["", f"Processes still running when their command returned: {len(OUTLIVED)}."]
    return "\n".join(lines)


def breakdown(h: dict) -> str:
    """The (h) table: CPU seconds per kind of process of one `run --jobs 2 --force`."""
    lines = [
        f"(h) where the CPU of `run --jobs 2 --force` goes (one more run, polled every 0.05 s: "
        f"{h['wall']:.1f} s wall, {h['cpu']:.1f} CPU s, {h['processes']} processes seen):",
        "",
        "| process | CPU s | share |",
        "|---|---|---|",
    ]
    for role, cpu in h["roles"].items():
        lines.append(f"| {role} | {cpu:.1f} | {cpu / h['cpu']:.0%} |")
    return "\n".join(lines)


def median_of(runs: list[dict]) -> dict:
    return {k: statistics.median(x[k] for x in runs) for k in runs[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs of (a), (b), (c), (f) (medians); default 3")
    ap.add_argument("--quick", action="store_true", help="smoke run: --repeat 1 and no scaled run")
    ap.add_argument("--scale", type=int, default=10, help="size of (e) in national sizes (default 10)")
    ap.add_argument(
        "--only", choices=("sample", "scale"), default=None, help="sample: (a)(b)(c)(f)(g) only; scale: (d)(e) only"
    )
    ap.add_argument("--generated", type=Path, default=None, help="keep/reuse the generated national data here")
    ap.add_argument("--markdown", action="store_true", help="also print the README table (date, machine)")
    ap.add_argument("--json", type=Path, default=None, help="write the raw figures here")
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    if not become_subreaper():
        print("note: not a child subreaper here: CPU of processes orphaned by a run is not counted", file=sys.stderr)
    base = Path(tempfile.mkdtemp(prefix="bench-"))
    cache = args.generated or base / "generated"
    cache.mkdir(parents=True, exist_ok=True)
    r: dict = {}
    try:
        if args.only != "scale":
            floor = floor_function()
            runs: dict[str, list[dict]] = {k: [] for k in "abcfg"}
            for i in range(repeat):
                p = fresh_copy(base, f"a{i}")
                w, c = naive_pipeline(p)
                runs["a"].append({"wall": w, "cpu": c})
                p = fresh_copy(base, f"b{i}")
                w, c = measured(run_cmd("sample", "--jobs", "2", "--force"), p)
                runs["b"].append({"wall": w, "cpu": c, "peak_mb": peak_kernel_mb(p, "sample")})
                w, c = measured(run_cmd("sample", "--jobs", "2"), p)
                runs["c"].append({"wall": w, "cpu": c})
                p = fresh_copy(base, f"g{i}")
                w, c = measured(run_cmd("sample", "--jobs", "2", "--force", "--no-pdf"), p)
                runs["g"].append({"wall": w, "cpu": c})
                p = fresh_copy(base, f"f{i}")
                fl = floor(p, "sample")
                runs["f"].append({"wall": fl["wall"], "cpu": fl["cpu"]})
                print(
                    f"run {i + 1}/{repeat}: "
                    + "  ".join(f"{k}={v[-1]['wall']:.1f}s/{v[-1]['cpu']:.1f}cpu" for k, v in runs.items()),
                    flush=True,
                )
            r.update({k: median_of(v) for k, v in runs.items()})
            r["h"] = cpu_by_role(run_cmd("sample", "--jobs", "2", "--force"), fresh_copy(base, "h"))
        if args.only != "sample":
            r["d"] = national_run(base, cache, 1, "d")
            print(f"(d) national: {r['d']['wall']:.1f}s, {r['d']['cpu']:.1f} CPU s, {r['d']['peak_mb']:.0f} MB")
            if not args.quick:
                r["e"] = national_run(base, cache, args.scale, "e")
                print(
                    f"(e) ×{args.scale}: {r['e']['wall']:.1f}s, {r['e']['cpu']:.1f} CPU s, {r['e']['peak_mb']:.0f} MB"
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print()
    for key in "abcdefg":
        if key in r:
            x = r[key]
            peak = f", peak kernel {x['peak_mb']:.0f} MB" if "peak_mb" in x else ""
            print(f"{LABELS[key].format(n=x.get('n', 0))}: {x['wall']:.1f} s wall, {x['cpu']:.1f} s CPU{peak}")
    print()
    for name, value, target in ratios(r):
        print(f"{name} = {value:.2f}   (target {target})")
    if "h" in r:
        print()
        print(breakdown(r["h"]))
    print()
    print(f"processes still running when their command returned: {len(OUTLIVED)}")
    for line in OUTLIVED:
        print("  " + line)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "repeat": repeat, "results": r}, indent=2) + "\n")
    if args.markdown:
        print("\n" + markdown(r, repeat))


if __name__ == "__main__":
    main()
