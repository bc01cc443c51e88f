"""papermill orchestration: one process per notebook, staged outputs, manifests, HTML, index.

Each job (a fiscal-year report or the trends report) is executed with papermill's Python API in
a worker process (concurrent.futures with the 'spawn' start method), writing into a staging
folder; only a complete, successful folder is swapped in for the old report, so a failure never
leaves a half-written report in place of a good one. A job whose manifest shows the same inputs,
parameters, notebook and package code is skipped unless forced.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path

from .datasets import Dataset, DatasetError, load_dataset, sha256
from .paths import project_root

NOTEBOOKS = {"fiscal_year_report": "notebooks/fiscal_year_report.ipynb", "trends": "notebooks/trends.ipynb",
             "data_quality": "notebooks/data_quality.ipynb"}
KEY_PACKAGES = ("pandas", "numpy", "statsmodels", "scipy", "firthmodels", "matplotlib", "seaborn",
                "papermill", "nbconvert", "openpyxl")


@dataclass
class Job:
    dataset: str
    notebook: str
    out_name: str
    fiscal_year: int | None
    parameters: dict

    @property
    def label(self) -> str:
        return f"{self.notebook} {self.out_name}"


@dataclass
class JobResult:
    job: Job
    status: str  # ok | skipped | failed
    seconds: float = 0.0
    message: str = ""
    report_dir: str = ""


class RunError(Exception):
    """Bad parameters for a run (ja / en); nothing was executed."""


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
        raise RunError(f"年度の指定『{text}』を解釈できません（例: 2021-2025, 2025）/ cannot parse years {text!r} "
                       "(e.g. 2021-2025)") from None
    outside = [y for y in years if y not in available]
    if outside:
        raise RunError(
            f"データにない年度です: {', '.join(map(str, outside))}（利用できる年度: {', '.join(map(str, available))}）/ "
            f"fiscal years outside the data: {outside} (available: {available})")
    return sorted(set(years))


def plan(ds: Dataset, years: list[int], exposure_lag: int = 0) -> list[Job]:
    jobs = [Job(ds.name, "fiscal_year_report", f"FY{y}", y,
                {"dataset": ds.name, "fiscal_year": y, "exposure_lag": exposure_lag}) for y in years]
    jobs.append(Job(ds.name, "trends", "trends", None, {"dataset": ds.name}))
    jobs += [Job(ds.name, "data_quality", f"quality/FY{y}", y, {"dataset": ds.name, "fiscal_year": y}) for y in years]
    return jobs


def code_hash(pkg: Path | None = None) -> str:
    """Hash of the package's source and templates (anything that can change a report)."""
    h = hashlib.sha256()
    pkg = pkg or Path(__file__).resolve().parent
    for p in sorted(pkg.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".tpl", ".j2", ".css", ".json", ".yaml", ".html"):
            h.update(str(p.relative_to(pkg)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def job_inputs(job: Job, ds: Dataset, root: Path) -> dict[str, str]:
    years = ds.years if job.fiscal_year is None else [
        y for y in ds.years if job.fiscal_year - job.parameters.get("exposure_lag", 0) <= y <= job.fiscal_year]
    files = [*ds.input_files(years), *sorted((root / "data" / "codebook").glob("*.yaml")),
             root / "data" / "external" / "national_jusou_counts.csv", root / NOTEBOOKS[job.notebook]]
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
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
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
    restored = []
    if not base.is_dir():
        return restored
    for old in sorted(base.rglob(".old-*")):
        name = old.name[len(".old-"):].rsplit("-", 1)[0]
        final = old.with_name(name)
        if old.is_dir() and not final.exists():
            os.replace(old, final)
            restored.append(final)
        elif old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return restored


def execute_job(job: Job, root: str, fp: dict, meta: dict) -> JobResult:
    """Run one notebook into a staging folder, export HTML, write the manifest, swap it in.

    Runs in a worker process. Errors are returned, not raised, so the other jobs go on.
    """
    import papermill as pm

    from .htmlexport import notebook_to_html
    from .texts import SYNTHETIC_BANNER_JA

    root_p = Path(root)
    base = root_p / "reports" / job.dataset
    final = base / job.out_name
    flat = job.out_name.replace("/", "_")
    staging = base / ".staging" / f"{flat}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    nb_out = staging / f"{job.notebook}.ipynb"
    # kernels inherit this worker's stderr: keep their chatter out of the terminal, in a log
    logs = base / ".logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_fd = os.open(logs / f"{flat}.kernel.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    try:
        pm.execute_notebook(
            str(root_p / NOTEBOOKS[job.notebook]), str(nb_out),
            parameters={**job.parameters, "output_dir": str(staging)},
            kernel_name="python3", progress_bar=False, log_output=False,
            cwd=str(root_p / "notebooks"), shutdown_kernel="immediate",
        )
        summary_path = staging / "summary.json"
        summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else {}
        title = meta["titles"][job.out_name]
        notebook_to_html(nb_out, staging / "report.html", title=title,
                         banner_ja=SYNTHETIC_BANNER_JA if meta["synthetic"] else None)
        seconds = time.perf_counter() - t0
        import resource

        # kernels are this worker's children: their peak resident memory (Linux reports KiB)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        manifest = {
            "dataset": job.dataset, "notebook": job.notebook, "fiscal_year": job.fiscal_year,
            "status": "ok", **fp, "summary": summary,
            "notebook_path": NOTEBOOKS[job.notebook], "git_commit": meta["git_commit"],
            "versions": meta["versions"], "started": started.isoformat(timespec="seconds"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(seconds, 2), "peak_kernel_rss_mb": round(peak_mb, 1),
        }
        (staging / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _swap_in(staging, final)
        return JobResult(job, "ok", seconds, report_dir=str(final))
    except Exception as exc:  # noqa: BLE001 - reported per job, other jobs continue
        failed = base / ".failed"
        failed.mkdir(parents=True, exist_ok=True)
        if nb_out.exists():
            shutil.copy2(nb_out, failed / f"{flat}.ipynb")
        shutil.rmtree(staging, ignore_errors=True)
        message = _error_text(exc)
        (failed / f"{flat}.log").write_text(traceback.format_exc(), encoding="utf-8")
        return JobResult(job, "failed", time.perf_counter() - t0,
                         message=f"{message}（ログ / log: {failed / f'{flat}.log'}）", report_dir=str(final))


def _error_text(exc: Exception) -> str:
    text = str(exc)
    # papermill wraps kernel errors; keep the last meaningful line (the exception in the notebook)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln or "エラー" in ln:
            return ln.strip()[:800]
    return (lines[-1] if lines else type(exc).__name__)[:800]


def _titles(ds: Dataset) -> dict[str, str]:
    from .wareki import wareki_fy

    titles = {f"FY{y}": f"{wareki_fy(y)}（FY{y}）年度別レポート — {ds.label_ja}" for y in ds.years}
    titles["trends"] = f"年度横断の推移 — {ds.label_ja}"
    titles.update({f"quality/FY{y}": f"{wareki_fy(y)}（FY{y}）データ品質 — {ds.label_ja}" for y in ds.years})
    return titles


def preflight(ds: Dataset, years: list[int]) -> dict[int, str]:
    """Read each survey file once before running; return {year: error message} for bad ones."""
    import pandas as pd

    from .codebook import load_codebook

    book = load_codebook()
    bad = {}
    for y in years:
        try:
            result = ds.read(y, book)
        except Exception as exc:  # noqa: BLE001 - SurveyError, DatasetError, OSError
            bad[y] = str(exc)
            continue
        if not result.ok:
            first = result.errors.iloc[0]
            where = "" if pd.isna(first["row"]) else f"{int(first['row'])}行 "
            bad[y] = (f"{ds.survey_path(y)}: エラー {len(result.errors)} 件（最初: {where}{first['column']} "
                      f"『{first['value']}』 {first['reason_ja']}）。`python -m analysis validate {ds.survey_path(y)} "
                      f"--dataset {ds.name}` で全件を確認してください / {len(result.errors)} errors in the survey file")
    return bad


def run(dataset: str, years: str | list[int] | None = None, jobs: int | None = None, force: bool = False,
        exposure_lag: int = 0, progress: bool = True, build_site: bool = True) -> list[JobResult]:
    """Run every report of `dataset` for `years` (+ the trends report) and rebuild the index."""
    from tqdm import tqdm

    root = project_root()
    ds = load_dataset(dataset)
    if exposure_lag not in (0, 1):
        raise RunError("exposure_lag は 0 か 1 です / exposure_lag must be 0 or 1")
    year_list = years if isinstance(years, list) else parse_years(years, ds.years)
    restore_interrupted(root / "reports" / ds.name)
    all_jobs = plan(ds, year_list, exposure_lag)
    bad = preflight(ds, ds.years)
    code = code_hash()
    meta = {"titles": _titles(ds), "synthetic": ds.synthetic, "git_commit": git_commit(root), "versions": versions()}
    results: list[JobResult] = []
    todo: list[tuple[Job, dict]] = []
    for job in all_jobs:
        needed = ds.years if job.fiscal_year is None else [job.fiscal_year]
        broken = [] if job.notebook == "data_quality" else [y for y in needed if y in bad]
        if broken:
            msg = " / ".join(bad[y] for y in broken) if job.fiscal_year else \
                f"調査ファイルに問題のある年度があります: {', '.join(map(str, broken))} / surveys with errors: {broken}"
            results.append(JobResult(job, "failed", message=msg, report_dir=str(root / "reports" / ds.name / job.out_name)))
            continue
        fp = fingerprint(job, ds, root, code)
        final = root / "reports" / ds.name / job.out_name
        if not force and is_up_to_date(final, fp):
            results.append(JobResult(job, "skipped", message="最新です（入力・コード・パラメータに変更なし）/ up to date",
                                     report_dir=str(final)))
            continue
        todo.append((job, fp))
    n_workers = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    if todo:
        bar = tqdm(total=len(todo), desc="レポート作成", unit="件", disable=not progress, dynamic_ncols=True)
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(execute_job, job, str(root), fp, meta): job for job, fp in todo}
            for fut in as_completed(futures):
                res = fut.result()
                results.append(res)
                bar.set_postfix_str(f"{res.job.out_name}: {res.status}")
                bar.update(1)
        bar.close()
    staging_root = root / "reports" / ds.name / ".staging"
    if staging_root.is_dir() and not any(staging_root.iterdir()):
        staging_root.rmdir()
    order = {j.out_name: i for i, j in enumerate(all_jobs)}
    results.sort(key=lambda r: order[r.job.out_name])
    if build_site:
        build_index(ds)
    return results


def build_index(ds: Dataset) -> Path:
    """reports/<dataset>/index.html and assumptions.html (the published assumptions log)."""
    from .site import build_index as _build
    from .site import write_assumptions
    from .texts import SYNTHETIC_BANNER_JA

    root = project_root()
    out = root / "reports" / ds.name
    out.mkdir(parents=True, exist_ok=True)
    banner = SYNTHETIC_BANNER_JA if ds.synthetic else None
    write_assumptions(root / "docs" / "assumptions.md", out, banner_ja=banner)
    meta = {k: ds.meta.get(k) for k in ("label_ja", "label_en", "description_ja")}
    meta.update({"name": ds.name, "synthetic": ds.synthetic, "fiscal_years": ds.years,
                 "banner_ja": SYNTHETIC_BANNER_JA})
    return _build(out, meta)


def refresh_notebooks(names: list[str] | None = None) -> list[Path]:
    """Execute the committed notebooks in place with their default parameters (nbval's reference).

    Uses nbclient directly (no papermill metadata), cwd = notebooks/, as nbval runs them.
    """
    import nbformat
    from nbclient import NotebookClient

    root = project_root()
    done = []
    for name in names or sorted(NOTEBOOKS):
        path = root / NOTEBOOKS[name]
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3", shutdown_kernel="immediate",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        for cell in nb.cells:
            cell.get("metadata", {}).pop("execution", None)
        from .export import write_text

        write_text(path, nbformat.writes(nb) + "\n")
        done.append(path)
    return done


def summary_table(results: list[JobResult]) -> str:
    """Plain-text summary (notebook, fiscal year, status, seconds) for the terminal."""
    status_ja = {"ok": "成功", "skipped": "最新", "failed": "失敗"}
    lines = [f"{'ノートブック':<20}{'年度':<10}{'状態':<6}{'秒':>8}"]
    for r in results:
        fy = f"FY{r.job.fiscal_year}" if r.job.fiscal_year else "全年度"
        lines.append(f"{r.job.notebook:<20}{fy:<10}{status_ja[r.status]:<6}{r.seconds:>8.1f}")
    for r in results:
        if r.status == "failed":
            lines.append(f"失敗 / failed: {r.job.label}: {r.message}")
    return "\n".join(lines)


__all__ = ["Job", "JobResult", "RunError", "DatasetError", "run", "parse_years", "summary_table"]
