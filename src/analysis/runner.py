"""papermill orchestration: one process per notebook, staged outputs, manifests, HTML, index.

Each job (a fiscal-year report or the trends report) is executed with papermill's Python API in
a worker process (concurrent.futures with the 'spawn' start method), writing into a staging
folder. A worker keeps one kernel for its notebooks, reset and verified clean between them
(analysis.kernels; `fresh_kernels` or ANALYSIS_FRESH_KERNELS=1: a kernel per notebook), and
exports each notebook's HTML itself. Only a complete, successful folder is swapped in for the old
report, so a failure never leaves a half-written report in place of a good one. A job whose manifest shows the same inputs,
parameters, notebook and package code is skipped unless forced.

Safety: the dataset name is an identifier (no path tricks) and every output stays under
reports/<dataset>/; one run per dataset at a time (flock on reports/<dataset>/.run.lock); stale
staging folders and interrupted swaps are repaired at the start of the next run. Workers die with
the main process (PR_SET_PDEATHSIG) and take their kernels with them (ipykernel's parent poller,
JPY_PARENT_PID); SIGTERM/SIGINT stop the whole process tree. Kernels run under an address-space
limit (RLIMIT_AS). Every failure becomes one line of Japanese and English in the summary and a
small record (.failed/<name>.json) that the index shows until the report next succeeds.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import unicodedata
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .errors import AnalysisError
from .kernels import KERNEL_DIED_AT_START, KERNEL_REPLACED_NOTE
from .paths import project_root
from .processes import RunLocked, alive, descendants, run_lock, set_parent_death_signal, stop_processes

if TYPE_CHECKING:
    from .datasets import Dataset, DatasetError

# analysis.datasets and analysis.export import pandas: they are imported where used, so a worker process
# that only runs notebooks and exports their HTML does not pay for pandas (~0.25 CPU-s per worker).
_LAZY = {"Dataset": "datasets", "DatasetError": "datasets", "load_dataset": "datasets", "sha256": "datasets"}


def __getattr__(name: str) -> Any:
    """The names this module used to import from analysis.datasets, imported on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


NOTEBOOKS = {
    "fiscal_year_report": "notebooks/fiscal_year_report.ipynb",
    "trends": "notebooks/trends.ipynb",
    "data_quality": "notebooks/data_quality.ipynb",
}
KEY_PACKAGES = (
    "pandas",
    "numpy",
    "statsmodels",
    "scipy",
    "firthmodels",
    "matplotlib",
    "seaborn",
    "papermill",
    "nbconvert",
    "openpyxl",
)
#: Default address-space limit of each worker and its kernel (MB); the sample's kernels peak at
#: ~1.4 GB of address space (~0.3 GB resident). 0 or None: no limit.
DEFAULT_MEMORY_LIMIT_MB = 8192


JobKind = Literal["fiscal_year_report", "trends", "data_quality", "site"]  # a NOTEBOOKS key, or "site" (index.html)
JobStatus = Literal["ok", "skipped", "failed"]
ExecutorKind = Literal["local", "dask"]  # run --executor
KERNEL_START_ATTEMPTS = 3  # a kernel that dies before answering is started again, this many times in all
STATUS_JA: dict[str, str] = {"ok": "成功", "skipped": "最新", "failed": "失敗"}
REPORT_KIND_JA: dict[str, str] = {
    "fiscal_year_report": "年度別レポート",
    "trends": "年度横断の推移",
    "data_quality": "データ品質",
    "site": "レポート一覧",
}


@dataclass
class Job:
    dataset: str
    notebook: JobKind
    out_name: str
    fiscal_year: int | None
    parameters: dict

    @property
    def label(self) -> str:
        return f"{self.notebook} {self.out_name}"


@dataclass
class JobResult:
    job: Job
    status: JobStatus
    seconds: float = 0.0
    message: str = ""  # one line; for failures "ja / en（ログ / log: path）"
    report_dir: str = ""
    reason_ja: str = ""
    reason_en: str = ""
    log: str = ""


class RunResults(list):
    """The JobResults of a run (a list), plus warnings that are not a failed report."""

    def __init__(self, items=(), warnings: list[str] | None = None):
        super().__init__(items)
        self.warnings = list(warnings or [])


class RunError(AnalysisError):
    """Bad parameters for a run (ja / en); nothing was executed."""


class OutputError(AnalysisError):
    """An output path that is not allowed, or an output folder that cannot be written."""


class Interrupted(AnalysisError):
    """The run was stopped by a signal; workers and kernels were stopped too."""

    def __init__(self, signum: int, remote: bool = False):
        name = signal.Signals(signum).name
        self.signum = signum
        if remote:  # Dask cannot stop a task that a remote worker is running
            super().__init__(
                f"{name} を受けて中断しました（まだ始まっていないタスクは取り消しました。クラスタのワーカーで実行中の"
                "タスクは最後まで動きますが、できたレポートは完成してから差し替わるため、以前のレポートが途中で"
                "壊れることはありません）",
                f"interrupted by {name}; tasks not yet started were cancelled; tasks already running on the cluster's "
                "workers run to their end, but a report is only swapped in when complete",
            )
            return
        super().__init__(
            f"{name} を受けて中断しました（作業プロセスとカーネルは停止しました。以前のレポートはそのままです）",
            f"interrupted by {name}; workers and kernels were stopped, earlier reports are unchanged",
        )


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _failed(job: Job, ja: str, en: str = "", *, seconds: float = 0.0, log: str = "", report_dir: str = "") -> JobResult:
    ja, en = _one_line(ja), _one_line(en)
    message = f"{ja} / {en}" if en and en != ja else ja
    if log:
        message += f"（ログ / log: {log}）"
    return JobResult(job, "failed", seconds, message, report_dir, ja, en, log)


def validate_dataset_name(name: object) -> str:
    """Return `name` if it is a dataset identifier, else RunError (the rule is datasets.check_name's).

    The runner and the CLI turn the name into folders under reports/, so they check it before
    anything else, with the same rule and message as load_dataset.
    """
    from .datasets import DatasetError, check_name

    try:
        return check_name(name)
    except DatasetError as err:
        raise RunError(err.ja, err.en) from None


def reports_base(root: Path, name: str) -> Path:
    """reports/<name>/ of the project; refused if it resolves outside reports/ (e.g. a symlink)."""
    validate_dataset_name(name)
    reports = root / "reports"
    base = reports / name
    if not base.resolve().is_relative_to(reports.resolve()):
        raise OutputError(
            f"{base} が reports/ の外を指しています（シンボリックリンク）。出力先にできません",
            f"{base} points outside reports/ (symlink); refusing to write there",
        )
    return base


def parse_years(text: str | None, available: list[int]) -> list[int]:
    """'2021-2025', '2023', '2021,2023' or None (all). Years outside the data are an error."""
    if not text:
        return list(available)
    years: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                if a > b:
                    raise ValueError
                years.extend(range(a, b + 1))
            else:
                years.append(int(part))
    except ValueError:
        raise RunError(
            f"年度の指定『{text}』を解釈できません（例: 2021-2025, 2025）",
            f"cannot parse years {text!r} (e.g. 2021-2025)",
        ) from None
    outside = [y for y in years if y not in available]
    if outside:
        raise RunError(
            f"データにない年度です: {', '.join(map(str, outside))}（利用できる年度: {', '.join(map(str, available))}）",
            f"fiscal years outside the data: {outside} (available: {available})",
        )
    return sorted(set(years))


def plan(ds: Dataset, years: list[int], exposure_lag: int = 0) -> list[Job]:
    jobs = [
        Job(
            ds.name,
            "fiscal_year_report",
            f"FY{y}",
            y,
            {"dataset": ds.name, "fiscal_year": y, "exposure_lag": exposure_lag},
        )
        for y in years
    ]
    jobs.append(Job(ds.name, "trends", "trends", None, {"dataset": ds.name}))
    jobs += [Job(ds.name, "data_quality", f"quality/FY{y}", y, {"dataset": ds.name, "fiscal_year": y}) for y in years]
    return jobs


def code_hash(pkg: Path | None = None) -> str:
    """Hash of the package's source and templates (anything that can change a report)."""
    h = hashlib.sha256()
    pkg = pkg or Path(__file__).resolve().parent
    for p in sorted(pkg.rglob("*")):
        if (
            p.is_file()
            and "__pycache__" not in p.parts
            and p.suffix in (".py", ".tpl", ".j2", ".css", ".json", ".yaml", ".html")
        ):
            h.update(str(p.relative_to(pkg)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def job_inputs(job: Job, ds: Dataset, root: Path) -> dict[str, str]:
    from .datasets import sha256

    if job.fiscal_year is None:
        years = ds.years
    elif job.notebook == "fiscal_year_report":
        years = ds.report_years(job.fiscal_year, job.parameters.get("exposure_lag", 0))
    else:
        years = [job.fiscal_year]
    files = [
        *ds.input_files(years),
        *sorted((root / "data" / "codebook").glob("*.yaml")),
        root / "data" / "external" / "national_jusou_counts.csv",
        root / NOTEBOOKS[job.notebook],
    ]
    return {str(p.relative_to(root)): sha256(p) if p.is_file() else "missing" for p in files}


def fingerprint(job: Job, ds: Dataset, root: Path, code: str) -> dict:
    return {"parameters": job.parameters, "inputs": job_inputs(job, ds, root), "code_hash": code}


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in KEY_PACKAGES:
        with suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def is_up_to_date(report_dir: Path, fp: dict) -> bool:
    manifest = report_dir / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        old = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return old.get("status") == "ok" and all(old.get(k) == v for k, v in fp.items())


def _swap_in(staging: Path, final: Path) -> None:
    """Replace `final` by `staging`; the old folder is removed only after the new one is in place."""
    old = None
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def restore_interrupted(base: Path) -> list[Path]:
    """Put back a report folder whose replacement was interrupted between _swap_in's two renames.

    If FY2025/ is missing but .old-FY2025-<pid>/ exists, the old report is still complete: move it
    back, so a crash at the worst moment still loses nothing.
    """
    restored: list[Path] = []
    if not base.is_dir():
        return restored
    for old in sorted(base.rglob(".old-*")):
        name = old.name[len(".old-") :].rsplit("-", 1)[0]
        final = old.with_name(name)
        if old.is_dir() and not final.exists():
            os.replace(old, final)
            restored.append(final)
        elif old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return restored


def repair(base: Path) -> list[str]:
    """Remove staging folders left by a killed run and undo interrupted swaps; return warnings.

    Call only while holding the run lock: then no other run can be using .staging/.
    """
    try:
        staging = base / ".staging"
        if staging.is_dir():
            shutil.rmtree(staging)
        restore_interrupted(base)
    except OSError as exc:
        ja, en = _os_error_text(exc)
        return [
            f"前回の実行の作業フォルダを片付けられませんでした: {ja} / could not clean up after an earlier run: {en}"
        ]
    return []


# ---------------------------------------------------------------------------
# workers: die with the main process, take their kernels along
# ---------------------------------------------------------------------------


def _worker_stop(signum, frame) -> None:
    """SIGTERM in a worker (from the main process, or because it died): stop the kernels, exit."""
    stop_processes(descendants(os.getpid()), grace=2.0)
    os._exit(128 + signum)


_REUSE_KERNELS = False  # in a worker: run its notebooks on one kept kernel (analysis.kernels)


def _worker_init(parent_pid: int, memory_limit_mb: int | None, reuse_kernels: bool = False) -> None:
    """Set up a worker process: die with the main process, take the kernels along, bound memory."""
    global _REUSE_KERNELS
    _REUSE_KERNELS = reuse_kernels
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    signal.signal(signal.SIGTERM, _worker_stop)
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:  # the main process died before the line above
        os._exit(1)
    # ipykernel polls its parent and exits when it is gone (jupyter_client sets this only on Windows)
    os.environ["JPY_PARENT_PID"] = str(os.getpid())
    if memory_limit_mb:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = int(memory_limit_mb) * 1024 * 1024
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))  # inherited by the kernels


@contextmanager
def _interrupt_on_signals() -> Iterator[None]:
    """In the main thread, turn SIGTERM and SIGINT into Interrupted, so cleanup code runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        for sig in previous:  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        raise Interrupted(signum)

    previous: dict = {}

    previous.update({sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)})
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------------
# one job, in a worker process
# ---------------------------------------------------------------------------


_KERNEL_PROCESSES: list = []  # Popen objects of the kernels this worker started (latest last)


def _tracking_kernel_manager() -> type:
    """AsyncKernelManager that remembers its kernel process, so a dead kernel's signal can be named."""
    from jupyter_client import AsyncKernelManager

    if not hasattr(AsyncKernelManager, "_async_launch_kernel"):  # another jupyter_client: no detail
        return AsyncKernelManager

    class TrackedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            await super()._async_launch_kernel(kernel_cmd, **kw)
            process = getattr(self.provisioner, "process", None)
            if process is not None:
                _KERNEL_PROCESSES.append(process)

    return TrackedKernelManager


def _kernel_exit_code() -> int | None:
    """Exit status of the last kernel (negative: killed by that signal); None if unknown/running."""
    try:
        return _KERNEL_PROCESSES[-1].poll() if _KERNEL_PROCESSES else None
    except Exception:
        return None


def _redirect_stderr(log: Path) -> None:
    """Kernels inherit this worker's stderr: keep their chatter out of the terminal, in a log."""
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError:
        fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 2)
    os.close(fd)


def _keep_failure_log(base: Path, flat: str, nb_out: Path, text: str) -> str:
    """Save the traceback and the partly executed notebook in .failed/; '' if that fails too."""
    failed = base / ".failed"
    try:
        failed.mkdir(parents=True, exist_ok=True)
        if nb_out.exists():
            shutil.copy2(nb_out, failed / f"{flat}.ipynb")
        (failed / f"{flat}.log").write_text(text, encoding="utf-8")
    except OSError:
        return ""
    return str(failed / f"{flat}.log")


def execute_job(job: Job, root: str, fp: dict, meta: dict) -> JobResult:
    """Run one notebook into a staging folder, export HTML, write the manifest, swap it in.

    Runs in a worker process. Errors are returned, not raised, so the other jobs go on; each
    becomes a one-line Japanese and English reason (describe_failure).
    """
    root_p = Path(root)
    base = root_p / "reports" / job.dataset
    final = base / job.out_name
    flat = job.out_name.replace("/", "_")
    staging = base / ".staging" / f"{flat}-{os.getpid()}"
    nb_out = staging / f"{job.notebook}.ipynb"
    t0 = time.perf_counter()
    try:
        _redirect_stderr(base / ".logs" / f"{flat}.kernel.log")
        return _execute(job, root_p, fp, meta, staging, nb_out, final, t0)
    except Exception as exc:
        ja, en = describe_failure(exc, meta.get("memory_limit_mb"), where=staging, kernel_exit=_kernel_exit_code())
        shutil.rmtree(staging, ignore_errors=True)  # first: frees the space a full disk needs below
        log = _keep_failure_log(base, flat, nb_out, traceback.format_exc())
        return _failed(job, ja, en, seconds=time.perf_counter() - t0, log=log, report_dir=str(final))


def _execute(
    job: Job, root_p: Path, fp: dict, meta: dict, staging: Path, nb_out: Path, final: Path, t0: float
) -> JobResult:
    import resource

    from .htmlexport import notebook_to_html

    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    started = datetime.now(UTC)
    run_notebook = _execute_on_kept_kernel if _REUSE_KERNELS else _execute_on_fresh_kernel
    peak_mb = run_notebook(job, root_p, staging, nb_out)
    summary_path = staging / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else {}
    notebook_to_html(
        nb_out,
        staging / "report.html",
        title=meta["titles"][job.out_name],
        banner_ja=meta["banner_ja"],
        index_href="../" * len(Path(job.out_name).parts) + "index.html",
        nav_links=[("summary.html", "1枚の要約")] if job.notebook == "fiscal_year_report" else (),
    )
    seconds = time.perf_counter() - t0
    if peak_mb is None:  # kernels are this worker's children: their peak resident memory (Linux reports KiB)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    manifest = {
        "dataset": job.dataset,
        "notebook": job.notebook,
        "fiscal_year": job.fiscal_year,
        "status": "ok",
        **fp,
        "summary": summary,
        "notebook_path": NOTEBOOKS[job.notebook],
        "git_commit": meta["git_commit"],
        "versions": meta["versions"],
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 2),
        "peak_kernel_rss_mb": round(peak_mb, 1),
    }
    (staging / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    _swap_in(staging, final)
    return JobResult(job, "ok", seconds, report_dir=str(final))


def _execute_on_fresh_kernel(job: Job, root_p: Path, staging: Path, nb_out: Path) -> float | None:
    """Run the notebook on a kernel of its own (papermill starts and stops it); None: peak memory from rusage."""
    import papermill as pm

    for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
        _KERNEL_PROCESSES.clear()
        try:
            pm.execute_notebook(
                str(root_p / NOTEBOOKS[job.notebook]),
                str(nb_out),
                parameters={**job.parameters, "output_dir": str(staging)},
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
                cwd=str(root_p / "notebooks"),
                shutdown_kernel="immediate",
                kernel_manager_class=_tracking_kernel_manager(),
            )
            break
        except RuntimeError as exc:
            # A kernel that dies before it answers kernel_info has run no cell: start another. The
            # usual cause is transient (a ZMQ port taken by a kernel starting at the same moment).
            if KERNEL_DIED_AT_START not in str(exc) or attempt == KERNEL_START_ATTEMPTS:
                raise
            print(KERNEL_REPLACED_NOTE, file=sys.stderr, flush=True)
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
    return None


def _execute_on_kept_kernel(job: Job, root_p: Path, staging: Path, nb_out: Path) -> float | None:
    """Run the notebook on this worker's kept kernel (analysis.kernels); its peak memory in MB.

    The kernel is kept for the next notebook only if this one succeeded and the reset verifies
    it clean; otherwise it is stopped and the next notebook starts a fresh one.
    """
    import papermill as pm

    from . import kernels

    kernels.register_engine()
    cwd = str(root_p / "notebooks")
    kernel = kernels.acquire(cwd, _tracking_kernel_manager(), attempts=KERNEL_START_ATTEMPTS)
    kernel.clear_peak_memory()
    ok = False
    try:
        pm.execute_notebook(
            str(root_p / NOTEBOOKS[job.notebook]),
            str(nb_out),
            parameters={**job.parameters, "output_dir": str(staging)},
            kernel_name=kernels.KERNEL_NAME,
            engine_name=kernels.ENGINE_NAME,
            reusable_kernel=kernel,
            progress_bar=False,
            log_output=False,
            cwd=cwd,
        )
        ok = True
        return kernel.peak_memory_mb()
    finally:
        why = kernels.release(kernel, ok)
        if why is not None and ok:
            print(f"kernel not reused / カーネルを再利用しません: {why}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# failures in words
# ---------------------------------------------------------------------------

_ERRNO_RE = re.compile(r"\[Errno (\d+)\][^:]*(?::\s*'(.*)')?")
_PROJECT_ERRORS = {"SurveyError", "DatasetError", "CodebookError", "SchemaError"}


def _project_error_names() -> set[str]:
    from . import datasets, export  # noqa: F401  (their error classes, as in every worker before they were lazy)

    names, todo = set(_PROJECT_ERRORS), [AnalysisError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}(\.\w+)?$")  # tempfile.mkstemp(prefix=".name.") names


def _os_error_text(exc: OSError, path: object = None) -> tuple[str, str]:
    where = exc.filename or path
    if where is not None and _TEMP_NAME.match(Path(str(where)).name):
        where = Path(str(where)).parent  # a temporary file of an atomic write: name its folder
    from .export import write_error_text

    text = write_error_text(exc.errno, where)
    if text:
        return text
    suffix = f": {where}" if where else ""
    return (f"ファイル操作に失敗しました（{exc.strerror or exc}）{suffix}", f"{exc.strerror or exc}{suffix}")


def describe_failure(
    exc: BaseException, memory_limit_mb: int | None = None, where: object = None, kernel_exit: int | None = None
) -> tuple[str, str]:
    """One line of Japanese and one of English saying why a job failed.

    Kernel death (with the signal, when `kernel_exit` is known), memory limits and write failures
    (full disk, read-only, no permission; naming the path) are recognised; a project error raised
    in the notebook keeps its own bilingual text.
    """
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from .export import WRITE_ERRNOS, write_error_text

    limit = f"{int(memory_limit_mb):,} MB" if memory_limit_mb else None
    mem_ja = f"メモリ上限（{limit}）を超えました" if limit else "メモリが足りなくなりました"
    mem_en = f"memory limit ({limit}) exceeded" if limit else "out of memory"
    if isinstance(exc, PapermillExecutionError):
        ename, evalue = exc.ename or "", _one_line(exc.evalue or "")
        cell = f"[{exc.exec_count}]" if exc.exec_count is not None else f"#{exc.cell_index + 1}"
        if "MemoryError" in ename:
            return (f"{mem_ja}（ノートブックのセル {cell}）", f"{mem_en} (notebook cell {cell})")
        m = _ERRNO_RE.search(evalue)
        if m and (text := write_error_text(int(m.group(1)), m.group(2) or where)):
            return text
        if ename in _project_error_names() and evalue:
            return evalue, ""  # already "where: ja / en"
        return (
            f"ノートブックのセル {cell} でエラーが発生しました: {ename}: {evalue}",
            f"the notebook failed in cell {cell}: {ename}",
        )
    if isinstance(exc, DeadKernelError) or "Kernel died" in str(exc):
        limit_ja = f"メモリ上限（{limit}）を超えたか、" if limit else ""
        limit_en = f"memory limit {limit} exceeded, " if limit else ""
        if kernel_exit is not None and kernel_exit < 0:
            try:
                sig = signal.Signals(-kernel_exit).name
            except ValueError:
                sig = f"signal {-kernel_exit}"
            if -kernel_exit == signal.SIGKILL:
                return (
                    f"ノートブックを実行するカーネルが強制終了されました（{sig}）。メモリ不足で OS に止められたか、"
                    "外部から終了させられた可能性があります",
                    f"the notebook kernel was killed ({sig}): out of memory (OS) or killed from outside",
                )
            return (
                f"ノートブックを実行するカーネルが異常終了しました（{sig}）。{limit_ja}プログラムの不具合の可能性があります",
                f"the notebook kernel crashed ({sig}; {limit_en}or a bug)",
            )
        code_ja = f"（終了コード {kernel_exit}）" if kernel_exit else ""
        code_en = f" with exit code {kernel_exit}" if kernel_exit else ""
        return (
            f"ノートブックを実行するカーネルが途中で終了しました{code_ja}。{limit_ja}メモリ不足で OS に止められたか、"
            "外部から終了させられた可能性があります",
            f"the notebook kernel died{code_en} ({limit_en}out of memory, or killed from outside)",
        )
    if isinstance(exc, (CellTimeoutError, TimeoutError)):
        return ("ノートブックの実行が時間切れになりました", "the notebook timed out")
    if isinstance(exc, MemoryError):
        return mem_ja, mem_en
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
        return _os_error_text(exc, where)
    if isinstance(exc, AnalysisError):
        return (f"{exc.where}: {exc.ja}" if exc.where else exc.ja), exc.en
    first = _one_line(str(exc).strip().splitlines()[0] if str(exc).strip() else "", 300)
    return (f"予期しないエラー: {type(exc).__name__}: {first}", f"unexpected error: {type(exc).__name__}: {first}")


def _exception_text(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, AnalysisError):
        return (f"{exc.where}: {exc.ja}" if exc.where else exc.ja), exc.en
    if isinstance(exc, OSError):
        return _os_error_text(exc)
    return _one_line(str(exc)), ""


def _titles(ds: Dataset) -> dict[str, str]:
    from .wareki import wareki_fy

    titles = {f"FY{y}": f"{wareki_fy(y)}（FY{y}）年度別レポート — {ds.label_ja}" for y in ds.years}
    titles["trends"] = f"年度横断の推移 — {ds.label_ja}"
    titles.update({f"quality/FY{y}": f"{wareki_fy(y)}（FY{y}）データ品質 — {ds.label_ja}" for y in ds.years})
    return titles


def preflight(ds: Dataset, years: list[int]) -> dict[int, tuple[str, str]]:
    """Read each survey file once before running; return {year: (ja, en)} for bad ones."""
    import pandas as pd

    from .codebook import load_codebook

    book = load_codebook()
    bad = {}
    for y in years:
        try:
            result = ds.read(y, book)
        except Exception as exc:
            bad[y] = _exception_text(exc)
            continue
        if not result.ok:
            first = result.errors.iloc[0]
            where = "" if pd.isna(first["row"]) else f"{int(first['row'])}行 "
            bad[y] = (
                f"{ds.survey_path(y)}: エラー {len(result.errors)} 件（最初: {where}{first['column']} "
                f"『{first['value']}』 {first['reason_ja']}）。`python -m analysis validate {ds.survey_path(y)} "
                f"--dataset {ds.name}` で全件を確認してください",
                f"{len(result.errors)} errors in the survey file",
            )
    return bad


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------


#: A job to execute: the job, its fingerprint (parameters, input hashes, code hash) and the run's metadata.
Task = tuple[Job, dict, dict]

EXECUTORS: tuple[ExecutorKind, ...] = ("local", "dask")


class JobExecutor(Protocol):
    """Where report jobs run: submit them all, get each JobResult back as it completes (any order).

    A job's own failure comes back as a failed JobResult, never as an exception; the iterator
    stops every outstanding job when it is closed early (an interrupted run).
    """

    notes: list[str]

    def run_jobs(self, todo: list[Task], root: Path) -> Iterator[JobResult]: ...


# An executor may also offer, for the datasets' finishing steps of a multi-dataset run:
#   run_calls(fn, calls: list[tuple]) -> Iterator[tuple[int, object]]  (index, value or the exception)
#   close() -> None                                                    (called once the run is over)
# Without run_calls, the finishing steps run one after another in this process.


def make_executor(
    name: str = "local",
    jobs: int | None = None,
    memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
    scheduler: str | None = None,
    fresh_kernels: bool = False,
) -> JobExecutor:
    """The executor called `name`: 'local' (worker processes here) or 'dask' (a dask.distributed cluster).

    `fresh_kernels`: a kernel per notebook (otherwise each worker, local or Dask, keeps one for its notebooks).
    """
    if name == "local":
        if scheduler:
            raise RunError(
                "--scheduler は --executor dask と一緒に指定してください",
                "--scheduler needs --executor dask",
            )
        return LocalExecutor(jobs, memory_limit_mb, fresh_kernels=fresh_kernels)
    if name == "dask":
        from .cluster import DaskExecutor

        return DaskExecutor(
            scheduler=scheduler, jobs=jobs, memory_limit_mb=memory_limit_mb, fresh_kernels=fresh_kernels
        )
    raise RunError(
        f"実行方式『{name}』はありません（{' / '.join(EXECUTORS)} のどれか）",
        f"unknown executor {name!r} (one of {', '.join(EXECUTORS)})",
    )


def run(
    dataset: str,
    years: str | list[int] | None = None,
    jobs: int | None = None,
    force: bool = False,
    exposure_lag: int = 0,
    progress: bool = True,
    build_site: bool = True,
    memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
    wait: bool = False,
    executor: ExecutorKind | JobExecutor = "local",
    scheduler: str | None = None,
    fresh_kernels: bool = False,
    pdfs: bool = True,
) -> RunResults:
    """Run every report of `dataset` for `years` (+ the trends report) and rebuild the index.

    Holds the dataset's run lock (RunLocked if another run has it, unless wait=True); SIGTERM or
    SIGINT stop every worker and kernel and raise Interrupted. `memory_limit_mb` bounds each
    worker and kernel's address space (0/None: no limit). `executor`: 'local' worker processes
    (default), 'dask' (a dask.distributed cluster at `scheduler`, or a LocalCluster of `jobs`
    workers) or a JobExecutor. Local workers reuse one verified-clean kernel for their notebooks
    (analysis.kernels) unless `fresh_kernels` (or ANALYSIS_FRESH_KERNELS=1). `pdfs=False`: HTML
    only, no PDFs or slide images (faster while iterating; a later run prints them).
    """
    validate_dataset_name(dataset)
    return run_many(
        [dataset],
        years,
        jobs=jobs,
        force=force,
        exposure_lag=exposure_lag,
        progress=progress,
        build_site=build_site,
        memory_limit_mb=memory_limit_mb,
        wait=wait,
        executor=executor,
        scheduler=scheduler,
        fresh_kernels=fresh_kernels,
        pdfs=pdfs,
    )[dataset]


def run_many(
    datasets: list[str],
    years: str | list[int] | None = None,
    jobs: int | None = None,
    force: bool = False,
    exposure_lag: int = 0,
    progress: bool = True,
    build_site: bool = True,
    memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
    wait: bool = False,
    executor: ExecutorKind | JobExecutor = "local",
    scheduler: str | None = None,
    fresh_kernels: bool = False,
    pdfs: bool = True,
) -> dict[str, RunResults]:
    """Run the reports of several datasets with their jobs scheduled together; {name: RunResults}.

    Each dataset is prepared (lock, repair, skips), executed and finished (failure records,
    profiles, index) exactly as a single-dataset run; only the execution is shared, so one
    executor keeps every worker busy across datasets. Locks are taken in name order.
    """
    root = project_root()
    names = list(dict.fromkeys(validate_dataset_name(n) for n in datasets))
    if not names:
        raise RunError("実行するデータセットがありません", "no dataset to run")
    from .datasets import load_dataset

    dss = [load_dataset(n) for n in names]
    if exposure_lag not in (0, 1):
        raise RunError("exposure_lag は 0 か 1 です", "exposure_lag must be 0 or 1")
    if memory_limit_mb is not None and (not isinstance(memory_limit_mb, int) or memory_limit_mb < 0):
        raise RunError("メモリ上限は 0 以上の整数（MB）で指定してください", "memory limit must be an integer >= 0 (MB)")
    year_lists = {ds.name: years if isinstance(years, list) else parse_years(years, ds.years) for ds in dss}
    bases = {ds.name: reports_base(root, ds.name) for ds in dss}
    exe = (
        make_executor(executor, jobs, memory_limit_mb or None, scheduler, fresh_kernels)
        if isinstance(executor, str)
        else executor
    )
    with ExitStack() as stack:
        close = getattr(exe, "close", None)
        if close is not None:
            stack.callback(close)  # a LocalCluster lives for the run: jobs, then the finishing steps
        for name in sorted(bases):
            stack.enter_context(run_lock(bases[name], wait=wait))
        stack.enter_context(_interrupt_on_signals())
        try:
            return _run_locked(
                dss,
                root,
                bases,
                year_lists,
                exe,
                force,
                exposure_lag,
                progress,
                build_site,
                memory_limit_mb or None,
                pdfs,
            )
        except BaseException as exc:
            for base in bases.values():
                repair(base)  # staging folders of the workers just stopped
            if isinstance(exc, Interrupted) and getattr(exe, "scheduler", None):
                raise Interrupted(exc.signum, remote=True) from None
            raise


@dataclass
class _Prepared:
    """One dataset's part of a run: every job, results known before execution, jobs to execute."""

    all_jobs: list[Job]
    results: list[JobResult]
    todo: list[Task]
    warnings: list[str]
    pdfs: bool = True  # print PDFs and slide images in the finishing step (run --no-pdf: False)


def _prepare(
    ds: Dataset,
    root: Path,
    base: Path,
    year_list: list[int],
    force: bool,
    exposure_lag: int,
    code: str,
    common: dict,
    pdfs: bool = True,
) -> _Prepared:
    warnings = repair(base)
    all_jobs = plan(ds, year_list, exposure_lag)
    bad = preflight(ds, ds.years)
    meta = {"titles": _titles(ds), "synthetic": ds.synthetic, "banner_ja": ds.banner_ja, **common}
    results: list[JobResult] = []
    todo: list[Task] = []
    for job in all_jobs:
        needed = ds.years if job.fiscal_year is None else [job.fiscal_year]
        broken = [] if job.notebook == "data_quality" else [y for y in needed if y in bad]
        final = base / job.out_name
        if broken:
            if job.fiscal_year:
                ja, en = bad[job.fiscal_year]
            else:
                years = "、".join(f"FY{y}" for y in broken)
                ja = (
                    f"調査ファイルに誤りのある年度があります（{years}）。その年度の調査ファイルを直すと、"
                    "この推移レポートも作成されます（誤りの内容は各年度のデータ品質レポートにあります）"
                )
                en = (
                    f"surveys with errors: {', '.join(f'FY{y}' for y in broken)}; fixing them also makes this "
                    "report again (each year's data-quality report says what is wrong)"
                )
            results.append(_failed(job, ja, en, report_dir=str(final)))
            continue
        fp = fingerprint(job, ds, root, code)
        if not force and is_up_to_date(final, fp):
            results.append(
                JobResult(
                    job,
                    "skipped",
                    message="最新です（入力・コード・パラメータに変更なし）/ up to date",
                    report_dir=str(final),
                )
            )
            continue
        todo.append((job, fp, meta))
    return _Prepared(all_jobs, results, todo, warnings, pdfs)


def _run_locked(
    dss: list[Dataset],
    root: Path,
    bases: dict[str, Path],
    year_lists: dict[str, list[int]],
    executor: JobExecutor,
    force: bool,
    exposure_lag: int,
    progress: bool,
    build_site: bool,
    memory_limit_mb: int | None,
    pdfs: bool = True,
) -> dict[str, RunResults]:
    code = code_hash()
    common = {"git_commit": git_commit(root), "versions": versions(), "memory_limit_mb": memory_limit_mb}
    prepared = {
        ds.name: _prepare(ds, root, bases[ds.name], year_lists[ds.name], force, exposure_lag, code, common, pdfs)
        for ds in dss
    }
    todo = [task for p in prepared.values() for task in p.todo]
    if progress:
        print(_plan_line(prepared), file=sys.stderr, flush=True)
    if todo:
        for res in _execute_all(todo, root, executor, progress):
            prepared[res.job.dataset].results.append(res)
    if executor.notes:
        prepared[dss[0].name].warnings.extend(executor.notes)
    run_calls = getattr(executor, "run_calls", None)
    if len(dss) < 2 or not build_site or run_calls is None:
        return {ds.name: _finish(ds, bases[ds.name], prepared[ds.name], build_site, progress) for ds in dss}
    return _finish_on_executor(dss, root, bases, prepared, run_calls, progress)


def _plan_line(prepared: dict[str, _Prepared]) -> str:
    """What the run is about to do, before the first report is done: datasets, reports to make,
    up to date, refused (input errors, with their names: they appear in no progress line)."""
    n_all = sum(len(p.all_jobs) for p in prepared.values())
    n_todo = sum(len(p.todo) for p in prepared.values())
    done = [r for p in prepared.values() for r in p.results]
    n_skip = sum(r.status == "skipped" for r in done)
    refused = [f"{r.job.dataset}/{r.job.out_name}" for r in done if r.status == "failed"]
    ja = f"データセット {len(prepared)} 件・レポート {n_all} 件: 作成 {n_todo} 件、最新のため省略 {n_skip} 件"
    en = f"{len(prepared)} dataset(s), {n_all} report(s): {n_todo} to make, {n_skip} up to date"
    if refused:
        names = ", ".join(refused[:5]) + (f" ほか {len(refused) - 5} 件" if len(refused) > 5 else "")
        ja += f"、入力に問題があり作成しない {len(refused)} 件（{names}）"
        en += f", {len(refused)} refused for input errors"
    return f"{ja} / {en}"


def finish_dataset(name: str, root: str, prep: _Prepared) -> tuple[list[JobResult], list[str], float]:
    """One dataset's finishing step (_finish: failure records, profiles, PDFs, index) as a task.

    Runs in a worker process or on a Dask worker, with the project at `root` (ANALYSIS_ROOT for
    the call, as a report job gets it). Returns the results, the warnings and the seconds taken.
    """
    from .datasets import load_dataset

    t0 = time.perf_counter()
    saved = os.environ.get("ANALYSIS_ROOT")
    os.environ["ANALYSIS_ROOT"] = root
    try:
        done = _finish(load_dataset(name), reports_base(Path(root), name), prep, True)
    finally:
        if saved is None:
            os.environ.pop("ANALYSIS_ROOT", None)
        else:
            os.environ["ANALYSIS_ROOT"] = saved
    return list(done), done.warnings, time.perf_counter() - t0


def _finish_on_executor(
    dss: list[Dataset],
    root: Path,
    bases: dict[str, Path],
    prepared: dict[str, _Prepared],
    run_calls,
    progress: bool,
) -> dict[str, RunResults]:
    """The finishing steps of several datasets as tasks on the executor, in parallel.

    Printing 47 prefectures' PDFs one dataset after another in this process took longer than
    their reports. A finishing task that fails on its worker (the worker died, or cannot see the
    project) is done again here, so every dataset ends with its index and failure records.
    """
    out: dict[str, RunResults] = {}
    # a dataset with no report made and nothing changed since its last finishing step is finished
    # here (_finish only records the outcomes and returns): no worker, and no cluster, for it
    idle = [ds for ds in dss if not prepared[ds.name].todo and _site_unchanged(ds, bases[ds.name])]
    for ds in idle:
        out[ds.name] = _finish(ds, bases[ds.name], prepared[ds.name], True)
    sent = [ds for ds in dss if ds.name not in out]
    calls = [(ds.name, str(root), prepared[ds.name]) for ds in sent]
    bar = _Progress(len(calls), "仕上げ（市町別カルテ・PDF・一覧）", progress and bool(calls))
    try:
        stream = run_calls(finish_dataset, calls) if calls else iter(())
        try:
            for i, value in stream:
                ds = sent[i]
                if isinstance(value, BaseException):
                    ja, en = describe_failure(value)
                    done = _finish(ds, bases[ds.name], prepared[ds.name], True)
                    done.warnings.append(
                        f"仕上げの作業を作業プロセスで実行できなかったため、本体で実行しました: {ja} / "
                        f"the finishing step failed on its worker and was done in the main process: {en}"
                    )
                    out[ds.name], secs = done, 0.0
                else:
                    results, warnings, secs = value
                    out[ds.name] = RunResults(results, warnings)
                bar.step(f"{ds.name}: 完了（{secs:.1f} 秒）", prefix="仕上げ ")
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    finally:
        bar.close()
    return {ds.name: out[ds.name] for ds in dss}


def _finish(ds: Dataset, base: Path, prep: _Prepared, build_site: bool, progress: bool = False) -> RunResults:
    """After execution: tidy the staging folder, record failures, profiles, print outputs, index.

    `progress`: a line when the profiles, PDFs and index are made and one when they are done
    (they take seconds after the last report's progress line); none when nothing changed.
    """
    results, warnings = prep.results, prep.warnings
    try:
        if (base / ".staging").is_dir() and not any((base / ".staging").iterdir()):
            (base / ".staging").rmdir()
    except OSError:
        pass
    order = {j.out_name: i for i, j in enumerate(prep.all_jobs)}
    results.sort(key=lambda r: order[r.job.out_name])
    warnings += record_outcomes(base, results)
    if build_site:
        if _site_unchanged(ds, base):
            return RunResults(results, warnings)  # nothing it reads or wrote has changed since it last ran
        if progress:
            what = "市町別カルテ・PDF・一覧" if prep.pdfs else "市町別カルテ・一覧"
            print(
                f"仕上げ（{what}）を作成しています: {ds.name} / finishing: profiles, PDFs, index",
                file=sys.stderr,
                flush=True,
            )
        t0 = time.perf_counter()
        n_warnings = len(warnings)
        try:
            write_all_profiles(ds, base)
        except OSError as exc:
            ja, en = _os_error_text(exc)
            warnings.append(
                f"市町別カルテを更新できませんでした: {ja} / could not update the municipality profiles: {en}"
            )
        warnings += publish_print(ds, base, pdfs=prep.pdfs)
        try:
            build_index(ds)
        except OSError as exc:
            ja, en = _os_error_text(exc)
            results.append(
                _failed(
                    Job(ds.name, "site", "index.html", None, {}),
                    f"レポート一覧（index.html）を更新できませんでした: {ja}",
                    f"could not update the index (index.html): {en}",
                    report_dir=str(base),
                )
            )
        else:
            if len(warnings) == n_warnings and prep.pdfs:  # complete (PDFs printed too): the next run may skip it
                _write_site_state(base, site_state(ds, base))
        if progress:
            print(f"仕上げ: {ds.name} 完了（{time.perf_counter() - t0:.1f} 秒）", file=sys.stderr, flush=True)
    return RunResults(results, warnings)


_SITE_STATE = ".site-state.json"
_NOT_SITE = {".run.lock", ".logs", ".staging", _SITE_STATE}


def site_state(ds: Dataset, base: Path) -> str:
    """Digest of what the finishing step reads and writes, to skip it when nothing changed.

    The package code, the dataset's inputs and the shared data files (by path in the project and
    content), and every file under reports/<dataset>/ by name, size and modification time: a
    report re-made, a failure recorded, a PDF or profile deleted by hand, all change it; copying
    or moving the whole project (file times kept) does not.
    """
    from .datasets import sha256

    root = project_root()
    h = hashlib.sha256(code_hash().encode())
    shared = [root / "docs" / "assumptions.md", *sorted((root / "data" / "codebook").glob("*.yaml"))]
    shared += sorted(p for p in (root / "data" / "external").rglob("*") if p.is_file())
    for p in [*ds.input_files(), *shared]:
        # relative to the project: a project copied or moved elsewhere is the same site
        where = p.relative_to(root) if p.is_relative_to(root) else p
        h.update(f"{where}\0{sha256(p) if p.is_file() else '-'}\n".encode())
    for dirpath, dirnames, filenames in os.walk(base):
        rel = Path(dirpath).relative_to(base)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in _NOT_SITE and not d.startswith(".old-")]
        dirnames.sort()
        for name in sorted(filenames):
            if rel == Path(".") and name in _NOT_SITE:
                continue
            st = os.stat(os.path.join(dirpath, name))
            h.update(f"{rel / name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _site_unchanged(ds: Dataset, base: Path) -> bool:
    """True when the finishing step of `ds` would find nothing changed since it last completed."""
    recorded = _read_site_state(base)
    return recorded is not None and site_state(ds, base) == recorded


def _read_site_state(base: Path) -> str | None:
    try:
        return json.loads((base / _SITE_STATE).read_text(encoding="utf-8")).get("digest")
    except (OSError, ValueError, AttributeError):
        return None


def _write_site_state(base: Path, digest: str) -> None:
    from .export import write_text

    with suppress(OSError):  # unwritten, the next run finishes again: slower, never wrong
        write_text(base / _SITE_STATE, json.dumps({"digest": digest}) + "\n")


class _Progress:
    """Progress of a run's items: a tqdm bar in Japanese on a terminal, else one line per item
    (a log file or CI gets no carriage returns); nothing without `progress`."""

    def __init__(self, total: int, desc: str, progress: bool):
        from tqdm import tqdm

        self.total, self.done = total, 0
        self.lines = progress and not sys.stderr.isatty()
        self.bar = tqdm(
            total=total,
            desc=desc,
            unit="件",
            disable=not (progress and sys.stderr.isatty()),
            dynamic_ncols=True,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} 件 [経過 {elapsed}、残り約 {remaining}]{postfix}",
        )

    def step(self, text: str, prefix: str = "") -> None:
        """One item done: `text` as the bar's postfix, or as a line "[prefix i/N] text"."""
        self.done += 1
        self.bar.set_postfix_str(text.split("（")[0])
        self.bar.update(1)
        if self.lines:
            print(f"[{prefix}{self.done}/{self.total}] {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.bar.close()


def _execute_all(todo: list[Task], root: Path, executor: JobExecutor, progress: bool) -> list[JobResult]:
    """Run the jobs on `executor`, with a progress bar; closing the iterator stops what is left."""
    results: list[JobResult] = []
    bar = _Progress(len(todo), "レポート作成", progress)
    try:
        stream = executor.run_jobs(todo, root)
        try:
            for res in stream:
                results.append(res)
                where = f"{res.job.dataset}/{res.job.out_name}"
                bar.step(f"{where}: {STATUS_JA[res.status]}（{res.seconds:.1f} 秒）")
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    finally:
        bar.close()
    return results


def worker_died(job: Job, root: Path) -> JobResult:
    """The result of a job whose worker process died under it (e.g. killed by the OS)."""
    return _failed(
        job,
        "作業プロセスが異常終了したため作成できませんでした（メモリ不足で OS に強制終了された"
        "可能性があります）。もう一度実行してください",
        "a worker process died (possibly killed by the OS for lack of memory); run again",
        report_dir=str(root / "reports" / job.dataset / job.out_name),
    )


class LocalExecutor:
    """Today's executor: spawned worker processes on this machine (concurrent.futures).

    Workers die with the main process and take their kernels along (_worker_init); an
    interrupted run stops every descendant process.
    """

    def __init__(
        self,
        jobs: int | None = None,
        memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
        fresh_kernels: bool = False,
    ):
        from .kernels import fresh_kernels_requested

        self.jobs = jobs
        self.memory_limit_mb = memory_limit_mb or None
        # one kept kernel per worker (analysis.kernels), unless fresh kernels are asked for
        self.reuse_kernels = not (fresh_kernels or fresh_kernels_requested())
        self.notes: list[str] = []

    def _pool(self, n_tasks: int, memory_limit_mb: int | None, reuse_kernels: bool) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=max(1, min(self.jobs or os.cpu_count() or 1, n_tasks)),
            mp_context=get_context("spawn"),
            initializer=_worker_init,
            initargs=(os.getpid(), memory_limit_mb, reuse_kernels),
        )

    def run_calls(self, fn, calls: list[tuple]) -> Iterator[tuple[int, object]]:
        """fn(*args) for each of `calls` in worker processes; (index, value or the exception raised).

        For the finishing steps: no address-space bound here (chromium reserves far more address
        space than it uses, and the main process, where these ran before, has none either).
        """
        pool = self._pool(len(calls), None, False)
        try:
            futures = {pool.submit(fn, *args): i for i, args in enumerate(calls)}
            for fut in as_completed(futures):
                try:
                    value: object = fut.result()
                except Exception as exc:  # BrokenProcessPool included: the caller redoes the call
                    value = exc
                yield futures[fut], value
        except BaseException:
            _abandon(pool)
            raise
        _shut(pool)

    def run_jobs(self, todo: list[Task], root: Path) -> Iterator[JobResult]:
        pool = self._pool(len(todo), self.memory_limit_mb, self.reuse_kernels)
        try:
            futures = {pool.submit(execute_job, job, str(root), fp, meta): job for job, fp, meta in todo}
            for fut in as_completed(futures):
                job = futures[fut]
                try:
                    res = fut.result()
                except BrokenProcessPool:
                    # one dead worker breaks the pool: every job not yet finished ends here
                    res = worker_died(job, root)
                except Exception as exc:
                    final = str(root / "reports" / job.dataset / job.out_name)
                    res = _failed(job, *describe_failure(exc, self.memory_limit_mb), report_dir=final)
                yield res
        except BaseException:
            _abandon(pool)
            raise
        _shut(pool)


def _abandon(pool: ProcessPoolExecutor) -> None:
    """An interrupted run: stop every process of the pool (workers, kernels, chromium), now."""
    workers = [p.pid for p in getattr(pool, "_processes", {}).values()]
    # multiprocessing's resource tracker ignores SIGTERM and ends by itself with this process
    from multiprocessing import resource_tracker

    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    stop_processes([p for p in descendants(os.getpid()) if p != tracker] or workers)
    pool.shutdown(wait=False, cancel_futures=True)


def _shut(pool: ProcessPoolExecutor) -> None:
    """A pool whose work is done: workers stop their kept kernels as they exit; what survives is stopped."""
    left = [p for w in getattr(pool, "_processes", {}).values() for p in descendants(w.pid)]
    pool.shutdown(wait=True)
    stop_processes([p for p in left if alive(p)], grace=2.0)


def record_outcomes(base: Path, results: list[JobResult]) -> list[str]:
    """Keep .failed/<name>.json for each failed report (what the index shows), drop it on success.

    Returns warnings for records that could not be written (a full or read-only disk).
    """
    from .export import write_text

    failed_dir = base / ".failed"
    now = datetime.now(UTC).isoformat(timespec="seconds")
    problems = []
    for r in results:
        flat = r.job.out_name.replace("/", "_")
        try:
            if r.status == "failed":
                record = {
                    "name": r.job.out_name,
                    "failed_at": now,
                    "reason_ja": r.reason_ja or r.message,
                    "reason_en": r.reason_en,
                    "log": os.path.relpath(r.log, base) if r.log else None,
                }
                write_text(
                    failed_dir / f"{flat}.json", json.dumps(record, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
                )
            elif failed_dir.is_dir():
                for suffix in (".json", ".log", ".ipynb"):
                    (failed_dir / f"{flat}{suffix}").unlink(missing_ok=True)
        except OSError as exc:
            ja, en = _os_error_text(exc)
            problems.append(
                f"失敗の記録を更新できませんでした（{r.job.out_name}）: {ja} / could not update the failure "
                f"record of {r.job.out_name}: {en}"
            )
    return problems[:1] + ([f"ほか {len(problems) - 1} 件 / {len(problems) - 1} more"] if len(problems) > 1 else [])


def publish_print(ds: Dataset, base: Path, pdfs: bool = True) -> list[str]:
    """One-page summaries, report PDFs and the slide images (analysis.pdf); notes for the summary."""
    from .pdf import publish

    return publish(base, label_ja=ds.label_ja, synthetic=ds.synthetic, banner_ja=ds.banner_ja, pdfs=pdfs)


def build_index(ds: Dataset) -> Path:
    """reports/<dataset>/index.html and assumptions.html (the published assumptions log)."""
    from .site import build_index as _build
    from .site import write_assumptions
    from .texts import SYNTHETIC_BANNER_JA

    root = project_root()
    out = reports_base(root, ds.name)
    out.mkdir(parents=True, exist_ok=True)
    banner = ds.banner_ja
    write_assumptions(root / "docs" / "assumptions.md", out, banner_ja=banner)
    meta = {k: ds.meta.get(k) for k in ("label_ja", "label_en", "description_ja")}
    meta.update(
        {
            "name": ds.name,
            "synthetic": ds.synthetic,
            "fiscal_years": ds.years,
            "banner_ja": ds.banner_ja or SYNTHETIC_BANNER_JA,
        }
    )
    return _build(out, meta)


def write_all_profiles(ds: Dataset, out: Path) -> list[int]:
    """市町別カルテ for every fiscal year whose survey reads without errors, and the 市町一覧.

    One page per municipality and year from templates (no notebook each); a page is rewritten
    only when its bytes change, so this is cheap on an unchanged run. Years whose survey has
    errors get no profiles (their data-quality report says why). Returns the years written.
    """
    from .codebook import load_codebook
    from .panel import build_panel
    from .profiles import write_profile_index, write_profiles

    book = load_codebook()
    results = {}
    for y in ds.years:
        try:
            res = ds.read(y, book)
        except AnalysisError:
            continue
        if res.ok:
            results[y] = res
    years = sorted(results)
    if not years:
        return []
    panel = build_panel(ds, book, years, preread=results)
    for y in years:
        write_profiles(ds, panel, book, y, out / "profiles" / f"FY{y}")
    write_profile_index(ds, panel, book, years, out)
    return years


def refresh_notebooks(names: list[str] | None = None) -> list[Path]:
    """Execute the committed notebooks (all of notebooks/*.ipynb) in place with their defaults (nbval's reference).

    Uses nbclient directly (no papermill metadata), cwd = notebooks/, as nbval runs them.
    """
    import nbformat
    from nbclient import NotebookClient

    root = project_root()
    done = []
    paths = [root / NOTEBOOKS[n] for n in names] if names else sorted((root / "notebooks").glob("*.ipynb"))
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            shutdown_kernel="immediate",
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()
        for cell in nb.cells:
            cell.get("metadata", {}).pop("execution", None)
        from .export import write_text

        write_text(path, nbformat.writes(nb) + "\n")
        done.append(path)
    return done


def _pad(text: str, width: int, *, right: bool = False) -> str:
    """text padded to `width` terminal columns (a full-width character takes two)."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    fill = " " * max(0, width - used)
    return fill + text if right else text + fill


def summary_table(results: list[JobResult]) -> str:
    """Plain-text summary (notebook, fiscal year, status, seconds, report) for the terminal."""
    lines = [f"{_pad('ノートブック', 20)}{_pad('年度', 10)}{_pad('状態', 6)}{_pad('秒', 8, right=True)}  レポート"]
    for r in results:
        fy = f"FY{r.job.fiscal_year}" if r.job.fiscal_year else ("全年度" if r.job.notebook != "site" else "—")
        kind = REPORT_KIND_JA.get(r.job.notebook, r.job.notebook)
        lines.append(f"{_pad(r.job.notebook, 20)}{_pad(fy, 10)}{_pad(STATUS_JA[r.status], 6)}{r.seconds:>8.1f}  {kind}")
    for r in results:
        if r.status == "failed":
            lines.append(f"失敗 / failed: {r.job.label}: {r.message}")
    return "\n".join(lines)


__all__ = [
    "DatasetError",
    "Interrupted",
    "Job",
    "JobExecutor",
    "JobResult",
    "LocalExecutor",
    "OutputError",
    "RunError",
    "RunLocked",
    "RunResults",
    "descendants",
    "describe_failure",
    "make_executor",
    "parse_years",
    "run",
    "run_many",
    "summary_table",
    "validate_dataset_name",
]
