"""Where the project's folders are, found from the package itself or the working directory.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository root: $ANALYSIS_ROOT, else the first parent with pyproject.toml and data/.

    Notebooks run with papermill (caller's cwd) or nbval (notebook's cwd) must both find it.
    """
    env = os.environ.get("ANALYSIS_ROOT")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd(), Path(__file__).resolve()):
        for p in (start, *start.parents):
            if (p / "pyproject.toml").is_file() and (p / "data").is_dir():
                return p
    raise FileNotFoundError(
        "プロジェクトのルート（pyproject.toml と data/ のあるフォルダ）が見つかりません。"
        "ANALYSIS_ROOT を設定してください / project root not found; set ANALYSIS_ROOT"
    )


def data_dir() -> Path:
    return project_root() / "data"


def raw_dir(dataset: str) -> Path:
    return data_dir() / "raw" / dataset


def reports_dir(dataset: str) -> Path:
    return project_root() / "reports" / dataset


__all__ = ["data_dir", "project_root", "raw_dir", "reports_dir"]
