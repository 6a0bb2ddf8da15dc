"""Chunked JSONL reading (one JSON object per line) with line numbers.

Each line is parsed with :func:`json.loads`; a line that is not a JSON object is a bad line. The
needed keys become raw columns (a missing key is a missing value), and a list-valued key such as
Mooncake's ``hash_ids`` becomes CSR block ids, checked to be lists of non-negative integers.
``.gz`` files are read through :mod:`gzip`.

>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "t.jsonl")
>>> _ = open(p, "w").write('{"a": 1, "h": [0, 1]}\\n{"a": 2, "h": []}\\n')
>>> [(c["a"].tolist(), lines.tolist(), blk[1].tolist())
...  for c, lines, bad, blk in iter_jsonl_chunks(p, ["a"], list_key="h")]
[([1, 2], [1, 2], [2, 0])]
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from schedlab.errors import DataFormatError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["first_record", "iter_jsonl_chunks", "open_text"]

_MISSING = object()


def open_text(path: str | Path) -> IO[str]:
    """Open a text file, transparently gunzipping ``*.gz``."""
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def first_record(path: str | Path) -> dict:
    """The first JSON object of a JSONL file (for format inference)."""
    with open_text(path) as f:
        for i, line in enumerate(f, start=1):
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataFormatError(str(path), i, None, f"not valid JSON: {exc}") from None
                if not isinstance(rec, dict):
                    raise DataFormatError(str(path), i, None, "not a JSON object")
                return rec
    raise DataFormatError(str(path), None, None, "the file holds no JSON records")


def _blocks(values: list, lines_n: int):
    """CSR of list values, with a bad mask for rows that are not lists of ints >= 0."""
    is_list = np.fromiter((type(v) is list for v in values), dtype=bool, count=lines_n)
    counts = np.fromiter((len(v) if type(v) is list else 0 for v in values), np.int64, lines_n)
    flat = [x for v in values if type(v) is list for x in v]
    try:  # fast path: every element a plain int (bools and floats are caught below)
        ids = np.array(flat, dtype=np.int64) if flat else np.zeros(0, dtype=np.int64)
        elements_ok = set(map(type, flat)) <= {int} and not (ids < 0).any()
    except (TypeError, ValueError, OverflowError):
        elements_ok = False
    bad = ~is_list
    if not elements_ok:  # find the rows at fault, one by one (rare)
        for r, v in enumerate(values):
            if type(v) is list and not all(type(x) is int and x >= 0 for x in v):
                bad[r] = True
        counts = np.where(bad, 0, counts)
        flat = [x for v, b in zip(values, bad, strict=True) if not b for x in v]
        ids = np.array(flat, dtype=np.int64) if flat else np.zeros(0, dtype=np.int64)

    def why(i: int) -> str:
        v = values[i]
        if v is _MISSING or v is None:
            return "missing value"
        return f"must be a list of non-negative integers; got {str(v)[:60]}"

    return ids, counts, bad, why


def iter_jsonl_chunks(
    path: str | Path,
    keys: list[str],
    *,
    list_key: str | None = None,
    chunk_rows: int = 200_000,
) -> Iterator[tuple[pd.DataFrame, np.ndarray, list[tuple[int, str]], tuple | None]]:
    """Yield ``(chunk, lines, bad_lines, blocks)`` for up to ``chunk_rows`` lines at a time.

    ``chunk`` holds the raw values of ``keys`` (object columns, ``None`` where a key is missing),
    ``lines`` the 1-based line of each row, ``bad_lines`` ``(line, message)`` of lines that are not
    JSON objects, and ``blocks`` ``(ids, counts, bad_mask, why)`` for ``list_key`` (else ``None``).
    """
    import pandas as pd

    line_no = 0
    with open_text(path) as f:
        while True:
            try:
                raw_lines = list(islice(f, chunk_rows))
            except UnicodeDecodeError as exc:
                raise DataFormatError(
                    str(path), line_no + 1, None, f"not UTF-8 text: {exc}"
                ) from None
            if not raw_lines:
                return
            first = line_no + 1
            line_no += len(raw_lines)
            recs = _parse_all(raw_lines)
            lines: np.ndarray | list[int]
            if recs is not None:  # fast path: one C-level parse of the whole chunk
                bad: list[tuple[int, str]] = []
                lines = np.arange(first, line_no + 1, dtype=np.int64)
            else:
                recs, lines, bad = _parse_each(raw_lines, first)
            cols = {k: [r.get(k) for r in recs] for k in keys}
            lists = [r.get(list_key, _MISSING) for r in recs] if list_key is not None else []
            frame = pd.DataFrame({k: pd.Series(v, dtype=_dtype(v)) for k, v in cols.items()})
            blocks = _blocks(lists, len(recs)) if list_key is not None else None
            yield frame, np.asarray(lines, dtype=np.int64), bad, blocks


def _parse_all(raw_lines: list[str]) -> list[dict] | None:
    """Every line parsed in one ``json.loads`` of ``[line, line, ...]``, or ``None`` if any line is
    blank, invalid, not an object, or holds more than one value (then parse line by line)."""
    try:
        recs = json.loads("[" + ",".join(raw_lines) + "]")
    except json.JSONDecodeError:
        return None
    if len(recs) != len(raw_lines) or set(map(type, recs)) != {dict}:
        return None
    return recs


def _parse_each(raw_lines: list[str], first: int) -> tuple[list[dict], list[int], list]:
    """Line-by-line parse: the records, their lines, and ``(line, message)`` of bad lines."""
    recs, lines, bad = [], [], []
    for line_no, text in enumerate(raw_lines, start=first):
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = "empty line" if not text.strip() else f"malformed line, not valid JSON: {exc}"
            bad.append((line_no, msg))
            continue
        if not isinstance(rec, dict):
            bad.append((line_no, f"malformed line: a JSON {type(rec).__name__}, not an object"))
            continue
        recs.append(rec)
        lines.append(line_no)
    return recs, lines, bad


def _dtype(values: list) -> str | None:
    """int64 when every value is a plain int (fast path), else object (checked later)."""
    if set(map(type, values)) <= {int}:
        return "int64"
    return "object"
