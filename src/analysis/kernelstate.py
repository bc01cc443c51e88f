"""Inside a reused notebook kernel: record a fresh kernel's state, reset to it, prove the reset worked.

The runner (analysis.kernels) reuses one kernel for several notebooks of a worker, so the
scientific stack is imported once per worker instead of once per notebook. That is only
allowed while the kernel is verifiably as clean as a fresh one. Right after start-up and the
notebooks' own imports, :func:`record_baseline` records the process state a notebook can see
or change; after each notebook :func:`reset_and_verify` resets what is resettable (user
namespace and history, execution count, figures, matplotlib rcParams and so the seaborn theme,
warnings filters and "shown once" registries, the global random generators, the
``functools`` caches of the analysis package) and then compares everything recorded against the
baseline. Any difference raises :class:`KernelNotClean`, and the runner starts a fresh kernel.

Kept across notebooks, as one process computing several reports keeps them: the file caches of
``analysis.filecache`` (keyed by the files' content and everything else the value depends on,
handed out as copies) and the caches in :data:`KEPT_CACHES` (pure functions of their
arguments). A hit gives what a fresh kernel computes, so the files are the same; re-reading
the surveys and the codebook was most of what a notebook cost beyond its report.

Checked without being reset (a notebook that changes them costs a fresh kernel): pandas and
numpy options, numpy error handling, environment variables, working folder, ``sys.path``,
locale, standard streams and hooks, logging, IPython display formatters and event callbacks,
BLAS thread limits, and the mutable module-level values (dicts, lists, sets) of the analysis
package. Modules imported during a notebook stay imported; the notebooks import the whole
analysis stack in their first code cell, which the baseline already includes.

Runs in the kernel, called with ``__import__("analysis.kernelstate")`` from a silent
execution, so it binds no name in the user namespace. Imports only the standard library at
module level.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import copy
import gc
import locale
import logging
import os
import random
import sys
import warnings
from typing import Any

from .errors import AnalysisError

#: The warm-up: what the notebooks import in their first code cell, then what they import later
#: (so those modules' import-time effects and module-level values are part of the baseline), then
#: the matplotlib backend that pyplot loads at the first figure (the inline backend registers its
#: PNG formatter and post-execute hook then; rcParams it leaves alone).
WARMUP_CODE = """\
from analysis import association, report
import analysis.htmlexport, analysis.profiles, analysis.recovery, analysis.schema, analysis.sensitivity
import pandera.pandas  # imported by analysis.schema on first validation; sets two environment variables
__import__("matplotlib.pyplot").pyplot._get_backend_mod()
"""

#: functools caches that a reset keeps: their values depend only on their arguments (numbers;
#: for the text extents, the text settings too), and callers only read them.
KEPT_CACHES = frozenset(
    {
        "analysis.crosstab._chan_zhang_interval",
        "analysis.crosstab._log_choose",
        "analysis.power._fisher_pvalues_cached",
        "analysis.plots._agg_text_metrics",
    }
)
_FILE_CACHES = "analysis.filecache.CACHES"  # compared by kind, not content (see _module_values)

_BASELINE: dict[str, Any] | None = None
_RC: dict[str, Any] | None = None
_FILTERS: list[Any] | None = None


class KernelNotClean(AnalysisError):
    """A reused kernel differs from a fresh kernel's recorded state after the reset."""


def _shell() -> Any:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise KernelNotClean("IPython カーネルの外です", "not inside an IPython kernel")
    return shell


def _module_values() -> dict[str, str]:
    """repr of each mutable module-level value (dict, list, set) of the analysis package."""
    out: dict[str, str] = {}
    for name, mod in sorted(sys.modules.items()):
        if mod is None or not (name == "analysis" or name.startswith("analysis.")) or name == __name__:
            continue
        for attr, value in sorted(vars(mod).items()):
            if type(value) in (dict, list, set) and not attr.startswith("__"):
                if f"{name}.{attr}" == _FILE_CACHES:  # kept: only that it holds file caches and nothing else
                    out[_FILE_CACHES] = repr(sorted({type(c).__qualname__ for c in value.values()} - {"FileCache"}))
                    continue
                try:
                    out[f"{name}.{attr}"] = repr(value)
                except Exception as exc:
                    out[f"{name}.{attr}"] = f"<repr failed: {type(exc).__name__}>"
    return out


def _clear_caches() -> None:
    """Empty the functools caches (lru_cache, cache) of the analysis package's modules, but
    those of KEPT_CACHES; the file caches of ``analysis.filecache`` stay (content-keyed)."""
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name == "analysis" or name.startswith("analysis.")):
            continue
        for attr, value in list(vars(mod).items()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == name and f"{name}.{attr}" not in KEPT_CACHES:
                clear()


def _state() -> dict[str, Any]:
    """The recorded state: plain values, compared with ==."""
    shell = _shell()
    state: dict[str, Any] = {
        "user_ns": sorted(shell.user_ns),
        "execution_count": shell.execution_count,
        "environ": dict(os.environ),
        "cwd": os.getcwd(),
        "sys.path": list(sys.path),
        "locale": locale.setlocale(locale.LC_ALL, None),
        "streams": [sys.stdout, sys.stderr, sys.stdin, sys.displayhook, sys.excepthook],  # == (bound methods too)
        "logging": _logging_state(),
        "formatters": {
            mime: sorted(map(repr, f.type_printers)) + sorted(map(repr, f.deferred_printers))
            for mime, f in shell.display_formatter.formatters.items()
        },
        "events": {name: len(cbs) for name, cbs in shell.events.callbacks.items()},
        "warnings": repr(warnings.filters),
        "analysis": _module_values(),
    }
    np = sys.modules.get("numpy")
    if np is not None:
        state["numpy"] = [np.geterr(), repr(np.get_printoptions())]
    pd = sys.modules.get("pandas")
    if pd is not None:
        state["pandas"] = _pandas_options(pd)
    mpl = sys.modules.get("matplotlib")
    if mpl is not None:
        state["rcParams"] = {k: repr(v) for k, v in dict(mpl.rcParams).items()}
        plt = sys.modules.get("matplotlib.pyplot")
        state["figures"] = plt.get_fignums() if plt is not None else []
    tpc = sys.modules.get("threadpoolctl")
    if tpc is not None:
        state["threadpools"] = sorted(
            (i.get("internal_api", ""), i.get("filepath", ""), i.get("num_threads")) for i in tpc.threadpool_info()
        )
    return state


def _logging_state() -> list[Any]:
    root = logging.getLogger()
    return [root.level, [type(h).__name__ for h in root.handlers], logging.root.manager.disable]


def _pandas_options(pd: Any) -> str:
    """Every pandas option's value (pandas keeps them in one nested dict)."""
    try:
        from pandas._config import config

        return repr(config._global_config)
    except Exception:
        return ""


def _reset() -> None:
    shell = _shell()
    # The notebook's names and figures go first: the full collection IPython's reset runs (when
    # it flushes its output cache, before it empties the namespace) then frees the notebook's
    # objects instead of scanning them alive, and the collection at the end finds little left.
    hidden = shell.user_ns_hidden
    for name in [n for n in shell.user_ns if n not in hidden and not n.startswith("__")]:
        del shell.user_ns[name]
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")
    shell.reset(new_session=True)
    mpl = sys.modules.get("matplotlib")
    if mpl is not None and _RC is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mpl.rcParams.clear()
            dict.update(mpl.rcParams, copy.deepcopy(_RC))  # validated values, as recorded
    if _FILTERS is not None:
        warnings.filters[:] = list(_FILTERS)  # type: ignore[index]  # a list at run time
    # "shown once" bookkeeping: a fresh kernel has shown no warning yet
    warnings.onceregistry.clear()  # type: ignore[attr-defined]  # undeclared in typeshed
    for mod in list(sys.modules.values()):
        registry = getattr(mod, "__warningregistry__", None)
        if isinstance(registry, dict):
            registry.clear()
    getattr(warnings, "_filters_mutated", lambda: None)()
    # global generators: a fresh kernel seeds them from the OS
    random.seed()
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed()
    _clear_caches()
    gc.collect()
    if _BASELINE is not None:
        # what survives a reset (modules a notebook imported, kept caches) lives as long as the
        # kernel: exempt it from collection too, as record_baseline does the warm-up's imports
        # (each full collection scanned it again: ~0.01 s each, two per reset and one or two per
        # report; an object frozen here that later becomes cyclic garbage is never freed, e.g. an
        # entry a bounded cache evicts)
        gc.freeze()


def record_baseline() -> None:
    """After start-up and the warm-up imports: reset once, then record the state to return to."""
    global _BASELINE, _RC, _FILTERS
    _RC, _FILTERS = None, None
    # The imported stack (some 200,000 objects) is never garbage: exempt it from collection, so
    # the reset's two full collections here, each reset's and those during a notebook scan only
    # what notebooks create (~0.05-0.07 s each otherwise; gc.freeze, meant for this; results do
    # not depend on it). Not collected first: the warm-up leaves some 50 garbage objects, which
    # stay (a full collection to free them would cost as much as the two it saves).
    gc.freeze()
    _reset()
    mpl = sys.modules.get("matplotlib")
    _RC = copy.deepcopy(dict(mpl.rcParams)) if mpl is not None else None
    _FILTERS = list(warnings.filters)
    _BASELINE = _state()
    gc.freeze()  # and what the reset and the record left


def differences() -> list[str]:
    """Names of the recorded items that differ from the baseline (empty: clean)."""
    if _BASELINE is None:
        return ["no baseline"]
    now = _state()
    out = []
    for key in sorted(set(_BASELINE) | set(now)):
        old, new = _BASELINE.get(key), now.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            out.append(f"{key}: {', '.join(map(str, keys[:5]))}{' …' if len(keys) > 5 else ''}")
        else:
            out.append(key)
    return out


def reset_and_verify() -> None:
    """Reset the kernel to the baseline; KernelNotClean (naming what differs) if it is not."""
    _reset()
    diff = differences()
    if diff:
        raise KernelNotClean(
            f"カーネルを初期状態に戻せませんでした: {'; '.join(diff)}",
            f"the kernel could not be reset to a fresh kernel's state: {'; '.join(diff)}",
        )


__all__ = ["KEPT_CACHES", "WARMUP_CODE", "KernelNotClean", "differences", "record_baseline", "reset_and_verify"]
