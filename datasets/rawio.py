"""Reading a trace file as bytes: ``.gz`` decompressed on the fly, line ends counted, and every
failure to read (a truncated or corrupt ``.gz``, a file that is not gzip at all, an I/O error) a
:class:`~schedlab.errors.DataFormatError` naming the file and the first line not read in full.

Every reader (the byte parser, the pandas CSV path, the JSONL reader) reads through
:class:`ByteReader`, so a damaged file gives the same error whichever path reads it, and never a
bare ``EOFError``, ``zlib.error`` or ``gzip.BadGzipFile``.

>>> import gzip, os, tempfile
>>> p = os.path.join(tempfile.mkdtemp(), "t.csv.gz")
>>> data = gzip.compress(b"a,b\\n" + b"".join(b"%d,%d\\n" % (i, i * i) for i in range(20000)))
>>> _ = open(p, "wb").write(data[: len(data) // 2])  # cut in the middle
>>> try:
...     with ByteReader(p) as f:
...         while f.read(1000):
...             pass
... except DataFormatError as exc:
...     print(exc.line > 1000, str(exc).split(": ", 1)[1])
True cannot read the file past line ...: the compressed data ends early (a truncated .gz file)
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

from schedlab.errors import DataFormatError

__all__ = ["BOM", "ByteReader", "first_line"]

#: The UTF-8 byte-order mark some editors write at the start of a text file (skipped).
BOM = b"\xef\xbb\xbf"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "the compressed data ends early (a truncated .gz file)"
    if isinstance(exc, gzip.BadGzipFile):
        return f"not a .gz file, or a damaged one ({exc})"
    if isinstance(exc, zlib.error):
        return f"the compressed data is corrupt ({exc})"
    return f"{type(exc).__name__}: {exc}"


class ByteReader(io.RawIOBase):
    """A data file opened for reading bytes (``*.gz`` gunzipped) that counts the line ends it has
    handed out (:attr:`newlines`) and raises :class:`~schedlab.errors.DataFormatError`, naming the
    line being read, when the file cannot be read further.

    :attr:`saw_quote` tells whether any byte handed out so far was a double quote (only then can a
    CSV field run over several lines); :attr:`ends_with_newline` whether the last byte was a line
    end (true before any byte). A caller that splits the lines itself passes
    ``count_lines=False`` (saving a pass over the bytes) and tells the line of the next byte with
    :meth:`at_line`. With ``quiet=True`` a failed read returns ``b""`` (the end of the file) and
    leaves the error in :attr:`failure` for the caller to raise: for readers in C (pandas) that
    must not see an exception inside a read.
    """

    def __init__(self, path: str | Path, *, count_lines: bool = True, quiet: bool = False):
        super().__init__()
        self.path = str(path)
        self.count_lines, self.quiet = count_lines, quiet
        self.newlines = 0
        self.saw_quote = False
        self.ends_with_newline = True
        self._error: BaseException | None = None
        #: the error raised when reading stopped (kept: pandas may hide it behind its own)
        self.failure: DataFormatError | None = None
        gz = self.path.endswith(".gz")
        self._f: io.BufferedIOBase = gzip.open(path, "rb") if gz else open(path, "rb")

    def readable(self) -> bool:
        return True

    def _fail(self, exc: BaseException) -> DataFormatError:
        line = self.newlines + 1
        where = f" past line {line - 1}" if line > 1 else ""
        self.failure = DataFormatError(
            self.path, line, None, f"cannot read the file{where}: {_reason(exc)}"
        )
        return self.failure

    def at_line(self, line: int) -> None:
        """The next byte read belongs to line ``line`` (with ``count_lines=False``)."""
        self.newlines = line - 1

    def _count(self, data: bytes) -> bytes:
        if data and self.count_lines:
            self.newlines += data.count(b"\n")
            self.ends_with_newline = data.endswith(b"\n")
            if not self.saw_quote and b'"' in data:
                self.saw_quote = True
        return data

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all the rest if negative). Read piece by piece, so that the bytes
        decompressed before a failure are handed out first and the error names the damaged line,
        whatever the size asked for."""
        if self.failure is not None and self.quiet:
            return b""
        if self._error is not None:
            return self._failed(self._error)
        want = -1 if size is None or size < 0 else size
        pieces: list[bytes] = []
        got = 0
        while want < 0 or got < want:
            try:
                piece = self._f.read1(1 << 16 if want < 0 else want - got)
            except (EOFError, OSError, zlib.error) as exc:
                if not pieces:
                    return self._failed(exc)
                self._error = exc  # raised by the next read
                break
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
        return self._count(b"".join(pieces))

    def _failed(self, exc: BaseException) -> bytes:
        failure = self._fail(exc)
        if self.quiet:
            return b""
        raise failure from None

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        if self.failure is not None and self.quiet:
            return b""
        try:
            data = self._f.readline(-1 if size is None else size)
        except (EOFError, OSError, zlib.error) as exc:
            return self._failed(exc)
        return self._count(data)

    def close(self) -> None:
        f = getattr(self, "_f", None)  # None when the file could not be opened
        if f is not None and not self.closed:
            f.close()
        super().close()


def first_line(path: str | Path) -> bytes:
    """The first line of a file (its line end and a leading byte-order mark removed)."""
    with ByteReader(path) as f:
        line = f.readline()
    return line.removeprefix(BOM).removesuffix(b"\n").removesuffix(b"\r")
