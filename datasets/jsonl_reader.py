"""Chunked JSONL reading (exactly one JSON object per line) with line numbers.

Lines are the file's physical lines (ended by ``\\n``); each is parsed on its own, so a line
holding two objects, or an object split over two lines, is a bad line, and every line keeps its
own number. A line that is not one JSON object (blank, not valid JSON, two values, a list, nested
too deeply, not UTF-8) is a bad line, reported like a bad CSV row. A UTF-8 byte-order mark before
the first line is skipped. The needed keys become raw columns (a missing key is a missing value),
and a list-valued key such as Mooncake's ``hash_ids`` becomes CSR block ids, checked to be lists
of non-negative int64 integers. ``.gz`` files are read through :mod:`gzip`
(:class:`~schedlab.datasets.rawio.ByteReader`: a truncated one is an error naming the line). A
file without a single line is an error.

>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "t.jsonl")
>>> _ = open(p, "w").write('{"a": 1, "h": [0, 1]}\\n{"a": 2, "h": []}\\n')
>>> [(c["a"].tolist(), lines.tolist(), blk[1].tolist())
...  for c, lines, bad, blk in iter_jsonl_chunks(p, ["a"], list_key="h")]
[([1, 2], [1, 2], [2, 0])]
>>> _ = open(p, "w").write('{"a": 1}{"a": 2}\\n{"a": 3}\\n')
>>> [(c["a"].tolist(), lines.tolist(), bad) for c, lines, bad, _ in iter_jsonl_chunks(p, ["a"])]
[([3], [2], [(1, 'malformed line: more than one JSON value (one object per line)')])]
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from schedlab.datasets.rawio import BOM, ByteReader
from schedlab.errors import DataFormatError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["first_record", "iter_jsonl_chunks"]

_MISSING = object()
_I64_MAX = int(np.iinfo(np.int64).max)
_DECODE = json.JSONDecoder().decode
_EMPTY = "the file holds no JSON records (it is empty)"


def _line_chunks(
    path: str | Path, chunk_rows: int, block_bytes: int = 4 << 20
) -> Iterator[tuple[int, list[bytes]]]:
    """``(first line number, lines)`` for up to ``chunk_rows`` physical lines at a time (without
    their ``\\n``; a leading byte-order mark removed). A file without a line yields nothing."""
    line = 1
    pending: list[bytes] = []
    rest = b""
    with ByteReader(path, count_lines=False) as f:
        while True:
            f.at_line(line + len(pending))  # a read that fails names the line it was in
            block = f.read(block_bytes)
            if block:
                parts = (rest + block).split(b"\n")
                rest = parts.pop()
                if line == 1 and parts and not pending:
                    parts[0] = parts[0].removeprefix(BOM)
                pending += parts
            elif rest:  # the last line, without a line end
                pending.append(rest.removeprefix(BOM) if line == 1 and not pending else rest)
                rest = b""
            i = 0
            while len(pending) - i >= chunk_rows or (not block and i < len(pending)):
                out = pending[i : i + chunk_rows]
                yield line, out
                line += len(out)
                i += len(out)
            pending = pending[i:]
            if not block:
                return


def _decode_lines(raw: list[bytes], first: int) -> tuple[list[str], dict[int, str]]:
    """The lines as text, and ``{line: message}`` of those that are not UTF-8 (their text is
    empty)."""
    try:
        return b"\n".join(raw).decode("utf-8").split("\n"), {}
    except UnicodeDecodeError:
        pass
    texts, bad = [], {}
    for line, b in enumerate(raw, start=first):
        try:
            texts.append(b.decode("utf-8"))
        except UnicodeDecodeError as exc:
            texts.append("")
            bad[line] = f"malformed line, not UTF-8 text: {exc}"
    return texts, bad


def _line_problem(text: str) -> tuple[dict | None, str]:
    """The record of one line, or ``None`` and why the line is bad."""
    try:
        rec = _DECODE(text)
    except json.JSONDecodeError as exc:
        if not text.strip():
            return None, "empty line"
        if exc.msg == "Extra data":
            return None, "malformed line: more than one JSON value (one object per line)"
        return None, f"malformed line, not valid JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return None, "malformed line: JSON nested too deeply"
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        return None, f"malformed line, not valid JSON: {str(exc)[:80]}"
    if not isinstance(rec, dict):
        return None, f"malformed line: a JSON {type(rec).__name__}, not an object"
    return rec, ""


def _parse_all(texts: list[str]) -> list[dict] | None:
    """Every line parsed in one ``json.loads`` (fast: one C call, keys shared), or ``None`` if
    any line is not exactly one JSON object (then parse line by line).

    The lines are joined with a random marker between them, ``[L1,M,L2,M,...]``, and the result
    must alternate object, marker: a line holding two values puts two values between markers,
    and a value split over lines swallows a marker into it (a plain ``[L1,L2,...]`` can be
    fooled when both happen in one chunk, and numbers every later line wrong). A line cannot
    forge the marker: it is drawn afresh for every chunk."""
    marker = secrets.randbits(62)
    try:
        vals = json.loads("[" + f",{marker},".join(texts) + "]")
    except (ValueError, RecursionError):  # JSONDecodeError, an integer of > 4300 digits
        return None
    n = len(texts)
    if len(vals) != 2 * n - 1 or vals[1::2].count(marker) != n - 1:
        return None
    recs = vals[::2]
    return recs if set(map(type, recs)) == {dict} else None


def _parse(raw: list[bytes], first: int) -> tuple[list[dict], list[int] | None, list]:
    """The records of one chunk of lines, their lines (``None``: every line, in order) and
    ``(line, message)`` of the bad lines."""
    texts, not_utf8 = _decode_lines(raw, first)
    if not not_utf8:
        fast = _parse_all(texts)
        if fast is not None:
            return fast, None, []
    recs, lines, bad = [], [], []
    for line, text in enumerate(texts, start=first):
        if line in not_utf8:
            bad.append((line, not_utf8[line]))
            continue
        rec, why = _line_problem(text)
        if rec is None:
            bad.append((line, why))
        else:
            recs.append(rec)
            lines.append(line)
    return recs, lines, bad


def first_record(path: str | Path, *, max_lines: int = 1000) -> dict:
    """The first JSON object of a JSONL file (for format inference), skipping bad lines among the
    first ``max_lines``; raises :class:`DataFormatError` for the first bad line if none of them
    is an object, or if the file holds no record."""
    problem: tuple[int, str] | None = None
    seen = 0
    for first, raw in _line_chunks(path, chunk_rows=64, block_bytes=64 << 10):
        recs, _, bad = _parse(raw, first)
        if recs:
            return recs[0]
        problem = problem or next(((ln, m) for ln, m in bad if m != "empty line"), None)
        seen = first + len(raw) - 1
        if seen >= max_lines:
            break
    if problem is not None:
        raise DataFormatError(str(path), problem[0], None, problem[1])
    if seen == 0:
        raise DataFormatError(str(path), None, None, _EMPTY)
    raise DataFormatError(
        str(path), None, None, "the file holds no JSON records (only blank lines)"
    )


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
            if type(v) is list and not all(type(x) is int and 0 <= x <= _I64_MAX for x in v):
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
) -> Iterator[tuple[pd.DataFrame | dict[str, np.ndarray], np.ndarray, list[tuple[int, str]],
                    tuple | None]]:
    """Yield ``(chunk, lines, bad_lines, blocks)`` for up to ``chunk_rows`` lines at a time.

    ``chunk`` holds the raw values of ``keys``: int64 numpy columns when every value of the chunk
    is a plain integer (pandas is then not imported), else a DataFrame of object columns (``None``
    where a key is missing),
    ``lines`` the 1-based line of each row, ``bad_lines`` ``(line, message)`` of lines that are not
    one JSON object, and ``blocks`` ``(ids, counts, bad_mask, why)`` for ``list_key`` (else
    ``None``). Raises :class:`DataFormatError` for a file without a line, or one that cannot be
    read to its end (a truncated ``.gz``).
    """
    empty = True
    for first, raw in _line_chunks(path, chunk_rows):
        empty = False
        recs, found, bad = _parse(raw, first)
        lines = (
            np.arange(first, first + len(raw), dtype=np.int64)
            if found is None
            else np.asarray(found, dtype=np.int64)
        )
        cols = {k: [r.get(k) for r in recs] for k in keys}
        lists = [r.get(list_key, _MISSING) for r in recs] if list_key is not None else []
        typed = {k: _int64(v) for k, v in cols.items()}
        if all(a is not None for a in typed.values()):  # plain integers: no pandas to import
            frame: pd.DataFrame | dict[str, np.ndarray] = typed
        else:
            import pandas as pd

            frame = pd.DataFrame({k: pd.Series(v, dtype="object") if typed[k] is None
                                  else typed[k] for k, v in cols.items()}, index=range(len(recs)))
        blocks = _blocks(lists, len(recs)) if list_key is not None else None
        yield frame, lines, bad, blocks
    if empty:
        raise DataFormatError(str(path), None, None, _EMPTY)


def _int64(values: list) -> np.ndarray | None:
    """``values`` as an int64 array when every one is a plain int that fits, else ``None``."""
    if set(map(type, values)) <= {int}:
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:  # past int64: the checks name the row
            pass
    return None

