"""The joblib.Parallel of the simulations (power, recovery, bootstrap): local, or Dask while a client is current.

Kept apart from analysis.cluster so the estimators import nothing of the runner or of Dask.
"""

from __future__ import annotations

import sys
from contextlib import suppress
from typing import Any


def current_client() -> Any | None:
    """The dask.distributed Client current in this process (not inside a Dask task), else None.

    Never imports dask: a process that has not imported distributed has no client.
    """
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    with suppress(ValueError):
        distributed.get_worker()
        return None  # inside a task: joblib's Dask backend would wait on its own worker
    try:
        client = distributed.default_client()
    except ValueError:
        return None
    return client if client.status == "running" else None


class _DaskParallel:
    """joblib.Parallel run inside ``joblib.parallel_config(backend="dask")`` (which registers the backend)."""

    def __init__(self, **kwargs: Any):
        self.kwargs = kwargs

    def __call__(self, iterable: Any) -> Any:
        from joblib import Parallel, parallel_config

        with parallel_config(backend="dask"):
            return Parallel(**self.kwargs)(iterable)


def parallel(n_jobs: int = 1, **kwargs: Any) -> Any:
    """joblib.Parallel for the simulations: the Dask backend while a Client is current, else joblib's default.

    With Dask, every worker thread of the cluster is used whatever `n_jobs` is; results do not
    change, because the callers fix every seed before splitting the work.
    """
    from joblib import Parallel

    if current_client() is not None:
        return _DaskParallel(**kwargs)
    return Parallel(n_jobs=n_jobs, **kwargs)


__all__ = ["current_client", "parallel"]
