"""Plot conventions shared by every figure schedlab writes (reproductions, trace summaries, cost
model reports); matplotlib is imported only by the functions that draw.

Log axes are labelled with plain numbers (``0.05``, ``1``, ``20``, ``10k``) instead of matplotlib's
default powers of ten, with ticks at 1, 2 and 5 per decade when the axis spans three decades or
fewer; every log axis in the package is set through :func:`log_axis`.

>>> format_tick(0.05), format_tick(1.0), format_tick(20.0), format_tick(12_000.0), format_tick(3e6)
('0.05', '1', '20', '12k', '3M')
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["format_tick", "log_axis"]


def format_tick(value: float, _pos: object = None) -> str:
    """A log-axis tick as a short plain number: ``%g`` below 10,000, then ``k`` and ``M``."""
    if not math.isfinite(value) or value <= 0:
        return ""
    for scale, suffix in ((1e6, "M"), (1e4, "k")):
        if value >= scale:
            shown = value / (1e3 if suffix == "k" else scale)
            return f"{shown:g}{suffix}"
    return f"{value:g}"


def log_axis(ax: Any, axis: str = "y") -> None:
    """Put ``ax``'s ``axis`` (``"x"`` or ``"y"``) on a log scale with readable tick labels. Call
    it after drawing, so the ticks fit the data's span.

    >>> from matplotlib.figure import Figure
    >>> ax = Figure().subplots()
    >>> _ = ax.plot([1, 2, 3], [0.02, 0.3, 4.0])
    >>> log_axis(ax)
    >>> ax.figure.canvas.draw()
    >>> lo, hi = ax.get_ylim()
    >>> [t.get_text() for t in ax.get_yticklabels() if lo <= t.get_position()[1] <= hi]
    ['0.02', '0.05', '0.1', '0.2', '0.5', '1', '2', '5']
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if axis not in ("x", "y"):
        raise ValueError(f"The 'axis' parameter of log_axis must be 'x' or 'y'. Got {axis!r}.")
    getattr(ax, f"set_{axis}scale")("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= 3 else (1.0,)))
    target.set_major_formatter(FuncFormatter(format_tick))
    target.set_minor_formatter(NullFormatter())
