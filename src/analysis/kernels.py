"""Notebook kernels of a worker process: one kernel reused for several notebooks, reset and verified.

Starting a kernel and importing the scientific stack costs ~2.5 CPU-seconds per notebook, as
much as a small report's computation. A worker therefore keeps one kernel: started once, its
imports done by a warm-up (:data:`analysis.kernelstate.WARMUP_CODE`, what the notebooks import
first), its state recorded (:func:`analysis.kernelstate.record_baseline`). After each notebook
the kernel is reset and compared with that record (:func:`analysis.kernelstate.reset_and_verify`);
if anything differs, the notebook failed or the kernel died, it is shut down and the next
notebook gets a fresh kernel. ``run --fresh-kernels`` (or ANALYSIS_FRESH_KERNELS=1) turns reuse
off: one kernel per notebook, as papermill starts it.

The kernel is the worker's child; it dies with the worker (JPY_PARENT_PID, set by the runner),
is shut down when the worker ends normally (a multiprocessing finaliser) and, with everything
it started, when the worker is stopped (:func:`shutdown_current` from the signal handler).

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from .processes import alive, descendants, stop_processes

#: Environment variable: "1" makes every notebook start its own kernel (no reuse).
FRESH_KERNELS_ENV = "ANALYSIS_FRESH_KERNELS"
ENGINE_NAME = "analysis-reuse"  # the papermill engine that runs a notebook on a ReusableKernel
KERNEL_DIED_AT_START = "Kernel died before replying to kernel_info"  # jupyter_client's message
#: written to the job's kernel log each time a kernel that died at start is replaced
KERNEL_REPLACED_NOTE = (
    "カーネルが起動直後に終了したため、別のカーネルを起動します / kernel died at start; starting another"
)
START_TIMEOUT_S = 60
RESET_TIMEOUT_S = 120
KERNEL_NAME = "python3"


def fresh_kernels_requested() -> bool:
    """True when ANALYSIS_FRESH_KERNELS asks for one kernel per notebook."""
    return os.environ.get(FRESH_KERNELS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _run_sync(coro: Callable[..., Any]) -> Callable[..., Any]:
    from jupyter_core.utils import run_sync

    return run_sync(coro)


class KernelResetError(RuntimeError):
    """A silent command in the kernel failed (the reset found the kernel not clean, or it died)."""


class ReusableKernel:
    """One kernel, started with the notebooks' imports done, kept clean between notebooks."""

    def __init__(self, cwd: str, manager_class: type | None = None, kernel_name: str = KERNEL_NAME):
        from jupyter_client import AsyncKernelManager

        self.cwd = cwd
        self.kernel_name = kernel_name
        self._manager_class = manager_class or AsyncKernelManager
        self.km = self._manager_class(kernel_name=kernel_name)
        self.kc: Any = None
        self.notebooks = 0  # notebooks run on this kernel so far

    @property
    def pid(self) -> int | None:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        return getattr(process, "pid", None)

    def start(self, attempts: int = 3) -> None:
        """Start the kernel (again if it dies before answering, up to `attempts`), warm it up, record it."""
        from .kernelstate import WARMUP_CODE

        for attempt in range(1, attempts + 1):
            if attempt > 1:  # a manager whose kernel died is not started again: a new one
                self.km = self._manager_class(kernel_name=self.kernel_name)
            try:
                _run_sync(self.km.start_kernel)(cwd=self.cwd)
                self.kc = self.km.client()
                self.kc.start_channels()
                _run_sync(self.kc.wait_for_ready)(timeout=START_TIMEOUT_S)
                break
            except RuntimeError as exc:
                self.shutdown()
                if KERNEL_DIED_AT_START not in str(exc) or attempt == attempts:
                    raise
                print(KERNEL_REPLACED_NOTE, file=sys.stderr, flush=True)
        self.kc.allow_stdin = False
        self.silent(WARMUP_CODE)
        self.silent('__import__("analysis.kernelstate").kernelstate.record_baseline()')

    def silent(self, code: str, timeout: float = RESET_TIMEOUT_S) -> None:
        """Run `code` silently (no outputs, no history, execution count unchanged); KernelResetError if it fails."""
        reply = _run_sync(self.kc.execute_interactive)(
            code, silent=True, store_history=False, allow_stdin=False, timeout=timeout, output_hook=lambda msg: None
        )
        content = reply.get("content", {})
        if content.get("status") != "ok":
            raise KernelResetError(f"{content.get('ename', '')}: {content.get('evalue', '')}")

    def reset(self) -> None:
        """Back to the recorded fresh state; KernelResetError (naming the difference) if that fails."""
        self.silent('__import__("analysis.kernelstate").kernelstate.reset_and_verify()')

    def is_alive(self) -> bool:
        pid = self.pid
        return pid is not None and alive(pid)

    def clear_peak_memory(self) -> None:
        """Reset the kernel's peak resident memory (Linux: /proc/PID/clear_refs), so each notebook has its own."""
        if self.pid is not None:
            with suppress(OSError):
                Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def peak_memory_mb(self) -> float | None:
        """The kernel's peak resident memory since the last clear_peak_memory (MB), None if unknown."""
        if self.pid is None:
            return None
        with suppress(OSError, ValueError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return None

    def shutdown(self) -> None:
        """Stop the kernel now, with every process it started (e.g. joblib workers)."""
        pid = self.pid
        children = descendants(pid) if pid is not None else []
        if self.kc is not None:
            with suppress(Exception):
                self.kc.stop_channels()
            self.kc = None
        with suppress(Exception):
            if _run_sync(self.km.is_alive)():
                _run_sync(self.km.shutdown_kernel)(now=True)
        with suppress(Exception):
            _run_sync(self.km.cleanup_resources)()
        leftover = [p for p in ([pid] if pid else []) + children if alive(p)]
        if leftover:
            stop_processes(leftover, grace=2.0)


_CURRENT: ReusableKernel | None = None
_FINALIZER: Any = None


def acquire(cwd: str, manager_class: type | None = None, attempts: int = 3) -> ReusableKernel:
    """This worker's kernel for a notebook run in `cwd`: the kept one if it is clean and alive, else a new one."""
    global _CURRENT, _FINALIZER
    if _CURRENT is not None and (_CURRENT.cwd != cwd or not _CURRENT.is_alive()):
        shutdown_current()
    if _CURRENT is None:
        kernel = ReusableKernel(cwd, manager_class)
        try:
            kernel.start(attempts)
        except BaseException:
            kernel.shutdown()  # e.g. the warm-up failed: no half-started kernel is left behind
            raise
        _CURRENT = kernel
        if _FINALIZER is None:
            from multiprocessing import util

            # a pool worker ends with os._exit: atexit does not run, multiprocessing finalisers do
            _FINALIZER = util.Finalize(None, shutdown_current, exitpriority=100)
    return _CURRENT


def release(kernel: ReusableKernel, ok: bool) -> str | None:
    """After a notebook: keep the kernel if the notebook succeeded and the reset verifies; else stop it.

    Returns why the kernel was not kept (None if it was), for the worker's log.
    """
    global _CURRENT
    kernel.notebooks += 1
    reason = None if ok else "the notebook failed"
    if reason is None:
        try:
            kernel.reset()
        except Exception as exc:
            reason = f"reset failed: {exc}"
    if reason is not None:
        if kernel is _CURRENT:
            _CURRENT = None
        kernel.shutdown()
    return reason


def shutdown_current() -> None:
    """Stop this worker's kept kernel, if any (normal end, error, or a stop signal)."""
    global _CURRENT
    kernel, _CURRENT = _CURRENT, None
    if kernel is not None:
        kernel.shutdown()


def _without_cell_saves(nb_man: Any, execute: Callable[[], Any]) -> Any:
    """Run `execute` with papermill's save before and after every cell turned off.

    papermill rewrites the whole output notebook (validated JSON, figures included) twice per
    cell, ~0.15 CPU-seconds per report while the kernel waits; nobody reads the intermediate
    files of a staging folder. The final save (papermill's notebook_complete, also after a
    failed cell) still writes the complete notebook, byte-identical to one saved every cell.
    """
    save = nb_man.save
    nb_man.save = lambda **kwargs: None
    try:
        return execute()
    finally:
        nb_man.save = save


def register_engine() -> None:
    """Register the papermill engine that executes on a ReusableKernel (passed as `reusable_kernel=`)."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger

    class ReuseEngine(NBClientEngine):
        """papermill's nbclient engine, on the kernel passed as `reusable_kernel` (or its own if None)."""

        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = START_TIMEOUT_S,
            execution_timeout: int | None = None,
            reusable_kernel: ReusableKernel | None = None,
            **kwargs: Any,
        ) -> Any:
            if reusable_kernel is None:
                return super().execute_managed_notebook(
                    nb_man,
                    kernel_name,
                    log_output,
                    stdout_file,
                    stderr_file,
                    start_timeout,
                    execution_timeout,
                    **kwargs,
                )
            for name in ("input_path", "kernel_manager_class", "startup_timeout", "timeout"):
                kwargs.pop(name, None)
            client = PapermillNotebookClient(
                nb_man,
                km=reusable_kernel.km,
                kernel_name=kernel_name,
                timeout=execution_timeout,
                startup_timeout=start_timeout,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
                **kwargs,
            )
            client.kc = reusable_kernel.kc  # the kept client: nbclient neither starts nor stops it
            return _without_cell_saves(nb_man, client.execute)

    if ENGINE_NAME not in papermill_engines._engines:
        papermill_engines.register(ENGINE_NAME, ReuseEngine)


__all__ = [
    "ENGINE_NAME",
    "FRESH_KERNELS_ENV",
    "KernelResetError",
    "ReusableKernel",
    "acquire",
    "fresh_kernels_requested",
    "register_engine",
    "release",
    "shutdown_current",
]
