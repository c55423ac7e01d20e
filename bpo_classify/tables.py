"""Reading delimited text files: encoding checks, delimiter detection, gzip, stdin.

Everything that opens a user's CSV goes through :func:`open_table`, so every
command reports the same clear errors (missing file, directory, not UTF-8).

Example:
    >>> detect_delimiter("id\\ttext\\toffice")
    '\\t'
    >>> detect_delimiter("role,duty")
    ','
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import sys
from pathlib import Path
from typing import IO, Iterator

from .errors import InputFileError, MissingColumnError

# Job duties can be long paragraphs; lift the csv module's 128 KiB field limit.
csv.field_size_limit(2**31 - 1)

_CANDIDATES = ",\t;|"


def detect_delimiter(header_line: str, path: str = "") -> str:
    """Pick the delimiter from a file name (``.tsv``) or the header line's most common candidate."""
    name = path.lower().removesuffix(".gz")
    if name.endswith(".tsv") or name.endswith(".tab"):
        return "\t"
    counts = {d: header_line.count(d) for d in _CANDIDATES}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def open_text(path: str | Path, encoding: str = "utf-8") -> IO[str]:
    """Open ``path`` (``-`` for stdin, ``.gz`` transparently) as text, checking it exists.

    Decoding is strict: bytes that are not in ``encoding`` raise ``UnicodeDecodeError``
    when read, which :func:`iter_rows` turns into a one-line error.
    """
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputFileError(f"unknown encoding {encoding!r}; try --encoding utf-8 or latin-1") from None
    # A byte-order mark is not part of the first column's name.
    enc = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    if str(path) == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding=enc, newline="")
    p = Path(path)
    if p.is_dir():
        raise InputFileError(f"{p} is a directory; pass a CSV file")
    try:
        if p.name.lower().endswith(".gz"):
            return io.TextIOWrapper(gzip.open(p, "rb"), encoding=enc, newline="")  # type: ignore[arg-type]
        return open(p, encoding=enc, newline="")
    except FileNotFoundError:
        raise InputFileError(f"file not found: {p}") from None
    except PermissionError:
        raise InputFileError(f"permission denied: {p}; check the file's read permissions") from None


class TableReader:
    """Rows of a delimited file as lists of strings, with the header and row numbers.

    ``line`` is the 1-based number of the data row last returned (header is row 0),
    used in error messages.
    """

    def __init__(self, path: str | Path, encoding: str = "utf-8", delimiter: str | None = None):
        self.path = str(path)
        self.encoding = encoding
        self._handle = open_text(path, encoding)
        try:
            first = self._guard(self._handle.readline)
            if not first.strip():
                raise InputFileError(f"{self.path} is empty: expected a header row with column names")
            self.delimiter = delimiter or detect_delimiter(first, self.path)
            # Re-join the first line with the rest so quoted newlines in the header still parse.
            self._reader = csv.reader(_chain(first, self._handle), delimiter=self.delimiter)
            self.header: list[str] = self._guard(lambda: next(self._reader))
        except BaseException:
            self.close()
            raise
        self.line = 0

    def _guard(self, read):  # type: ignore[no-untyped-def]
        try:
            return read()
        except UnicodeDecodeError as exc:
            where = f" after data row {self.line}" if hasattr(self, "line") else ""
            raise InputFileError(
                f"{self.path} is not valid {self.encoding}{where} (byte {exc.object[exc.start:exc.start + 1]!r}); "
                "try --encoding latin-1 or cp1252"
            ) from None
        except csv.Error as exc:
            raise InputFileError(f"{self.path}: malformed CSV near data row {getattr(self, 'line', 0) + 1}: {exc}") from None

    def __iter__(self) -> Iterator[list[str]]:
        reader = self._reader
        while True:
            row = self._guard(lambda: next(reader, None))
            if row is None:
                return
            self.line += 1
            yield row

    def column(self, name: str, option: str) -> int:
        """Index of column ``name``; a clear error naming ``option`` when it is absent."""
        if name in self.header:
            return self.header.index(name)
        raise MissingColumnError(
            f"column {name!r} not found in {self.path}; available: {', '.join(self.header)}; use {option}"
        )

    def close(self) -> None:
        # Closing a wrapper around stdin's buffer would close stdin itself; detach instead.
        if str(self.path) == "-":
            self._handle.detach()
        else:
            self._handle.close()

    def __enter__(self) -> "TableReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _chain(first: str, rest: IO[str]) -> Iterator[str]:
    yield first
    yield from rest
