"""What a load did: rows read, rows skipped (with their line numbers) and why.

A loader never drops a row silently. With ``on_error="raise"`` (the default) the first bad row
raises :class:`schedlab.errors.DataFormatError`; with ``on_error="skip"`` bad rows are left out and
listed here, and :func:`schedlab.datasets.load` also emits a :class:`SkippedRowsWarning`.

>>> import numpy as np
>>> r = LoadReport(path="t.csv", format="azure", rows_read=3, rows_loaded=2,
...                skipped_lines=np.array([3]),
...                problems=(RowProblem(line=3, field="ContextTokens", message="missing value"),))
>>> r.n_skipped, r.summary()
(1, "t.csv (azure): 2 of 3 rows loaded;
     1 bad row skipped (line 3, field 'ContextTokens': missing value)")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from schedlab.records import Workload

__all__ = ["LoadReport", "LoadResult", "RowProblem", "SkippedRowsWarning"]


class SkippedRowsWarning(UserWarning):
    """Emitted by :func:`schedlab.datasets.load` when ``on_error="skip"`` left rows out."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RowProblem:
    """One bad row: its 1-based line in the file (a CSV's header is line 1), the field and why."""

    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}"
        if self.field is not None:
            where += f", field {self.field!r}"
        return f"{where}: {self.message}"


def _empty() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadReport:
    """Accounting of one load.

    Parameters
    ----------
    path, format : the file and the format it was read as.
    rows_read : data rows seen (bad rows included; rows after ``end_s``, never read, are not).
    rows_loaded : rows in the returned workload.
    skipped_lines : 1-based file line of every bad row left out (``on_error="skip"``).
    problems : the first ``max_problems`` bad rows with the field and the reason.
    clipped_lines : lines whose 0-token count was read as 1 (``zero_tokens="clip"``).
    outside_window : valid rows left out because they fall outside ``[start_s, end_s)``.
    notes : how columns missing from the format were filled (e.g. no timestamps).
    """

    path: str
    format: str
    rows_read: int
    rows_loaded: int
    skipped_lines: np.ndarray = field(default_factory=_empty)
    problems: tuple[RowProblem, ...] = ()
    clipped_lines: np.ndarray = field(default_factory=_empty)
    outside_window: int = 0
    notes: tuple[str, ...] = ()

    @property
    def n_skipped(self) -> int:
        """Number of bad rows left out."""
        return int(self.skipped_lines.size)

    def summary(self) -> str:
        """One line for logs and warnings."""
        s = f"{self.path} ({self.format}): {self.rows_loaded} of {self.rows_read} rows loaded"
        if self.n_skipped:
            shown = "; ".join(str(p) for p in self.problems[:3])
            more = f"; {self.n_skipped - 3} more" if self.n_skipped > 3 else ""
            plural = "s" if self.n_skipped > 1 else ""
            s += f"; {self.n_skipped} bad row{plural} skipped ({shown}{more})"
        if self.clipped_lines.size:
            s += f"; {self.clipped_lines.size} zero token counts read as 1"
        if self.outside_window:
            s += f"; {self.outside_window} rows outside the time window"
        return s

    def to_dict(self) -> dict:
        """JSON-ready form (line lists included)."""
        return {
            "path": self.path,
            "format": self.format,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "n_skipped": self.n_skipped,
            "skipped_lines": self.skipped_lines.tolist(),
            "problems": [
                {"line": p.line, "field": p.field, "message": p.message} for p in self.problems
            ],
            "clipped_lines": self.clipped_lines.tolist(),
            "outside_window": self.outside_window,
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadResult:
    """A loaded :class:`~schedlab.records.Workload` and its :class:`LoadReport`."""

    workload: Workload
    report: LoadReport
