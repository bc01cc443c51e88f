"""CONTRIBUTING.md's module map stays in sync with src/analysis/, and every module declares `__all__`."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "analysis"
MODULES = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py"))


def test_there_are_modules_to_check():
    assert "report.py" in MODULES and "survey/_reader.py" in MODULES and len(MODULES) > 40


@pytest.mark.parametrize("module", MODULES)
def test_module_is_in_the_map(module):
    """One table row per module: | `module` | what it owns |"""
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    row = re.search(rf"^\| `{re.escape(module)}` \| (.+) \|$", text, flags=re.MULTILINE)
    assert row and len(row.group(1).strip()) > 10, f"{module} has no line in CONTRIBUTING.md's module map"


def test_map_names_no_module_that_does_not_exist():
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([\w/]+\.py)` \|", text, flags=re.MULTILINE))
    assert listed == set(MODULES), listed ^ set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_module_declares_all(module):
    """Every module says what it exports, and exports only names it has."""
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    assigned = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    if module == "io.py":  # replaces itself by survey._reader in sys.modules, which declares __all__
        assert "_reader" in (PACKAGE / module).read_text(encoding="utf-8")
        return
    assert "__all__" in assigned, f"{module} has no __all__"
    if module == "__main__.py":  # importing it runs the command line
        return
    name = "analysis." + module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    mod = importlib.import_module(name.removesuffix(".__init__"))
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"{module}: __all__ names {missing} it does not have"
