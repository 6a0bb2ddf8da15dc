"""Run every docstring example in the package: a wrong example is a failing test."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import schedlab


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(schedlab.__path__, prefix="schedlab."):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
