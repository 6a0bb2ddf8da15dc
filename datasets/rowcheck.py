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

from schedlab.datasets.fast_csv import YEARS
from schedlab.datasets.report import RowProblem
from schedlab.errors import DataFormatError
from schedlab.records import MAX_TOKENS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Problems", "datetime_ns_column", "int_column", "number_column", "token_column"]

Why = Callable[[int], str]

_I64_MAX = int(np.iinfo(np.int64).max)
#: Date-times read: the byte parser's :data:`~schedlab.datasets.fast_csv.YEARS`, where int64
#: nanoseconds since 1970 hold.
_FIRST_DAY = np.datetime64(f"{YEARS[0]}-01-01", "D")
_END_DAY = np.datetime64(f"{YEARS[1] + 1}-01-01", "D")
_YEARS_TEXT = f"the years {YEARS[0]} to {YEARS[1]}"


def _numeric(raw: pd.Series, typed: bool = False) -> tuple[np.ndarray, np.ndarray, bool]:
    """Raw values as float64 (NaN where missing or not a number), the missing mask, and whether
    the column held text (so messages quote the text).

    ``typed``: the values come typed from JSON, where only a number is a number (a string such as
    ``"600"`` is not read as one; CSV fields are all text, so there the text is parsed)."""
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
    if typed:
        return _json_numbers(raw.to_numpy(dtype=object)), missing, True
    try:
        num = pd.to_numeric(raw, errors="coerce")
    except OverflowError:  # pandas reads a number of 300+ digits as a Python int: make it inf
        num = pd.to_numeric(raw.map(_int_past_float), errors="coerce")
    v = num.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    if raw.dtype == object:  # JSON true/false are not numbers (pandas would read them as 1/0)
        v[np.fromiter((type(x) is bool for x in raw), dtype=bool, count=len(raw))] = np.nan
    return v, missing, True


def _int_past_float(x: object) -> object:
    """A Python int too large for float64 as +-inf (anything else as it is)."""
    if type(x) is int and abs(x) >= 2**1023:
        return float(np.sign(x)) * np.inf
    return x


def _json_numbers(values: np.ndarray) -> np.ndarray:
    """JSON ints and floats as float64 (an int past float range as +-inf); NaN for anything else
    (strings, booleans, lists, objects, null)."""
    num = np.fromiter((type(x) is int or type(x) is float for x in values), bool, values.size)
    out = np.full(values.size, np.nan)
    if num.any():
        try:
            out[num] = np.array(values[num].tolist(), dtype=np.float64)
        except OverflowError:  # an integer of more than 308 digits
            out[num] = [float(_int_past_float(x)) for x in values[num]]  # type: ignore[arg-type]
    return out


def _shown(raw: pd.Series, i: int, typed: bool = False) -> str:
    """The raw value of row ``i`` for a message: quoted, cut to 60 characters, bytes that are not
    UTF-8 shown as bytes."""
    x = raw.iloc[i]
    if isinstance(x, str):
        try:
            x.encode("utf-8")
        except UnicodeEncodeError:  # read with surrogateescape: show the bytes of the file
            return f"{_cut(repr(x.encode('utf-8', 'surrogateescape')))} (not UTF-8 text)"
        return _cut(repr(x)) + (" (a JSON string, not a number)" if typed else "")
    return _cut(repr(x))


def _cut(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 5] + "[...]"


def _number(x: float | int) -> str:
    """A number for a message: an integral value as an integer, else ``%g``."""
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return str(int(x)) if np.isfinite(x) and x == int(x) and abs(x) < 1e16 else f"{x:g}"


def _int_checks(
    raw: pd.Series, min_value: int, max_value: int, typed: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, Why, Why]:
    """``(values, missing, not_integer, below, above, shown, number)``: int64 values
    (``min_value`` where bad), the mask of each problem, and the raw value of a row as a message
    quotes it (``shown``) or as a number (``number``, for a value out of range)."""
    if raw.dtype.kind in "iu":  # fast path: the parser already saw clean integers
        v = np.asarray(raw)
        above = v > max_value  # before the cast: a uint64 past int64 would wrap
        out = v.astype(np.int64, copy=False)
        below = ~above & (out < min_value)
        if above.any():
            out = np.where(above, min_value, out)
        none = np.zeros(v.size, dtype=bool)
        return out, none, none, below, above, lambda i: str(v[i]), lambda i: str(v[i])
    f, missing, text = _numeric(raw, typed)
    notint = ~missing & (~np.isfinite(f) | (f != np.round(f)))
    limit = float(max_value)  # rounds up past a max that float64 cannot hold (int64's)
    above = ~missing & ~notint & ((f > limit) if int(limit) == max_value else (f >= limit))
    below = ~missing & ~notint & (f < min_value)
    bad = missing | notint | below | above
    out = np.where(bad, min_value, np.nan_to_num(f)).astype(np.int64)

    def shown(i: int) -> str:
        return _shown(raw, i, typed) if text else _number(f[i])

    def number(i: int) -> str:
        x = raw.iloc[i] if text else None
        return _cut(str(x)) if type(x) is int else _number(f[i])  # a JSON int, digit for digit

    return out, missing, notint, below, above, shown, number


def int_column(
    raw: pd.Series, *, min_value: int, max_value: int = _I64_MAX, typed: bool = False
) -> tuple[np.ndarray, np.ndarray, Why]:
    """Integers in ``[min_value, max_value]`` (group ids, classes; by default any int64);
    integral floats like ``12.0`` pass. ``typed``: JSON values (a string is not a number)."""
    out, missing, notint, below, above, shown, number = _int_checks(
        raw, min_value, max_value, typed
    )

    def why(i: int) -> str:
        if missing[i]:
            return "missing value"
        if notint[i]:
            return f"not an integer: {shown(i)}"
        if above[i]:
            return f"{number(i)} is above the maximum {max_value}"
        return f"{number(i)} is below the minimum {min_value}"

    return out, missing | notint | below | above, why


def token_column(
    raw: pd.Series, *, zero: str, typed: bool = False
) -> tuple[np.ndarray, np.ndarray, Why]:
    """Token counts: integers in ``[1, MAX_TOKENS]`` (:data:`schedlab.records.MAX_TOKENS`);
    ``zero="clip"`` reads 0 as 1 (the caller reports those rows). ``typed``: JSON values, where a
    count must be a number (``600`` or ``600.0``), not a string (``"600"``) or a boolean."""
    out, missing, notint, below, above, shown, number = _int_checks(raw, 0, MAX_TOKENS, typed)
    bad = missing | notint | below | above
    zeros = ~bad & (out == 0)

    def why(i: int) -> str:
        if zeros[i]:
            return (
                "token count 0, but every request has at least 1 token "
                "(pass zero_tokens='clip' to read 0 as 1)"
            )
        if missing[i]:
            return "missing value"
        if notint[i]:
            return f"not an integer: {shown(i)}"
        if above[i]:
            return (
                f"token count {number(i)} is above the maximum {MAX_TOKENS} "
                "(schedlab.records.MAX_TOKENS)"
            )
        return f"negative token count {number(i)}"

    if zero == "error":
        return out, bad | zeros, why
    return out, bad, why


def number_column(
    raw: pd.Series, *, typed: bool = False
) -> tuple[np.ndarray, np.ndarray, Why]:
    """Finite real numbers (numeric timestamps, float features). ``typed``: JSON values (a string
    is not a number)."""
    if raw.dtype.kind in "iuf":
        f = np.asarray(raw, dtype=np.float64)
        missing, text = np.isnan(f), False
    else:
        f, missing, text = _numeric(raw, typed)
    bad = ~np.isfinite(f)

    def why(i: int) -> str:
        if missing[i]:
            return "missing value"
        return f"not a finite number: {_shown(raw, i, typed) if text else f[i]}"

    return np.where(bad, 0.0, f), bad, why


def datetime_ns_column(raw: pd.Series) -> tuple[np.ndarray, np.ndarray, Why]:
    """Date-time text (ISO 8601, any number of fractional digits) as int64 nanoseconds.

    Vectorised through pandas' C ISO-8601 parser (not ``datetime.strptime`` per row). Times with
    a zone suffix (``Z``, ``+02:00``) are converted to UTC; times without one are taken as they
    are (the Azure traces have none). A date-time outside the years 1678 to 2261 (where int64
    nanoseconds end) is a bad row.
    """
    if raw.dtype.kind == "M":  # fast path: the byte parser's datetime64 values (no text)
        ns = np.asarray(raw, dtype="datetime64[ns]").view(np.int64)
        nat = ns == np.iinfo(np.int64).min
        return ns, nat, lambda i: "missing value"
    import pandas as pd

    missing = raw.isna().to_numpy()
    ts = pd.to_datetime(raw, format="ISO8601", errors="coerce", utc=True)
    nat = ts.isna().to_numpy()
    when = ts.dt.tz_localize(None).to_numpy()  # datetime64 in pandas' unit (may be s or us)
    outside = ~nat & ((when < _FIRST_DAY) | (when >= _END_DAY))
    bad = nat | outside
    when = np.where(bad, _FIRST_DAY, when)  # a date past int64 ns would wrap in the cast
    ns = when.astype("datetime64[ns]").view(np.int64)

    def why(i: int) -> str:
        if missing[i]:
            return "missing value"
        if outside[i]:
            return f"timestamp {_shown(raw, i)} is outside {_YEARS_TEXT}"
        return (
            f"cannot parse timestamp {_shown(raw, i)} "
            f"(expected YYYY-MM-DD HH:MM:SS[.fffffff], in {_YEARS_TEXT})"
        )

    return np.where(bad, 0, ns), bad, why


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
