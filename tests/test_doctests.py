"""Run every docstring example in the package: a wrong example is a failing test."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import schedlab

#: The subpackages mapped from top-level folders (package-dir): an editable install does not
#: show them under ``schedlab.__path__``, so each is walked from its own path.
SUBPACKAGES = ("costmodel", "datasets", "policies", "predictors", "solvers", "seeds")


def _modules() -> list[str]:
    names = {info.name for info in pkgutil.walk_packages(schedlab.__path__, prefix="schedlab.")}
    for sub in SUBPACKAGES:
        pkg = importlib.import_module(f"schedlab.{sub}")
        names.add(pkg.__name__)
        names.update(
            info.name for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}.")
        )
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
