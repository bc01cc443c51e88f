"""reports/index.html: one page linking every dataset's site (e.g. the 47 prefectures of a national run).

Written by `run --datasets ...` / `run --all`. It lives beside the dataset folders, in reports/
itself: a dataset name cannot contain a dot, so reports/index.html never collides with a dataset.
Each row reads the dataset's own outputs (manifests, failure records), so a later run of a subset
keeps the other rows.
"""

from __future__ import annotations

import json
import re
from datetime import UTC
from pathlib import Path
from typing import Any

from .datasets import NAME_RE, DatasetError, load_dataset
from .htmlexport import TEMPLATE_DIR, find_offline_violations, write_text_atomic
from .site import _JST, _parse_time

OVERVIEW_TITLE_JA = "データセット一覧 — 包括的な支援体制の整備に関する市町支援の評価"
#: over the list when every dataset is synthetic, and when only some are (those rows say 架空データ)
ALL_SYNTHETIC_BANNER_JA = (
    "架空データ：この一覧のデータセットはすべてプログラムで作成した架空の回答によるもので、"
    "実在の自治体の回答・実績とは関係ありません。"
)
SOME_SYNTHETIC_BANNER_JA = (
    "「架空データ」と記したデータセットは、プログラムで作成した架空の回答によるもので、"
    "実在の自治体の回答・実績とは関係ありません。"
)
_FY = re.compile(r"^FY(\d{4})$")


def _manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _row(reports: Path, name: str) -> dict[str, Any]:
    base = reports / name
    try:
        meta = load_dataset(name).meta
    except DatasetError:
        meta = {}
    manifests = [p for p in base.rglob("manifest.json") if ".staging" not in p.parts and ".failed" not in p.parts]
    ok = [m for m in map(_manifest, manifests) if m.get("status") == "ok"]
    times = [t for t in (_parse_time(m.get("finished")) for m in ok) if t is not None]
    years = sorted((int(m.group(1)), d) for d in base.iterdir() if (m := _FY.match(d.name)) and d.is_dir())
    summary = _manifest(years[-1][1] / "manifest.json").get("summary", {}) if years else {}
    failed = base / ".failed"
    return {
        "name": name,
        "href": f"{name}/index.html",
        "label": meta.get("label_ja") or name,
        "synthetic": bool(meta.get("synthetic")),
        "pref_code": meta.get("prefecture_code") or "—",
        "latest": f"FY{years[-1][0]}" if years else "—",
        "n_municipalities": summary.get("n_municipalities", "—"),
        "n_jusou": summary.get("n_jusou", "—"),
        "n_full": summary.get("n_full", "—"),
        "n_ok": len(ok),
        "n_failed": len(list(failed.glob("*.json"))) if failed.is_dir() else 0,
        "newest": max(times) if times else None,
    }


def _synthetic(rows: list[dict[str, Any]]) -> str:
    """'all', 'some' or 'none' of the listed datasets synthetic: a real dataset is never called fictional."""
    flags = [bool(r["synthetic"]) for r in rows]
    return "all" if flags and all(flags) else "some" if any(flags) else "none"


def build_overview(reports: Path, names: list[str] | None = None) -> Path:
    """Write reports/index.html linking every reports/<name>/index.html (and `names`, if given)."""
    import jinja2

    reports = Path(reports)
    found = {p.parent.name for p in reports.glob("*/index.html") if NAME_RE.fullmatch(p.parent.name)}
    found |= {n for n in names or () if (reports / n / "index.html").is_file()}
    rows = [_row(reports, n) for n in sorted(found)]
    newest = max((r["newest"] for r in rows if r["newest"] is not None), default=None)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR / "site")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    html = env.get_template("overview.html.j2").render(
        title=OVERVIEW_TITLE_JA,
        rows=rows,
        synthetic=_synthetic(rows),
        # the newest report's time, never the clock: the page is the same when nothing changed
        generated_ja=newest.astimezone(_JST).strftime("%Y年%m月%d日 %H:%M（日本時間）") if newest else None,
        generated_iso=newest.astimezone(UTC).isoformat() if newest else None,
        banner=ALL_SYNTHETIC_BANNER_JA,
        banner_some=SOME_SYNTHETIC_BANNER_JA,
    )
    violations = find_offline_violations(html)
    if violations:  # pragma: no cover - guards future template edits
        raise ValueError("reports/index.html is not self-contained: " + "; ".join(violations))
    return write_text_atomic(reports / "index.html", html)


__all__ = ["OVERVIEW_TITLE_JA", "build_overview"]
