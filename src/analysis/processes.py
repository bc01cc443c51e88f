"""Processes and locks of a run: the process tree, stopping it, dying with the parent, the run lock.

Linux-first (the project's machines): the tree is read from /proc; elsewhere the helpers degrade
to doing nothing rather than failing.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .errors import AnalysisError

LOCK_NAME = ".run.lock"


class RunLocked(AnalysisError):
    """Another run of the same dataset holds the lock; nothing was executed."""


def _proc_table() -> dict[int, tuple[int, str]]:
    """{pid: (parent pid, state)} of every process, from /proc (empty where there is no /proc)."""
    table: dict[int, tuple[int, str]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read().decode("utf-8", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        table[int(name)] = (int(fields[1]), fields[0])
    return table


def descendants(pid: int) -> list[int]:
    """Pids of every living descendant of `pid` (children first), e.g. workers and their kernels."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for child, (parent, state) in table.items():
        if state != "Z":
            children.setdefault(parent, []).append(child)
    out, todo = [], [pid]
    while todo:
        for child in sorted(children.get(todo.pop(0), [])):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("utf-8", "replace")
    except OSError:
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def stop_processes(pids: list[int], grace: float = 5.0) -> None:
    """SIGTERM each pid, wait up to `grace` seconds, then SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.05)
        if not any(alive(p) for p in pids):
            return


def set_parent_death_signal(sig: int) -> None:
    """Linux: have the kernel send `sig` to this process when its parent dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG


def _open_lock(path: Path, base: Path) -> tuple[int, bool]:
    flags = os.O_CLOEXEC
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o644), True
    except OSError:
        pass
    try:  # a read-only folder: an existing lock file can still be locked
        return os.open(path, os.O_RDONLY | flags), False
    except OSError:
        return os.open(base, os.O_RDONLY | os.O_DIRECTORY | flags), False


@contextmanager
def run_lock(base: Path, wait: bool = False) -> Iterator[None]:
    """Hold an exclusive flock on reports/<dataset>/.run.lock for the duration of a run.

    A second run of the same dataset raises RunLocked (or waits, with wait=True). The kernel
    releases the lock when the process ends, however it ends, so a killed run leaves no stale lock.
    """
    base.mkdir(parents=True, exist_ok=True)  # an OSError here names the folder (full or read-only disk)
    path = base / LOCK_NAME
    fd, writable = _open_lock(path, base)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = path.read_text(encoding="ascii").strip() or "?"
            except (OSError, UnicodeDecodeError):
                holder = "?"
            ja = (
                f"データセット『{base.name}』のレポートは別の実行（プロセス {holder}）が作成中です。"
                "終わってからもう一度実行するか、--wait を付けて終わるのを待ってください"
            )
            en = (
                f"another run (pid {holder}) is making the reports of dataset {base.name!r}; "
                "run again when it has finished, or pass --wait"
            )
            if not wait:
                raise RunLocked(ja, en) from None
            print(f"{ja} — 待っています / waiting", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        if writable:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            except OSError:
                pass
        yield
    finally:
        os.close(fd)


__all__ = ["RunLocked", "alive", "descendants", "run_lock", "set_parent_death_signal", "stop_processes"]
