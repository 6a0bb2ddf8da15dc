"""Chunked CSV reading with exact line numbers for every row and every bad line.

pandas' C parser reads ``chunk_rows`` rows at a time and only the needed columns are kept, blank
lines are kept as rows (so they are reported, not skipped) and lines with too many fields are
reported by their line number. Rows are one per line: a quoted field that runs over several lines
(or a quote never closed) is refused, naming the line, as line numbers could not be trusted after
it. Bytes that are not UTF-8 are read as they are (``surrogateescape``): a field that holds them
fails its check, naming the line. A column named twice in the header is refused.

>>> import tempfile, os
>>> d = tempfile.mkdtemp(); p = os.path.join(d, "t.csv")
>>> _ = open(p, "w").write("a,b\\n1,2\\n3,4\\n")
>>> read_header(p)
['a', 'b']
>>> [(c["b"].tolist(), lines.tolist()) for c, lines, bad in iter_csv_chunks(p, ["b"])]
[([2, 4], [2, 3])]
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from schedlab.datasets.fast_csv import plain_header
from schedlab.datasets.rawio import ByteReader, first_line
from schedlab.errors import DataFormatError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["iter_csv_chunks", "read_header"]

_SKIP = re.compile(r"Skipping line (\d+): (.*)")
_OPEN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")
_MULTILINE = (
    "a quoted field runs over several lines (a quote not closed on its line?); rows must be one "
    "per line"
)


def _header_text(path: str | Path) -> str:
    """The header line (line 1) as text; not UTF-8 is a :class:`DataFormatError`."""
    try:
        return first_line(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            str(path), 1, None, f"cannot read the CSV header: not UTF-8 text ({exc})"
        ) from None


def _refuse_repeated_names(path: str | Path, text: str) -> None:
    """Refuse a header naming a column twice (pandas would rename the second ``name.1`` and
    read on)."""
    try:
        names = next(csv.reader([text], strict=True), [])
    except csv.Error as exc:
        raise DataFormatError(str(path), 1, None, f"cannot read the CSV header: {exc}") from None
    seen: dict[str, int] = {}
    for k, name in enumerate(names, start=1):
        if name and name in seen:  # empty names are told apart by pandas ("Unnamed: k")
            raise DataFormatError(
                str(path),
                1,
                name,
                f"the header names this column twice (columns {seen[name]} and {k}); rename one",
            )
        seen.setdefault(name, k)


def read_header(path: str | Path) -> list[str]:
    """Column names of the CSV header (line 1); raises :class:`DataFormatError` if unreadable or if
    a column is named twice. A plain header is read without pandas
    (:func:`~schedlab.datasets.fast_csv.plain_header`)."""
    text = _header_text(path)
    names = plain_header(text)
    if names is not None:  # plain: no quotes and no name twice
        return names
    _refuse_repeated_names(path, text)
    import pandas as pd

    with ByteReader(path, quiet=True) as f:  # pandas must not see an exception in a read
        try:
            names = [str(c) for c in pd.read_csv(f, nrows=0, compression=None).columns]
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            if f.failure is not None:
                raise f.failure from None
            raise DataFormatError(
                str(path), 1, None, f"cannot read the CSV header: {exc}"
            ) from None
        if f.failure is not None:
            raise f.failure
    return names


def _multiline_row(chunk: pd.DataFrame) -> tuple[int, str] | None:
    """``(row, column)`` of the first field of ``chunk`` holding a line break, or ``None``."""
    first: tuple[int, str] | None = None
    for name in chunk.columns:
        col = chunk[name]
        if col.dtype.kind != "O":
            continue
        hit = np.fromiter(
            (type(v) is str and ("\n" in v or "\r" in v) for v in col), dtype=bool, count=len(col)
        )
        if hit.any():
            r = int(np.argmax(hit))
            if first is None or r < first[0]:
                first = (r, str(name))
    return first


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

    ``text_columns`` are read as text (e.g. date-time columns parsed later, vectorised). Raises
    :class:`DataFormatError` for damage no row can be skipped past: a quoted field over several
    lines, a truncated or corrupt ``.gz``.
    """
    import pandas as pd

    source = ByteReader(path, quiet=True)  # pandas must not see an exception in a read
    # Every column is parsed (not ``usecols``) so that lines with too many fields are caught.
    reader = pd.read_csv(
        source,
        compression=None,
        encoding_errors="surrogateescape",
        chunksize=chunk_rows,
        skip_blank_lines=False,
        on_bad_lines="warn",
        dtype={c: object for c in text_columns} or None,
        engine="c",
    )
    bad_all = np.zeros(0, dtype=np.int64)
    row = 0
    with source, reader:
        while True:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                try:
                    chunk = next(reader)
                except StopIteration:
                    chunk = None
                except (pd.errors.ParserError, UnicodeDecodeError) as exc:
                    if source.failure is not None:  # the file ended early: the reason
                        raise source.failure from None
                    m = _OPEN_QUOTE.search(str(exc))
                    if m:  # pandas counts rows from 0 at the header
                        raise DataFormatError(
                            str(path), int(m.group(1)) + 1, None, _MULTILINE
                        ) from None
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
            if source.failure is not None:  # the file could not be read to its end
                raise source.failure
            if chunk is None:
                if source.saw_quote and row + bad_all.size + 1 != _lines_in(source):
                    # a quoted field over several lines in a row the parser dropped
                    raise DataFormatError(str(path), None, None, _MULTILINE)
                if bad_now:
                    yield pd.DataFrame({c: [] for c in columns}), np.zeros(0, np.int64), bad_now
                return
            lines = _row_lines(row, len(chunk), bad_all)
            if source.saw_quote:
                found = _multiline_row(chunk)
                if found is not None:
                    raise DataFormatError(str(path), int(lines[found[0]]), found[1], _MULTILINE)
            row += len(chunk)
            yield chunk[columns], lines, bad_now


def _lines_in(source: ByteReader) -> int:
    """Lines of a file read to its end (a last line without a line end counts)."""
    return source.newlines + (0 if source.ends_with_newline else 1)
