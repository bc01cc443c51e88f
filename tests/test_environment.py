"""environment.yml and pyproject.toml must list the same dependencies with the same bounds."""

import re
import tomllib

import yaml


def _norm(req: str) -> tuple[str, str]:
    # extras are dropped: conda-forge's `dask` is pip's `dask[distributed]`
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject(root):
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = {_norm(r) for r in project["dependencies"]}
    for extra in ("test", "lab", "dask"):
        wanted |= {_norm(r) for r in project["optional-dependencies"][extra]}
    env = yaml.safe_load((root / "environment.yml").read_text(encoding="utf-8"))
    listed = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            listed |= {_norm(r) for r in dep["pip"] if not r.startswith("-")}
        elif not dep.startswith(("python", "pip")) or dep.startswith("python-"):
            listed.add(_norm(dep))
    assert listed == wanted


def test_ci_runs_the_readme_test_command(root):
    ci = (root / ".ci" / "run").read_text(encoding="utf-8")
    readme = (root / "README.md").read_text(encoding="utf-8")
    commands = [line.strip() for line in ci.splitlines() if line.strip().startswith("make")]
    assert commands == ["make test full"]  # the suite, then the long forms
    quick_start = readme[readme.index("## Quick start") :].split("```")[1]
    assert "make report" in quick_start and "make test full" in quick_start


def test_make_test_runs_in_parallel_and_keeps_each_notebook_on_one_worker(root):
    """nbval's cells of one notebook share a kernel: split across workers, they fail."""
    makefile = (root / "Makefile").read_text(encoding="utf-8")
    pytest_line = next(line for line in makefile.splitlines() if "-m pytest" in line)
    assert pytest_line.startswith("PYTEST :=")
    assert "-n $(TEST_WORKERS)" in pytest_line and "--dist loadfile" in pytest_line
    assert "TEST_WORKERS ?= 2" in makefile
    recipes = {target: makefile.split(f"\n{target}:", 1)[1].split("\n")[1].strip() for target in ("test", "full")}
    # make test: every check in its fast form; make full: the long forms; CI runs both
    assert recipes == {"test": "$(PYTEST) -m 'not slow and not full'", "full": "$(PYTEST) -m 'full and not slow'"}
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "pytest -n 2 --dist loadfile" in readme
