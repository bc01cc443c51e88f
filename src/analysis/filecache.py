"""In-process cache of what is read from input files (survey files, the master, the codebook).

One Python process computing several reports (the fiscal-year reports and the trends report of a
dataset, or the data-quality reports) reads each survey file once instead of once per report.
An entry is keyed by the file's content: resolved path, size, modification time *and* the
sha256 of its bytes, so a file rewritten in place (even within the same clock tick, with the
same size) is read again. Callers add to the key everything else the result depends on (the
codebook's content, limits, fiscal year, ...). Values are copied on the way out, so a caller that
modifies what it got cannot change what the next caller gets.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_CHUNK = 1024 * 1024


def file_key(path: Path | str) -> tuple[str, int, int, str]:
    """(resolved path, size, mtime in ns, sha256 of the bytes) of an existing regular file.

    Raises OSError like `open` would for a missing or unreadable file (callers let their own
    reader report it).
    """
    p = Path(path).resolve()
    st = p.stat()
    digest = hashlib.sha256()
    with open(p, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return (str(p), st.st_size, st.st_mtime_ns, digest.hexdigest())


def content_key(obj: Any) -> str:
    """sha256 of `obj` pickled: the same content (built in the same order) gives the same key."""
    return hashlib.sha256(pickle.dumps(obj, protocol=5)).hexdigest()


class FileCache:
    """A small LRU cache; `get` computes a value once per key and hands out copies of it."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], T], copy: Callable[[T], T]) -> T:
        """copy(value) for `key`, computing the value with `compute` on a miss.

        Exceptions of `compute` propagate and nothing is stored (a broken file is read, and
        reported, again).
        """
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return copy(self._data[key])
        value = compute()
        with self._lock:
            self.misses += 1
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return copy(value)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


#: Every cache of this module's kind, so `clear_all` empties them (tests, long-lived kernels).
CACHES: dict[str, FileCache] = {}


def cache(name: str, maxsize: int) -> FileCache:
    """The process-wide cache called `name` (created on first use)."""
    if name not in CACHES:
        CACHES[name] = FileCache(maxsize)
    return CACHES[name]


def clear_all() -> None:
    for c in CACHES.values():
        c.clear()


__all__ = ["CACHES", "FileCache", "cache", "clear_all", "content_key", "file_key"]
