"""Chunked CSV reading with exact line numbers for every row and every bad line.

pandas' C parser reads ``chunk_rows`` rows at a time and only the needed columns are kept, blank
lines are kept as rows (so they are reported, not skipped) and lines with too many fields are
reported by their line number. Rows are assumed to be one per line (no quoted newlines), which
holds for every format schedlab reads.

>>> import tempfile, os
>>> d = tempfile.mkdtemp(); p = os.path.join(d, "t.csv")
>>> _ = open(p, "w").write("a,b\\n1,2\\n3,4\\n")
>>> read_header(p)
['a', 'b']
>>> [(c["b"].tolist(), lines.tolist()) for c, lines, bad in iter_csv_chunks(p, ["b"])]
[([2, 4], [2, 3])]
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from schedlab.datasets.fast_csv import plain_header
from schedlab.errors import DataFormatError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["iter_csv_chunks", "read_header"]

_SKIP = re.compile(r"Skipping line (\d+): (.*)")


def read_header(path: str | Path) -> list[str]:
    """Column names of the CSV header (line 1); raises :class:`DataFormatError` if unreadable.
    A plain header is read without pandas (:func:`~schedlab.datasets.fast_csv.plain_header`)."""
    names = plain_header(path)
    if names is not None:
        return names
    import pandas as pd

    try:
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataFormatError(str(path), 1, None, f"cannot read the CSV header: {exc}") from None


def _row_lines(start: int, n: int, bad: np.ndarray) -> np.ndarray:
    """File lines of data rows ``start..start+n-1`` given the sorted lines ``bad`` that the parser
    dropped (row k sits on line ``k + 2`` plus the dropped lines before it)."""
    k = np.arange(start, start + n, dtype=np.int64)
    if bad.size == 0:
        return k + 2
    rows_before_bad = bad - 2 - np.arange(bad.size)
    return k + 2 + np.searchsorted(rows_before_bad, k, side="right")


def iter_csv_chunks(
    path: str | Path,
    columns: list[str],
    *,
    chunk_rows: int = 1_000_000,
    text_columns: tuple[str, ...] = (),
) -> Iterator[tuple[pd.DataFrame, np.ndarray, list[tuple[int, str]]]]:
    """Yield ``(chunk, lines, bad_lines)``: the needed ``columns`` of up to ``chunk_rows`` rows, the
    1-based file line of each row, and ``(line, message)`` of lines the parser could not split.

    ``text_columns`` are read as text (e.g. date-time columns parsed later, vectorised).
    """
    import pandas as pd

    # Every column is parsed (not ``usecols``) so that lines with too many fields are caught.
    reader = pd.read_csv(
        path,
        chunksize=chunk_rows,
        skip_blank_lines=False,
        on_bad_lines="warn",
        dtype={c: object for c in text_columns} or None,
        engine="c",
    )
    bad_all = np.zeros(0, dtype=np.int64)
    row = 0
    with reader:
        while True:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                try:
                    chunk = next(reader)
                except StopIteration:
                    chunk = None
                except (pd.errors.ParserError, UnicodeDecodeError) as exc:
                    raise DataFormatError(
                        str(path), None, None, f"cannot parse the CSV: {exc}"
                    ) from None
            bad_now = []
            for w in caught:
                if not issubclass(w.category, pd.errors.ParserWarning):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                    continue
                for m in _SKIP.finditer(str(w.message)):
                    bad_now.append((int(m.group(1)), f"malformed line: {m.group(2).strip()}"))
            if bad_now:
                bad_all = np.sort(np.concatenate([bad_all, [b for b, _ in bad_now]]))
            if chunk is None:
                if bad_now:
                    yield pd.DataFrame({c: [] for c in columns}), np.zeros(0, np.int64), bad_now
                return
            lines = _row_lines(row, len(chunk), bad_all)
            row += len(chunk)
            yield chunk[columns], lines, bad_now
