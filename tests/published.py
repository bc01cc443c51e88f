"""The published files of a run, hashed with what legitimately differs between two runs masked.

Shared by the tests that compare two runs of the sample byte for byte (Dask against local
workers, reused kernels against a fresh kernel per notebook).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

#: the index's links to printed files (analysis.site), absent after `run --no-pdf`, and its note
#: of how many reports have no PDF, present after it
_PRINTED_LINKS = (
    re.compile('<span class="alt-format">（(?:(?:・)?<a href="[^"]+\\.(?:pdf|png)">[^<]*</a>)+）</span>'.encode()),
    re.compile('、<a href="[^"]+\\.pdf">PDF</a>'.encode()),
    re.compile(b'<p class="table-note unprinted" role="note">.*?</p>\n'),
)


def published(project: Path, dataset: str = "sample", *, printed: bool = True) -> dict[str, str]:
    """sha256 of every file under reports/<dataset>/, with the volatile parts of a few masked.

    Masked, because they differ between any two runs (or any two project folders), executor or not:
    manifest timings and peak memory; the index's generation time; the finishing step's record
    of the files' modification times (.site-state.json); the project's absolute path (the
    injected output_dir) and the staging folder's pid; papermill's execution times and the random id
    of the injected-parameters cell; kernel logs (the kernels' own warnings). Everything else, PDFs
    and slide images included, must be byte-identical. `printed=False`: without the printed files
    (PDFs, slide images), the index's links to them and its note of reports without a PDF, to
    compare a `run --no-pdf` with any run.
    """
    base = project / "reports" / dataset
    out = {}
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base).as_posix()
        if not p.is_file() or rel in (".run.lock", ".site-state.json") or rel.startswith(".logs/"):
            continue
        if not printed and is_printed(rel):
            continue
        data = p.read_bytes().replace(str(project).encode(), b"<project>")
        if p.name == "manifest.json":
            m = json.loads(data)
            for key in ("started", "finished", "seconds", "peak_kernel_rss_mb"):
                m.pop(key)
            data = json.dumps(m, sort_keys=True).encode()
        elif p.suffix == ".ipynb":
            nb = json.loads(data)
            nb["metadata"].pop("papermill", None)
            for cell in nb["cells"]:
                cell.get("metadata", {}).pop("papermill", None)
                cell.get("metadata", {}).pop("execution", None)
                if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
                    cell["id"] = "injected"
            data = re.sub(rb"(\.staging/[\w-]+)-\d+", rb"\1-<pid>", json.dumps(nb, sort_keys=True).encode())
        elif rel == "index.html":
            data = re.sub(rb"<time datetime=\"[^\"]+\">[^<]+</time>", b"<time/>", data)
            for link in _PRINTED_LINKS if not printed else ():
                data = link.sub(b"", data)
        out[rel] = hashlib.sha256(data).hexdigest()
    return out


def is_printed(rel: str) -> bool:
    """A file the finishing step prints from a published page (PDFs, the summary's slide image)."""
    return rel.endswith(".pdf") or rel.endswith("/summary.png")
