"""Vectorised checks of one chunk of raw columns, naming the first bad row of each kind.

Each check takes a pandas Series of raw values (numbers, strings or missing), or a typed numpy
column from the byte parser (:mod:`schedlab.datasets.fast_csv`), and returns the clean numpy
column plus a boolean mask of bad rows and a function that words the problem of one row.
:class:`Problems` gathers the bad rows of a whole file in order; in ``raise`` mode it raises
:class:`~schedlab.errors.DataFormatError` for the earliest one.

>>> import pandas as pd
>>> vals, bad, why = token_column(pd.Series(["12", "x", "-3", "4.5"]), zero="error")
>>> vals.tolist()[:1], bad.tolist(), why(1), why(2), why(3)
([12], [False, True, True, True], "not an integer: 'x'", 'negative token count -3',
 "not an integer: '4.5'")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from schedlab.datasets.report import RowProblem
from schedlab.errors import DataFormatError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Problems", "datetime_ns_column", "int_column", "number_column", "token_column"]

Why = Callable[[int], str]


def _numeric(raw: pd.Series) -> tuple[np.ndarray, np.ndarray, bool]:
    """Raw values as float64 (NaN where missing or not a number), the missing mask, and whether
    the column held text (so messages quote the text)."""
    import pandas as pd

    kind = raw.dtype.kind
    if kind in "iu":
        v = np.asarray(raw, dtype=np.float64)
        return v, np.zeros(v.size, dtype=bool), False
    if kind == "f":
        v = np.asarray(raw, dtype=np.float64)
        return v, np.isnan(v), False
    missing = raw.isna().to_numpy()
    if kind == "b":
        return np.full(len(raw), np.nan), missing, True
    v = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    if raw.dtype == object:  # JSON true/false are not numbers (pandas would read them as 1/0)
        v[np.fromiter((type(x) is bool for x in raw), dtype=bool, count=len(raw))] = np.nan
    return v, missing, True


def _raw_text(raw: pd.Series, i: int) -> str:
    return repr(raw.iloc[i])


def int_column(raw: pd.Series, *, min_value: int) -> tuple[np.ndarray, np.ndarray, Why]:
    """Integers >= ``min_value`` (group ids, classes); integral floats like ``12.0`` pass."""
    if raw.dtype.kind in "iu":  # fast path: the parser already saw clean integers
        v = np.asarray(raw, dtype=np.int64)
        return v, v < min_value, lambda i: f"{v[i]} is below the minimum {min_value}"
    f, missing, text = _numeric(raw)
    notint = ~missing & (~np.isfinite(f) | (f != np.round(f)))
    low = np.isfinite(f) & (f < min_value)
    bad = missing | notint | low
    out = np.where(bad, min_value, np.nan_to_num(f)).astype(np.int64)

    def why(i: int) -> str:
        if missing[i]:
            return "missing value"
        if notint[i]:
            return f"not an integer: {_raw_text(raw, i) if text else repr(float(f[i]))}"
        return f"{f[i]:g} is below the minimum {min_value}"

    return out, bad, why


def token_column(raw: pd.Series, *, zero: str) -> tuple[np.ndarray, np.ndarray, Why]:
    """Token counts: integers >= 1; ``zero="clip"`` reads 0 as 1 (the caller reports those rows)."""
    vals, bad, why_int = int_column(raw, min_value=0)
    f = vals if raw.dtype.kind in "iu" else _numeric(raw)[0]
    zeros = ~bad & (vals == 0)

    def why(i: int) -> str:
        if zeros[i]:
            return (
                "token count 0, but every request has at least 1 token "
                "(pass zero_tokens='clip' to read 0 as 1)"
            )
        msg = why_int(i)
        return f"negative token count {f[i]:g}" if msg.endswith("below the minimum 0") else msg

    if zero == "error":
        return vals, bad | zeros, why
    return vals, bad, why


def number_column(raw: pd.Series) -> tuple[np.ndarray, np.ndarray, Why]:
    """Finite real numbers (numeric timestamps, float features)."""
    f, missing, text = _numeric(raw)
    bad = ~np.isfinite(f)

    def why(i: int) -> str:
        if missing[i]:
            return "missing value"
        return f"not a finite number: {_raw_text(raw, i) if text else f[i]}"

    return np.where(bad, 0.0, f), bad, why


def datetime_ns_column(raw: pd.Series) -> tuple[np.ndarray, np.ndarray, Why]:
    """Date-time text (ISO 8601, any number of fractional digits) as int64 nanoseconds.

    Vectorised through pandas' C ISO-8601 parser (not ``datetime.strptime`` per row). Times with
    a zone suffix (``Z``, ``+02:00``) are converted to UTC; times without one are taken as they
    are (the Azure traces have none).
    """
    if raw.dtype.kind == "M":  # fast path: the byte parser's datetime64 values (no text)
        ns = np.asarray(raw, dtype="datetime64[ns]").view(np.int64)
        nat = ns == np.iinfo(np.int64).min
        return ns, nat, lambda i: "missing value"
    import pandas as pd

    missing = raw.isna().to_numpy()
    ts = pd.to_datetime(raw, format="ISO8601", errors="coerce", utc=True)
    nat = ts.isna().to_numpy()
    ns = ts.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view(np.int64)

    def why(i: int) -> str:
        if missing[i]:
            return "missing value"
        return f"cannot parse timestamp {raw.iloc[i]!r} (expected YYYY-MM-DD HH:MM:SS[.fffffff])"

    return np.where(nat, 0, ns), nat, why


class Problems:
    """Bad rows of one file, in line order; raises at the first one unless skipping."""

    def __init__(self, path: str, *, skip: bool, max_listed: int = 20):
        self.path, self.skip, self.max_listed = path, skip, max_listed
        self._lines: list[np.ndarray] = []
        self.listed: list[RowProblem] = []

    def add(
        self,
        lines: np.ndarray,
        checks: list[tuple[str | None, np.ndarray, Why]],
        *,
        bad_lines: Sequence[tuple[int, str]] = (),
    ) -> np.ndarray:
        """Record the bad rows of one chunk and return the mask of its good rows.

        ``checks`` holds ``(field, bad_mask, why)`` in field order; a row is worded by its first
        failing field. ``lines`` gives each row's 1-based line in the file. ``bad_lines`` are
        ``(line, message)`` of lines that produced no row (unparsable, wrong number of fields).
        """
        n = lines.size
        bad = np.zeros(n, dtype=bool)
        for _, m, _ in checks:
            bad |= m
        if not bad.any() and not bad_lines:
            return ~bad
        rows = np.flatnonzero(bad)
        found = [(int(lines[r]), int(r)) for r in rows] + [
            (ln, -1 - k) for k, (ln, _) in enumerate(bad_lines)
        ]
        found.sort()
        want = 1 if not self.skip else max(0, self.max_listed - len(self.listed))
        for line, r in found[:want]:
            if r >= 0:
                fld, why = next((f, w) for f, m, w in checks if m[r])
                problem = RowProblem(line=line, field=fld, message=why(r))
            else:
                problem = RowProblem(line=line, field=None, message=bad_lines[-1 - r][1])
            if not self.skip:
                raise DataFormatError(self.path, problem.line, problem.field, problem.message)
            self.listed.append(problem)
        self._lines.append(np.array([ln for ln, _ in found], dtype=np.int64))
        return ~bad

    def lines(self) -> np.ndarray:
        """Sorted lines of every bad row recorded."""
        if not self._lines:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate(self._lines))

    def sorted_listed(self) -> tuple[RowProblem, ...]:
        """The listed problems in file order (chunks may list them out of order)."""
        return tuple(sorted(self.listed, key=lambda p: p.line))
