"""Progress bars on the loops a user waits on (a reproduction's sweep, ``gap``'s instances, a
calibration's fit), drawn by tqdm on stderr, and off unless asked for.

The command line turns them on when stderr is a terminal, unless ``--quiet`` is given or
``--json`` writes to a pipe or file; in Python, wrap the call in :func:`showing_progress`::

    from schedlab.progress import showing_progress
    from schedlab.seeds.registry import run_seed

    with showing_progress():
        run_seed("fastserve")

Library code marks a loop with :func:`progress` (an iterable) or :func:`counter` (a callback for
work that is not a loop of its own, e.g. an optimiser's evaluations); both cost nothing when
bars are off.

>>> list(progress(range(3), desc="work"))   # off: the iterable itself
[0, 1, 2]
>>> with counter("fit") as tick:
...     tick()
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

__all__ = ["counter", "enabled", "progress", "showing_progress"]

T = TypeVar("T")

_ON: ContextVar[bool] = ContextVar("schedlab_progress", default=False)


def enabled() -> bool:
    """Whether progress bars are drawn here."""
    return _ON.get()


@contextmanager
def showing_progress(on: bool = True) -> Iterator[None]:
    """Draw progress bars (``on=False``: none) for the code inside the ``with`` block."""
    token = _ON.set(bool(on))
    try:
        yield
    finally:
        _ON.reset(token)


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None) -> Iterable[T]:
    """``iterable``, drawn as a bar labelled ``desc`` when bars are on."""
    if not _ON.get():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, leave=False,
                dynamic_ncols=True)


@contextmanager
def counter(desc: str, total: int | None = None) -> Iterator[Callable[[], None]]:
    """A callback advancing a bar labelled ``desc`` by one step (a no-op when bars are off)."""
    if not _ON.get():
        yield lambda: None
        return
    from tqdm import tqdm

    bar = tqdm(desc=desc, total=total, file=sys.stderr, leave=False, dynamic_ncols=True)
    try:
        yield lambda: bar.update(1)
    finally:
        bar.close()
