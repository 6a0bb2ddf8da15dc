"""Discover the seed modules and run them, checking each against the contract.

A seed module is any public module of :mod:`schedlab.seeds` that defines ``PAPER`` (its name, equal
to the module name), ``CLAIMS`` (a tuple of :class:`~schedlab.seeds.contract.Claim`) and
``run(*, quick=False, plot_dir=None, seed=0) -> SeedReport``. Adding a seed is adding one file;
nothing else is edited. Seed modules keep heavy imports inside ``run()``, so discovery is cheap.

>>> "fastserve" in seed_names()
True
>>> get_seed("fastserv")
Traceback (most recent call last):
...
ValueError: Unknown seed paper 'fastserv'. Close matches: 'fastserve'...
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from os import PathLike
from types import ModuleType

from schedlab.errors import check_nonneg_int, unknown_name_error
from schedlab.seeds.contract import Claim, SeedReport

__all__ = ["seed_names", "get_seed", "has_full_mode", "run_seed"]

_PACKAGE = "schedlab.seeds"


def _is_seed(module: ModuleType) -> bool:
    return hasattr(module, "PAPER") and hasattr(module, "CLAIMS") and callable(
        getattr(module, "run", None)
    )


def seed_names() -> list[str]:
    """Names of every seed module found in :mod:`schedlab.seeds`, sorted."""
    package = importlib.import_module(_PACKAGE)
    names = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.ispkg:
            continue
        if _is_seed(importlib.import_module(f"{_PACKAGE}.{info.name}")):
            names.append(info.name)
    return sorted(names)


def get_seed(name: str) -> ModuleType:
    """The seed module called ``name``; an unknown name raises ``ValueError`` listing the known."""
    known = seed_names()
    if name not in known:
        raise unknown_name_error("seed paper", name, known)
    module = importlib.import_module(f"{_PACKAGE}.{name}")
    if module.PAPER != name or not all(isinstance(c, Claim) for c in module.CLAIMS):
        raise ValueError(
            f"Seed module {module.__name__} breaks the contract: PAPER must equal the module name "
            f"({name!r}, got {module.PAPER!r}) and CLAIMS must be Claim records."
        )
    return module


def has_full_mode(name: str) -> bool:
    """Whether the seed ``name`` has a ``full`` mode (its default run is smaller than the
    paper's).

    >>> has_full_mode("fastserve"), has_full_mode("mooncake")
    (False, True)
    """
    return "full" in inspect.signature(get_seed(name).run).parameters


def run_seed(
    name: str,
    *,
    quick: bool = False,
    plot_dir: str | PathLike[str] | None = None,
    seed: int = 0,
    full: bool = False,
) -> SeedReport:
    """Run the seed ``name`` and check its report against the contract.

    ``full`` asks for the paper's scale from a seed whose default run is smaller (its ``run``
    takes ``full``); for the others the default run is the paper's scale and ``full`` changes
    nothing. The report must be a :class:`SeedReport` for ``name`` that measures every declared
    claim, in the declared order.
    """
    check_nonneg_int(seed, "seed", "run_seed")
    if quick and full:
        raise ValueError("run_seed takes quick=True or full=True, not both.")
    module = get_seed(name)
    kwargs = {"full": True} if full and has_full_mode(name) else {}
    report = module.run(quick=bool(quick), plot_dir=plot_dir, seed=seed, **kwargs)
    if not isinstance(report, SeedReport) or report.paper != name:
        raise ValueError(
            f"Seed module {module.__name__}.run must return a SeedReport for {name!r}. "
            f"Got {report!r:.200}."
        )
    declared = [c.name for c in module.CLAIMS]
    reported = [r.claim.name for r in report.claims]
    if reported != declared:
        raise ValueError(
            f"Seed module {module.__name__}.run reported claims {reported}, but CLAIMS declares "
            f"{declared}: every declared claim must be measured and reported (a miss included)."
        )
    return report
