"""The public functions' docstrings: NumPy sections, and examples that run and give what they say.

The examples use the bundled sample and take seconds (the hazard example draws 199 bootstrap
replications, not 999). `run`'s full example executes eleven notebooks (minutes), so it is
marked ``+SKIP``; its second example (parameters checked before anything runs) is executed.
"""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

import analysis

PUBLIC = [
    "load_panel",
    "describe_panel",
    "fiscal_year_report",
    "trends_report",
    "firth_logit",
    "discrete_time_hazard",
    "read_survey",
    "run",
]


def test_public_surface_is_exactly_these_names():
    assert sorted(analysis.__all__) == sorted(PUBLIC)
    assert all(callable(getattr(analysis, name)) for name in analysis.__all__)
    with pytest.raises(AttributeError):
        analysis.no_such_name  # noqa: B018


@pytest.mark.parametrize("name", PUBLIC)
def test_docstring_has_numpy_sections(name):
    doc = inspect.getdoc(getattr(analysis, name)) or ""
    for section in ("Parameters", "Returns", "Examples"):
        assert f"\n{section}\n{'-' * len(section)}\n" in doc, (name, section)


@pytest.mark.parametrize("name", PUBLIC)
def test_docstring_examples_run(name):
    func = getattr(analysis, name)
    module = importlib.import_module(func.__module__)
    tests = doctest.DocTestFinder(recurse=False).find(func, name, module=module, globs=dict(vars(module)))
    examples = [e for t in tests for e in t.examples if not e.options.get(doctest.SKIP)]
    assert examples, f"{name}: no example that runs"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0 and result.attempted >= len(examples), f"{name}: {result}"


def test_a_wrong_example_fails():
    """Control: the runner used above does report a mismatch."""
    test = doctest.DocTestParser().get_doctest(">>> 1 + 1\n3\n", {}, "control", None, 0)
    runner = doctest.DocTestRunner()
    runner.run(test, out=lambda _: None)
    assert runner.summarize(verbose=False).failed == 1
