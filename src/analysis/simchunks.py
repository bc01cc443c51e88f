"""The per-chunk work the simulations hand to joblib workers: numpy (and threadpoolctl) only.

A loky worker unpickles a task's function by importing its module. Kept here, apart from
analysis.power (scipy, pandas, statsmodels via analysis.crosstab) and analysis.models (firthmodels,
statsmodels, patsy), the Fisher-power and wild-bootstrap chunks start a worker by importing numpy
alone: about a second less CPU per worker. The code is what those modules ran before, unchanged.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

__all__ = ["boot_chunk", "chunk_rejections", "inverse_cdf"]

_BLAS_CONTROLLER: ThreadpoolController | None = None


def _single_blas_thread() -> Any:
    """BLAS on one thread, as analysis.models.single_blas_thread (see there for why).

    A controller of its own: created here it may see numpy's BLAS only (a worker that has not
    imported scipy), which is the only BLAS the bootstrap chunk calls; analysis.models keeps its
    controller, created after scipy is loaded, for the fits.
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def inverse_cdf(cdf_row: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Binomial draws by inversion: smallest k with CDF(k) > u."""
    return np.minimum(np.searchsorted(cdf_row, u, side="right"), len(cdf_row) - 1)


def chunk_rejections(
    seed_seq: np.random.SeedSequence, m: int, cdf1: np.ndarray, cdf0: np.ndarray, reject: np.ndarray
) -> np.ndarray:
    """Rejection counts for one chunk of m replications at every exposed rate in cdf1 (analysis.power)."""
    rng = np.random.default_rng(seed_seq)
    u = rng.random((2, m))
    c = inverse_cdf(cdf0, u[1])
    counts = np.empty(cdf1.shape[0], dtype=np.int64)
    for i, row in enumerate(cdf1):  # same uniforms at every rate: common random numbers
        a = inverse_cdf(row, u[0])
        counts[i] = int(reject[a, c].sum())
    return counts


def boot_chunk(indices: np.ndarray, points: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Wild-bootstrap score statistics for a block of weight draws (rows of ``points[indices]``).

    Float weights are made 128 rows at a time (a multiple of the row groups BLAS's gemv works
    in, so every product is bitwise the one of the whole block) to bound memory at any size.
    Runs with one BLAS thread (analysis.models).
    """
    with _single_blas_thread():
        num = np.empty(len(indices))
        den = np.empty(len(indices))
        u2 = u**2
        for a in range(0, len(indices), 128):
            weights = points[indices[a : a + 128]]
            num[a : a + 128] = weights @ u
            np.square(weights, out=weights)
            den[a : a + 128] = weights @ u2
        with np.errstate(invalid="ignore", divide="ignore"):
            return num / np.sqrt(den)
