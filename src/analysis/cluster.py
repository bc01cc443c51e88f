"""Dask: report jobs as tasks on a dask.distributed cluster, and joblib's Dask backend for simulations.

Optional (`pip install -e '.[dask]'`). `run --executor dask` sends each report job to a cluster:
the one at `--scheduler ADDRESS`, or a LocalCluster on this machine sized by `--jobs` (processes,
one thread each, no dashboard). A job does on a Dask worker exactly what it does in a local worker
process (runner.execute_job: staging folder, manifest, swap), so the outputs are the same files.
Workers must see the project at the same path (a shared file system, or this machine) and run the
same package code; a job on a worker that does not is failed with a message, not run.

`parallel(n_jobs)` is the joblib.Parallel of the simulations (power, recovery, bootstrap): while a
dask.distributed Client is current in this process it uses joblib's Dask backend, so the
replications go to the cluster; seeds are fixed before the work is split, so the numbers are the
same as a local run's.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

from .parallelism import current_client, parallel
from .runner import DEFAULT_MEMORY_LIMIT_MB, JobResult, RunError, Task, _failed, code_hash, execute_job, worker_died

CONNECT_TIMEOUT_S = 20
_INSTALL_HINT = "pip install -e '.[dask]'"


def require_distributed() -> Any:
    """The dask.distributed module, or RunError (ja / en) saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise RunError(
            f"--executor dask には dask.distributed が必要です。`{_INSTALL_HINT}` でインストールしてください",
            f"--executor dask needs dask.distributed; install it with `{_INSTALL_HINT}`",
        ) from None
    return distributed


# ---------------------------------------------------------------------------
# report jobs as Dask tasks
# ---------------------------------------------------------------------------

_ONE_JOB_AT_A_TIME = threading.Lock()  # a worker with several threads still runs one job at a time


_KEPT_KERNEL_CODE: str | None = None  # the package code (code_hash) under which this worker's kept kernel started


def run_report_task(task: Task, root: str, memory_limit_mb: int | None, reuse_kernels: bool = False) -> JobResult:
    """Run one report job on a Dask worker, as a local worker process would (runner.execute_job).

    Refuses (a failed JobResult) when the worker cannot see the project at `root` or runs other
    package code than the run planned with. For the job's duration, the worker's stderr goes to the
    job's kernel log and its address space is bounded like a local worker's; both are restored after.
    `reuse_kernels`: the worker keeps one verified-clean kernel for the run's notebooks, as local
    workers do; a kernel kept under other package code (an earlier run's) is stopped first.
    """
    job, fp, _meta = task
    final = str(Path(root) / "reports" / job.dataset / job.out_name)
    if not (Path(root) / "pyproject.toml").is_file() or not (Path(root) / "data" / "raw" / job.dataset).is_dir():
        return _failed(
            job,
            f"Dask のワーカー（{os.uname().nodename}）からプロジェクトのフォルダ {root} が見えません。"
            "ワーカーにも同じパスでプロジェクト（data/ と reports/）を共有してください",
            f"the Dask worker on {os.uname().nodename} cannot see the project at {root}; share the project "
            "(data/ and reports/) with the workers at the same path",
            report_dir=final,
        )
    if code_hash() != fp["code_hash"]:
        return _failed(
            job,
            f"Dask のワーカー（{os.uname().nodename}）の analysis パッケージが、この実行のものと異なります。"
            "ワーカーを同じ環境・同じコードで起動し直してください",
            f"the analysis package on the Dask worker {os.uname().nodename} differs from this run's; restart the "
            "workers with the same environment and code",
            report_dir=final,
        )
    with _ONE_JOB_AT_A_TIME:
        import resource

        saved_stderr = os.dup(2)
        saved_limit = resource.getrlimit(resource.RLIMIT_AS)
        saved_parent = os.environ.get("JPY_PARENT_PID")
        # ipykernel polls its parent and exits when it is gone: kernels die with this worker
        os.environ["JPY_PARENT_PID"] = str(os.getpid())
        try:
            if memory_limit_mb:
                soft, hard = saved_limit
                limit = int(memory_limit_mb) * 1024 * 1024
                if hard != resource.RLIM_INFINITY:
                    limit = min(limit, hard)
                if soft == resource.RLIM_INFINITY or limit < soft:
                    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))  # inherited by the kernel
            return _execute(task, root, reuse_kernels)
        finally:
            resource.setrlimit(resource.RLIMIT_AS, saved_limit)
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
            if saved_parent is None:
                os.environ.pop("JPY_PARENT_PID", None)
            else:
                os.environ["JPY_PARENT_PID"] = saved_parent


def _execute(task: Task, root: str, reuse_kernels: bool) -> JobResult:
    """runner.execute_job, on this worker's kept kernel when `reuse_kernels`."""
    global _KEPT_KERNEL_CODE
    from . import kernels, runner

    job, fp, meta = task
    if fp["code_hash"] != _KEPT_KERNEL_CODE:  # its modules were imported from other code
        kernels.shutdown_current()
        _KEPT_KERNEL_CODE = fp["code_hash"]
    saved, runner._REUSE_KERNELS = runner._REUSE_KERNELS, reuse_kernels
    try:
        return execute_job(job, root, fp, meta)
    finally:
        runner._REUSE_KERNELS = saved


def stop_kept_kernel() -> None:
    """On a Dask worker at the end of a run: stop the kernel it kept (client.run calls this)."""
    global _KEPT_KERNEL_CODE
    from . import kernels

    kernels.shutdown_current()
    _KEPT_KERNEL_CODE = None


_SCHEMES = ("tcp", "tls", "ucx", "inproc", "ws", "wss")


def check_scheduler_address(address: str) -> str:
    """`address` if it looks like a Dask scheduler address (tcp://host:8786, or host:port); else RunError.

    Checked before anything runs, so a typo is one line even when every report is up to date and
    the scheduler would never be contacted. The dashboard's http:// address is the usual mistake.
    """
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme.lower() == "inproc" and rest:  # in-process (tests): inproc://host/pid/n, no port
        return address
    host, colon, port = rest.rpartition(":")
    if scheme.lower() in ("http", "https"):
        raise RunError(
            f"--scheduler の『{address}』はダッシュボード（http）のアドレスです。スケジューラのアドレス"
            "（例: tcp://ホスト名:8786）を指定してください",
            f"--scheduler {address!r} is the dashboard's (http) address; give the scheduler's, e.g. tcp://host:8786",
        )
    if scheme.lower() not in _SCHEMES or not colon or not host or not port.isdigit():
        raise RunError(
            f"--scheduler の『{address}』は Dask のスケジューラのアドレスの形ではありません（例: tcp://ホスト名:8786）",
            f"--scheduler {address!r} is not a Dask scheduler address (e.g. tcp://host:8786)",
        )
    return address


def _unreachable(address: str, exc: BaseException) -> RunError:
    return RunError(
        f"Dask のスケジューラ {address} に接続できません（{type(exc).__name__}: {exc}）。"
        "アドレスと、スケジューラが起動しているかを確認してください",
        f"Dask scheduler {address} unreachable ({type(exc).__name__}: {exc}); check the address and that the "
        "scheduler is running",
    )


class DaskExecutor:
    """Report jobs as Dask tasks: on the cluster at `scheduler`, or on a LocalCluster of `jobs` workers.

    The LocalCluster (processes, one thread per worker, its HTTP server on a free port and no
    dashboard unless bokeh is installed, no Dask memory limit: the
    kernels are bounded by `memory_limit_mb` as with local workers) is made on first use and lives
    until close(), so a multi-dataset run's finishing steps (run_calls: profiles, PDFs, index) run
    on the same workers after the report jobs; on a remote cluster the workers then need chromium.
    An interrupted run cancels the outstanding tasks; on a LocalCluster it also stops the workers
    and their kernels. Tasks already running on a remote cluster finish there (Dask cannot stop a
    running task), but their staged output is only swapped in when complete.
    """

    def __init__(
        self,
        scheduler: str | None = None,
        jobs: int | None = None,
        memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
        client: Any | None = None,
        fresh_kernels: bool = False,
    ):
        from .kernels import fresh_kernels_requested

        require_distributed()
        if scheduler:
            check_scheduler_address(scheduler)
        # each worker keeps one kernel for its notebooks (analysis.kernels), unless fresh ones are asked for
        self.reuse_kernels = not (fresh_kernels or fresh_kernels_requested())
        self.scheduler = scheduler
        self.jobs = jobs
        self.memory_limit_mb = memory_limit_mb or None
        self.client = client
        self.notes: list[str] = []
        self._session: tuple[Any, Any] | None = None

    def _connect(self, n_jobs: int) -> tuple[Any, Any]:
        """(client, LocalCluster or None): made on first use, kept until close() (jobs, then finishing)."""
        if self._session is None:
            self._session = self._open(n_jobs)
        return self._session

    def _open(self, n_jobs: int) -> tuple[Any, Any]:
        import logging

        from distributed import Client, LocalCluster

        if self.client is not None:
            return self.client, None
        if self.scheduler:
            try:
                return Client(self.scheduler, timeout=f"{CONNECT_TIMEOUT_S}s"), None
            except Exception as exc:  # OSError, TimeoutError; ValueError for an address Dask cannot parse
                raise _unreachable(self.scheduler, exc) from None
        n_workers = max(1, min(self.jobs or os.cpu_count() or 1, n_jobs))
        # Ctrl-C reaches every process of the terminal: the workers inherit SIGINT ignored (a
        # spawned interpreter keeps it so), and this process stops them, instead of each printing
        # its own KeyboardInterrupt traceback
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            cluster = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # a free port: no "port 8787 in use" warning; no dashboard without bokeh
                memory_limit=0,
                silence_logs=logging.ERROR,
            )
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
        return Client(cluster), cluster

    def close(self, interrupted: bool = False) -> None:
        """Stop the workers' kept kernels, close the client this executor opened and stop its
        LocalCluster (never a client passed in). `interrupted`: do not wait for the workers."""
        session, self._session = self._session, None
        if session is None:
            return
        client, cluster = session
        if self.reuse_kernels:
            with suppress(Exception):
                # every worker stops the kernel it kept for this run (a LocalCluster's were stopped already)
                client.run(stop_kept_kernel, wait=not interrupted)
        if client is not self.client:
            with suppress(Exception):
                client.close()
        if cluster is not None:
            with suppress(Exception):
                cluster.close()

    def _stop_everything(self, futures: list) -> None:
        """An interrupted run: cancel the tasks; a LocalCluster's workers (and their kernels) are stopped."""
        client, cluster = self._session or (None, None)
        if client is not None:
            with suppress(Exception):
                client.cancel(futures, force=True)
        if cluster is not None:  # the LocalCluster's workers and their kernels are this process's descendants
            from multiprocessing import resource_tracker

            from .processes import descendants, stop_processes

            tracker = getattr(resource_tracker._resource_tracker, "_pid", None)  # ends with this process
            stop_processes([p for p in descendants(os.getpid()) if p != tracker])
        self.close(interrupted=True)

    def run_jobs(self, todo: list[Task], root: Path) -> Iterator[JobResult]:
        from distributed import as_completed

        client, _cluster = self._connect(len(todo))
        futures: dict[Any, Task] = {}
        try:
            for task in todo:
                job = task[0]
                key = f"report-{job.dataset}-{job.out_name.replace('/', '_')}-{uuid.uuid4().hex[:8]}"
                fut = client.submit(
                    run_report_task, task, str(root), self.memory_limit_mb, self.reuse_kernels, key=key, retries=0
                )
                futures[fut] = task
            for fut in as_completed(list(futures)):
                job = futures[fut][0]
                try:
                    res = fut.result()
                except Exception as exc:
                    # KilledWorker: the worker died under the job (the same words as a local worker's death)
                    res = (
                        worker_died(job, root) if type(exc).__name__ == "KilledWorker" else _task_error(job, root, exc)
                    )
                yield res
        except BaseException:
            self._stop_everything(list(futures))
            raise

    def run_calls(self, fn: Any, calls: list[tuple]) -> Iterator[tuple[int, object]]:
        """fn(*args) for each of `calls` as Dask tasks (the finishing steps); (index, value or exception)."""
        from distributed import as_completed

        client, _cluster = self._connect(len(calls))
        futures: dict[Any, int] = {}
        try:
            for i, args in enumerate(calls):
                key = f"call-{getattr(fn, '__name__', 'fn')}-{i}-{uuid.uuid4().hex[:8]}"
                futures[client.submit(run_call_task, fn, args, code_hash(), key=key, retries=0)] = i
            for fut in as_completed(list(futures)):
                try:
                    value: object = fut.result()
                except Exception as exc:  # KilledWorker, or the call's own error: the caller redoes it
                    value = exc
                yield futures[fut], value
        except BaseException:
            self._stop_everything(list(futures))
            raise


def run_call_task(fn: Any, args: tuple, expected_code: str) -> object:
    """fn(*args) on a Dask worker, one at a time, refused (RunError) where the package code differs."""
    if code_hash() != expected_code:
        raise RunError(
            f"Dask のワーカー（{os.uname().nodename}）の analysis パッケージが、この実行のものと異なります",
            f"the analysis package on the Dask worker {os.uname().nodename} differs from this run's",
        )
    with _ONE_JOB_AT_A_TIME:
        return fn(*args)


def _task_error(job: Any, root: Path, exc: BaseException) -> JobResult:
    from .runner import describe_failure

    final = str(root / "reports" / job.dataset / job.out_name)
    return _failed(job, *describe_failure(exc), report_dir=final)


__all__ = [
    "DaskExecutor",
    "check_scheduler_address",
    "current_client",
    "parallel",
    "require_distributed",
    "run_call_task",
    "run_report_task",
]
