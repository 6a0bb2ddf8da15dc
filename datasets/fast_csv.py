"""Vectorised byte parser for plain numeric CSVs (the Azure LLM traces: 17-27 million rows).

Reads the file in blocks of ``block_bytes`` and parses every line with numpy on the raw bytes: no
Python object per row or per field. It handles only *regular* input: unquoted fields, ``\\n``
or ``\\r\\n`` line ends (the same on every line; the Azure traces use ``\\r\\n``), the
right number of fields on every line, unsigned decimal integers, and date-times in the fixed
layout ``YYYY-MM-DD HH:MM:SS[.f...]`` (``T`` also accepted as the separator, up to 9 fractional
digits, same width on every line of a block, years 1678 to 2261, where nanoseconds since 1970
fit in int64). A UTF-8 byte-order mark before the header is skipped. Anything else raises
:class:`Irregular`, and the caller re-reads the file with the pandas path, which words the exact
error (file, line, field) or skips the bad rows. Both paths give the same workload.

>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
>>> _ = open(p, "w").write("TIMESTAMP,ContextTokens,GeneratedTokens\\n"
...                        "2023-11-16 18:17:03.9799600,4808,10\\n"
...                        "2023-11-16 18:17:04.0319600,3180,8")
>>> header = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
>>> kinds = {"TIMESTAMP": "datetime", "ContextTokens": "int", "GeneratedTokens": "int"}
>>> [(c["ContextTokens"].tolist(), str(c["TIMESTAMP"][-1]), lines.tolist())
...  for c, lines in iter_fast_chunks(p, header, kinds, block_bytes=40)]
[([4808], '2023-11-16T18:17:03.979960000', [2]), ([3180], '2023-11-16T18:17:04.031960000', [3])]
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from schedlab.datasets.rawio import BOM, ByteReader

__all__ = ["Irregular", "iter_fast_chunks", "plain_header"]

_NL, _COMMA, _QUOTE, _CR = 10, 44, 34, 13
_NS_PER_S = 1_000_000_000
_MDAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
#: Years the byte parser reads (int64 nanoseconds since 1970 hold 1677-09-21 to 2262-04-11); the
#: pandas path refuses a date-time outside them, naming the line.
YEARS = (1678, 2261)


class Irregular(Exception):
    """The input is not plain enough for the byte parser; use the general (pandas) path."""


def _uints(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Unsigned decimal integers in ``buf[s:e]`` per row."""
    ln = e - s
    if ln.size == 0:
        return np.zeros(0, dtype=np.int64)
    if ln.min() < 1 or ln.max() > 18:
        raise Irregular("empty or too long integer field")
    width = int(ln.max())
    m = _windows(buf, width)[s] - np.uint8(48)  # (rows, width); bytes past a field are masked
    val = np.zeros(ln.size, dtype=np.int64)
    for j in range(width):
        d = m[:, j]
        if width == int(ln.min()):  # every field this long: no masking needed
            if (d > 9).any():
                raise Irregular("non-digit in an integer field")
            val = val * 10 + d
            continue
        valid = j < ln
        if (valid & (d > 9)).any():
            raise Irregular("non-digit in an integer field")
        val = np.where(valid, val * 10 + d, val)
    return val


def _windows(buf: np.ndarray, width: int) -> np.ndarray:
    """Every ``width``-byte window of ``buf`` (a view; row ``i`` starts at byte ``i``)."""
    return np.lib.stride_tricks.sliding_window_view(buf, width)


def _datetimes_ns(buf: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS[.fffffff]`` in ``buf[s:e]`` as int64 ns since 1970 (UTC-naive)."""
    if s.size == 0:
        return np.zeros(0, dtype=np.int64)
    width = int(e[0] - s[0])
    if not ((e - s) == width).all() or not (width == 19 or 21 <= width <= 29):
        raise Irregular("date-times of varying or unexpected width")
    m = _windows(buf, width)[s]  # (rows, width) uint8, one row copy per line
    seps = {4: b"-", 7: b"-", 10: b" T", 13: b":", 16: b":"}
    if width > 19:
        seps[19] = b"."
    for pos, allowed in seps.items():
        col = m[:, pos]
        ok = col == allowed[0]
        if len(allowed) > 1:
            ok |= col == allowed[1]
        if not ok.all():
            raise Irregular("date-time separators")
    d = m - np.uint8(48)  # digits 0..9; anything else wraps above 9
    digit_cols = [j for j in range(width) if j not in seps]
    if (d[:, digit_cols] > 9).any():
        raise Irregular("non-digit in a date-time")

    def num(a: int, b: int) -> np.ndarray:
        v = d[:, a].astype(np.int64)
        for j in range(a + 1, b):
            v = v * 10 + d[:, j]
        return v

    y, mo, dd = num(0, 4), num(5, 7), num(8, 10)
    hh, mi, ss = num(11, 13), num(14, 16), num(17, 19)
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    mo_ok = (mo >= 1) & (mo <= 12)
    dmax = _MDAYS[np.clip(mo, 1, 12) - 1] + ((mo == 2) & leap)
    if not (mo_ok & (dd >= 1) & (dd <= dmax) & (hh < 24) & (mi < 60) & (ss < 60)).all():
        raise Irregular("date-time out of range")
    if not ((y >= YEARS[0]) & (y <= YEARS[1])).all():  # else the nanoseconds would wrap
        raise Irregular("year outside the int64 nanosecond range")
    # days from the civil date (H. Hinnant's algorithm), proleptic Gregorian
    yy = y - (mo <= 2)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * (mo + np.where(mo > 2, -3, 9)) + 2) // 5 + dd - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    ns = (days * 86400 + hh * 3600 + mi * 60 + ss) * _NS_PER_S
    if width > 19:
        digits = width - 20
        ns += num(20, width) * 10 ** (9 - digits)
    return ns


def plain_header(text: str) -> list[str] | None:
    """Column names of a plain header line ``text`` (comma-separated names: no quotes, no
    repeated name), or ``None`` when the header needs the general CSV parser.

    >>> plain_header("TIMESTAMP,ContextTokens"), plain_header('"a",b')
    (['TIMESTAMP', 'ContextTokens'], None)
    """
    names = text.split(",")
    if not text or '"' in text or len(set(names)) != len(names):
        return None
    return names


def iter_fast_chunks(
    path: str | Path,
    header: list[str],
    kinds: dict[str, str],
    *,
    block_bytes: int = 8 << 20,
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Yield ``(columns, lines)`` per block: the numpy columns named in ``kinds`` (``"int"`` ->
    int64, ``"datetime"`` -> datetime64[ns]), in that order, and the 1-based file line of each
    row. No pandas: loading a regular file does not import it.

    ``header`` is the file's column list; raises :class:`Irregular` on anything the byte parser
    does not handle (see the module docstring), and
    :class:`~schedlab.errors.DataFormatError` when the file cannot be read further (a truncated
    or corrupt ``.gz``).
    """
    ncols = len(header)
    want = {header.index(c): (c, k) for c, k in kinds.items()}
    line = 2
    with ByteReader(path, count_lines=False) as f:
        first = f.readline().removeprefix(BOM)
        crlf = first.endswith(b"\r\n")  # Windows line ends (the Azure traces): every line has them
        eol = b"\r\n" if crlf else b"\n"
        if first.removesuffix(eol).decode("utf-8", "replace").split(",") != header:
            raise Irregular("header is not plain comma-separated names")
        rest = b""
        while True:
            f.at_line(line)  # a read that fails names the line it was in (``rest`` holds no end)
            block = f.read(block_bytes)
            eof = not block
            data = rest + block
            if eof:
                if not data:
                    return
                if not data.endswith(b"\n"):
                    data += eol
                rest = b""
            else:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    rest = data
                    continue
                data, rest = data[:cut], data[cut:]
            # 32 padding bytes: fixed-width windows may run past the last field of the block
            pad = np.frombuffer(data + bytes(32), dtype=np.uint8)
            buf = pad[: len(data)]
            if (buf == _QUOTE).any():
                raise Irregular("quotes")
            ends = np.flatnonzero(buf == _NL)
            starts = np.concatenate(([0], ends[:-1] + 1))
            cr = np.flatnonzero(buf == _CR)
            if crlf:  # a CR right before every LF and nowhere else; fields end before the CR
                if cr.size != ends.size or not np.array_equal(cr, ends - 1):
                    raise Irregular("mixed line ends")
                ends = cr
            elif cr.size:
                raise Irregular("carriage return inside a line")
            if (ends == starts).any():
                raise Irregular("blank line")
            commas = np.flatnonzero(buf == _COMMA)
            per_line = np.searchsorted(commas, ends) - np.searchsorted(commas, starts)
            if (per_line != ncols - 1).any():
                raise Irregular("wrong number of fields")
            c = commas.reshape(ends.size, ncols - 1)
            cols = {}
            for k, (name, kind) in want.items():
                s = starts if k == 0 else c[:, k - 1] + 1
                e = ends if k == ncols - 1 else c[:, k]
                if kind == "int":
                    cols[name] = _uints(pad, s, e)
                else:
                    cols[name] = _datetimes_ns(pad, s, e).view("datetime64[ns]")
            lines = np.arange(line, line + ends.size, dtype=np.int64)
            line += ends.size
            yield {name: cols[name] for name in kinds}, lines
            if eof:
                return
