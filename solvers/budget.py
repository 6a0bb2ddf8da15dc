"""Wall-clock budgets: a solver's time limit bounds the whole call (building the model, solving,
computing bounds), not only the solver's search.

A :class:`Budget` is started with the call; model builders check it inside their loops and raise
:class:`OutOfTime` when it runs out, and each later phase gets only what is left.

>>> b = Budget(5.0)
>>> 0 < b.left() <= 5.0
True
>>> Budget(0.0).check("building the model")
Traceback (most recent call last):
...
schedlab.solvers.budget.OutOfTime: the time limit of 0 s ran out while building the model
"""

from __future__ import annotations

import math
import time

__all__ = ["Budget", "OutOfTime"]


class OutOfTime(TimeoutError):
    """A phase of a solve or bound ran past the call's time limit."""


class Budget:
    """``seconds`` of wall-clock time from now (``None``: unlimited)."""

    __slots__ = ("_end", "seconds")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._end = math.inf if seconds is None else time.perf_counter() + seconds

    def left(self) -> float:
        """Seconds left (``inf`` when unlimited, never below 0)."""
        return max(0.0, self._end - time.perf_counter())

    def check(self, what: str) -> None:
        """Raise :class:`OutOfTime` (naming ``what`` was under way) if the budget has run out."""
        if time.perf_counter() >= self._end:
            raise OutOfTime(f"the time limit of {self.seconds:g} s ran out while {what}")
