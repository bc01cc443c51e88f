"""Published outputs byte for byte: sha256 of every file under reports/<dataset>/ after a fresh run.

Used to show that a refactor changes no published file (on demand; not part of the test suite,
which re-runs a smaller part of this in tests/test_sections.py).

    # record the hashes of a fresh run of this checkout (or of another project tree with --tree)
    .venv/bin/python benchmarks/output_hashes.py record after.json
    .venv/bin/python benchmarks/output_hashes.py record before.json --tree /tmp/baseline
    # (--keep DIR also copies the reports; `hash DIR out.json` re-hashes such a copy)
    # compare two records: lists every file added, removed or changed; exit 1 if any
    .venv/bin/python benchmarks/output_hashes.py compare before.json after.json
    # both in one go: `git archive REF` into a temp dir, run it and this checkout, compare
    .venv/bin/python benchmarks/output_hashes.py against HEAD~1

Each run happens in a fresh copy of a project tree (data, notebooks, docs, pyproject.toml) with
ANALYSIS_ROOT pointing at it; for another tree than this checkout (`--tree`, e.g. `git archive`
output) its src/ goes first on PYTHONPATH (the notebook kernels inherit it), so a baseline runs
with its own code and notebooks without a second venv.

Every file's sha256 is recorded; the comparison uses the bytes without what legitimately differs
between two runs of the same code (see _stable_bytes): manifest.json's clock times, memory and
code hash, executed notebooks' metadata, and the clock printed in PDFs and index.html.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["compare", "hash_tree", "record", "run_fresh"]

#: Keys of manifest.json whose values change from run to run (clock, memory, code and commit identity).
VOLATILE_MANIFEST_KEYS = frozenset(
    {"started", "finished", "seconds", "peak_kernel_rss_mb", "code_hash", "git_commit", "failed_at"}
)
#: Files whose bytes hold the run's clock and are not compared (the lock holds a process id,
#: kernel logs the run's warnings; PDFs print their generation time: their HTML is compared;
#: .site-state.json digests the files' modification times, not published, only the runner reads it).
UNCOMPARED = (".run.lock", ".pdf", ".log", ".site-state.json")
#: index.html shows the newest manifest's finish time and the (short) code and input hashes.
_INDEX_VOLATILE = (re.compile(rb'<time datetime="[^"]*">[^<]*</time>'), re.compile(rb"\b[0-9a-f]{12,64}\b"))


def fresh_project(dest: Path, tree: Path = ROOT) -> Path:
    """A minimal copy of the project `tree` to run the command line against (like tests/conftest.py)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(tree / "data", dest / "data", ignore=shutil.ignore_patterns("processed", "national-synthetic"))
    shutil.copytree(tree / "notebooks", dest / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(tree / "docs", dest / "docs")
    shutil.copy2(tree / "pyproject.toml", dest / "pyproject.toml")
    return dest


def run_fresh(project: Path, dataset: str, years: str, src: Path | None = None, jobs: int = 2) -> None:
    """`python -m analysis run` in `project`; `src` (a source tree's src/) shadows the installed package."""
    env = {**os.environ, "ANALYSIS_ROOT": str(project)}
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])
    cmd = [sys.executable, "-m", "analysis", "run", "--dataset", dataset, "--no-progress", "--jobs", str(jobs)]
    if years:
        cmd += ["--years", years]
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"run failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def _stable_bytes(path: Path) -> bytes:
    """The bytes compared between runs: the file's, minus what legitimately changes per run.

    manifest.json: without VOLATILE_MANIFEST_KEYS, and with the hash of the notebook file among
    its inputs replaced (editing a notebook's source changes it; its outputs are compared in the
    executed notebook). Executed notebooks (.ipynb): the outputs of every cell only (papermill
    writes timestamps into the metadata). The dataset's index.html: without its generation time
    and hashes. Files matching UNCOMPARED: nothing.
    """
    data = path.read_bytes()
    if path.name.endswith(UNCOMPARED):
        return b""
    if path.name == "index.html" and path.parent.name != "profiles":
        for pattern in _INDEX_VOLATILE:
            data = pattern.sub(b"<volatile>", data)
        return data
    if path.suffix == ".ipynb":
        nb = json.loads(data)
        return json.dumps([c.get("outputs", []) for c in nb["cells"]], sort_keys=True).encode()
    if path.name != "manifest.json":
        return data

    def strip(obj: object) -> object:
        if isinstance(obj, dict):
            return {
                k: "<notebook>" if k.startswith("notebooks/") else strip(v)
                for k, v in obj.items()
                if k not in VOLATILE_MANIFEST_KEYS
            }
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    return json.dumps(strip(json.loads(data)), sort_keys=True, ensure_ascii=False).encode()


def hash_tree(folder: Path) -> dict[str, dict[str, str]]:
    """{relative path: {"sha256": of the bytes, "stable": of the bytes without volatile fields}}."""
    out: dict[str, dict[str, str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        out[rel] = {
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "stable": hashlib.sha256(_stable_bytes(path)).hexdigest(),
        }
    return out


def record(
    dataset: str = "sample", years: str = "", tree: Path = ROOT, keep: Path | None = None
) -> dict[str, dict[str, str]]:
    """Hashes of every file under reports/<dataset>/ after a fresh run of `tree` in a temporary project.

    `keep`: copy the reports there too (to look at a difference, or re-hash with `hash`).
    """
    with tempfile.TemporaryDirectory(prefix="output-hashes-") as tmp:
        project = fresh_project(Path(tmp) / "project", tree)
        run_fresh(project, dataset, years, None if tree.resolve() == ROOT else tree / "src")
        if keep is not None:
            shutil.copytree(project / "reports" / dataset, keep)
        return hash_tree(project / "reports" / dataset)


def compare(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> list[str]:
    """Differences as lines ("+ added", "- removed", "~ changed"); empty when byte-identical."""
    lines = [f"- {k}" for k in sorted(before.keys() - after.keys())]
    lines += [f"+ {k}" for k in sorted(after.keys() - before.keys())]
    lines += [f"~ {k}" for k in sorted(before.keys() & after.keys()) if before[k]["stable"] != after[k]["stable"]]
    return lines


def _report(before: dict, after: dict) -> int:
    diff = compare(before, after)
    exact = sum(before[k]["sha256"] == after[k]["sha256"] for k in before.keys() & after.keys())
    print(f"{len(before)} files before, {len(after)} after; {exact} byte-identical, {len(diff)} differ")
    for line in diff:
        print(line)
    return 1 if diff else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("record", "against"):
        s = sub.add_parser(name)
        if name == "record":
            s.add_argument("out", type=Path)
            s.add_argument("--tree", type=Path, default=ROOT, help="another project tree (src/, notebooks/, data/)")
            s.add_argument("--keep", type=Path, default=None, help="also copy the reports to this new folder")
        else:
            s.add_argument("ref", help="git revision to compare this checkout with")
        s.add_argument("--dataset", default="sample")
        s.add_argument("--years", default="", help="e.g. 2021-2025 (default: all)")
    h = sub.add_parser("hash", help="hash a reports folder kept with --keep")
    h.add_argument("folder", type=Path)
    h.add_argument("out", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = p.parse_args(argv)
    if args.command == "record":
        hashes = record(args.dataset, args.years, args.tree.resolve(), args.keep)
        args.out.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{len(hashes)} files -> {args.out}")
        return 0
    if args.command == "hash":
        hashes = hash_tree(args.folder)
        args.out.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return 0
    if args.command == "compare":
        return _report(json.loads(args.before.read_text("utf-8")), json.loads(args.after.read_text("utf-8")))
    with tempfile.TemporaryDirectory(prefix="output-hashes-ref-") as tmp:
        archive = subprocess.run(["git", "archive", args.ref], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        before = record(args.dataset, args.years, Path(tmp))
    return _report(before, record(args.dataset, args.years))


if __name__ == "__main__":
    raise SystemExit(main())
