"""Reading and writing delimited text: encoding checks, delimiter detection, gzip, stdin.

Everything that reads a user's CSV goes through :class:`TableReader` (which opens it
with :func:`open_text`), so every command reports the same clear errors (missing file,
directory, not UTF-8); :func:`write_table` and :func:`render_rows` write the bytes
Python's csv module would, faster.

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
import operator
import os
import re
import sys
import zlib
from pathlib import Path
from typing import IO, Iterable, Iterator, Sequence

from .errors import InputFileError, MissingColumnError

# Job duties can be long paragraphs; lift the csv module's 128 KiB field limit.
csv.field_size_limit(2**31 - 1)
#: Longest physical line read (in characters). A file with no line break for this long
#: (a binary file, a sparse file of zero bytes) is rejected instead of being loaded whole.
MAX_LINE_CHARS = 64 * 2**20

_CANDIDATES = ",\t;|"


def detect_delimiter(header_line: str, path: str = "") -> str:
    """Pick the delimiter from a file name (``.tsv``) or the header line's most common candidate.

    A ``.tsv`` whose header has no tab but another candidate (a CSV saved under the
    wrong name) is read with the delimiter its header uses.
    """
    name = path.lower().removesuffix(".gz")
    counts = {d: header_line.count(d) for d in _CANDIDATES}
    if (name.endswith(".tsv") or name.endswith(".tab")) and (counts["\t"] or not any(counts.values())):
        return "\t"
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def name_list(names: Sequence[object], most: int = 20) -> str:
    """``names`` joined by commas for a one-line message, cut after ``most`` ("... and N more").

    Example:
        >>> name_list([f"c{i}" for i in range(25)], most=3)
        'c0, c1, c2 ... and 22 more'
    """
    shown = ", ".join(map(str, names[:most]))
    return shown + (f" ... and {len(names) - most:,} more" if len(names) > most else "")


def text_encoding(encoding: str) -> codecs.CodecInfo:
    """The codec for ``encoding`` if it decodes bytes to text; :class:`InputFileError` otherwise.

    ``rot13`` and ``hex`` are codecs too, but not text encodings: reading with them fails
    deep inside the io module, so they are refused here with the same message as a typo.

    Example:
        >>> text_encoding("latin-1").name
        'iso8859-1'
        >>> text_encoding("rot13")
        Traceback (most recent call last):
        ...
        bpo_classify.errors.InputFileError: 'rot13' is not a text encoding; try --encoding utf-8 or latin-1
    """
    try:
        info = codecs.lookup(encoding)
    except (LookupError, ValueError):
        raise InputFileError(f"unknown encoding {encoding!r}; try --encoding utf-8 or latin-1") from None
    # _is_text_encoding is how the io module itself tells text encodings from other codecs.
    if not getattr(info, "_is_text_encoding", True):
        raise InputFileError(f"{encoding!r} is not a text encoding; try --encoding utf-8 or latin-1")
    return info


_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the compound-file container of .xls and of encrypted .xlsx
_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")  # the stream an encrypted Office file keeps its content in
EXCEL_HINT = "pip install 'bpo-classify[excel]'"


def office_file_problem(head: bytes, name: str) -> str | None:
    """Why the file starting with ``head`` is not delimited text, if its first bytes say so
    (an Excel workbook, a password-protected one, Parquet, a zip archive); ``None`` otherwise.

    Example:
        >>> office_file_problem(b"PAR1\\x15\\x04", "x.csv")
        'x.csv is a Parquet file, not CSV text: name it x.parquet (Parquet is read by name)'
        >>> office_file_problem(b"role,duty\\n", "x.csv") is None
        True
    """
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0] if name != "standard input" else "duties"
    if head.startswith(_OLE):
        if _ENCRYPTED in head:
            return f"{name} is a password-protected Office file; save a copy without a password (as .xlsx) and label that"
        return (
            f"{name} is an Excel 97-2003 workbook (or another Office file), not CSV text: "
            f"save or rename it as {stem}.xls to read it as a workbook ({EXCEL_HINT})"
        )
    if head.startswith(b"PK\x03\x04"):
        if b"xl/" in head or b"[Content_Types].xml" in head:
            return (
                f"{name} is an Excel workbook (.xlsx), not CSV text: "
                f"save or rename it as {stem}.xlsx to read it as a workbook ({EXCEL_HINT})"
            )
        return f"{name} is a zip archive, not CSV text: unzip it and label the CSV inside"
    if head.startswith(b"PAR1"):
        return f"{name} is a Parquet file, not CSV text: name it {stem}.parquet (Parquet is read by name)"
    return None


def stdin_bytes() -> IO[bytes]:
    """Standard input's byte stream; :class:`InputFileError` when the process has none (``<&-``)."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise InputFileError("standard input is closed; pass a file name instead of -")
    return stream


def open_text(path: str | Path, encoding: str = "utf-8") -> IO[str]:
    """Open ``path`` (``-`` for stdin, ``.gz`` transparently) as text, checking it exists.

    Decoding is strict: bytes that are not in ``encoding`` raise ``UnicodeDecodeError``
    when read, which :class:`TableReader` turns into a one-line error.
    """
    text_encoding(encoding)
    # A byte-order mark is not part of the first column's name.
    enc = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    if str(path) == "-":
        return io.TextIOWrapper(stdin_bytes(), encoding=enc, newline="")
    p = Path(path)
    if p.is_dir():
        raise InputFileError(f"{p} is a directory; pass a CSV file")
    try:
        if p.name.lower().endswith(".gz"):
            return io.TextIOWrapper(gzip.open(p, "rb"), encoding=enc, newline="")  # type: ignore[arg-type]
        return open(p, encoding=enc, newline="")
    except (FileNotFoundError, PermissionError) as exc:
        raise opening_error(str(p), exc) from None


def opening_error(name: str, exc: OSError) -> InputFileError:
    """The one-line error for an input file that cannot be opened (every reader says it the same way).

    Example:
        >>> str(opening_error("in.csv", FileNotFoundError(2, "No such file or directory")))
        'file not found: in.csv'
    """
    if isinstance(exc, FileNotFoundError):
        return InputFileError(f"file not found: {name}")
    if isinstance(exc, PermissionError):
        return InputFileError(f"permission denied: {name}; check the file's read permissions")
    return InputFileError(f"cannot read {name}: {exc.strerror or exc}")


def read_lines(data: bytes, name: str = "standard input") -> list[str]:
    """``data`` as UTF-8 text, one item per line; a line ends at ``\\n``, ``\\r\\n`` or ``\\r`` only.

    Example:
        >>> read_lines(b"process invoices\\r\\nanswer calls\\x0cnow\\n")
        ['process invoices', 'answer calls\\x0cnow']
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputFileError(
            f"{name} is not valid UTF-8 (byte {data[exc.start:exc.start + 1]!r} on line {line}); "
            "convert it first, e.g. iconv -f latin1 -t utf-8"
        ) from None
    lines = re.split(r"\r\n|\r|\n", text)
    if lines[-1] == "":
        lines.pop()
    return lines


#: What reading a file can raise below the text layer: a corrupt or truncated ``.gz``
#: (``EOFError``, ``zlib.error``, ``gzip.BadGzipFile``) or a read error from the device.
READ_FAULTS = (OSError, EOFError, zlib.error)


def reading_error(name: str, exc: BaseException) -> InputFileError:
    """The one-line error for a file that cannot be read to its end (one of :data:`READ_FAULTS`).

    Both engines use it, so a truncated ``.gz`` reads the same under ``--engine dask``.

    Example:
        >>> str(reading_error("in.csv.gz", EOFError("Compressed file ended before the end-of-stream marker was reached")))
        'cannot read in.csv.gz: Compressed file ended before the end-of-stream marker was reached'
    """
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return InputFileError(f"cannot read {name}: {detail}")


def decoding_error(name: str, encoding: str, exc: UnicodeError, where: str = "", at_start: bool = False) -> InputFileError:
    """The one-line error for bytes that are not ``encoding`` (``where``: e.g. " after data row 12").

    ``at_start``: the error is in the first bytes read, where a UTF-16 byte-order mark is
    worth naming. Both engines use it, so the messages are the same.

    Example:
        >>> try:
        ...     b"caf\\xe9".decode("utf-8")
        ... except UnicodeDecodeError as exc:
        ...     print(decoding_error("in.csv", "utf-8", exc, " after data row 3"))
        in.csv is not valid utf-8 after data row 3 (byte b'\\xe9'); try --encoding latin-1 or cp1252
    """
    if not isinstance(exc, UnicodeDecodeError) or not isinstance(exc.object, (bytes, bytearray)):
        # utf-16/utf-32 without a byte-order mark raise the base class
        return InputFileError(f"{name} cannot be read as {encoding}: {exc}; try --encoding utf-16-le or utf-16-be")
    if at_start and exc.start == 0 and exc.object[:2] in (b"\xff\xfe", b"\xfe\xff"):
        hint = "it starts with a UTF-16 byte-order mark: try --encoding utf-16"
    else:
        hint = "try --encoding latin-1 or cp1252"
    return InputFileError(f"{name} is not valid {encoding}{where} (byte {exc.object[exc.start:exc.start + 1]!r}); {hint}")


class TableSource:
    """What every table reader has (:class:`TableReader`, ``excel.ExcelReader``, ``readers.ParquetReader``):
    the header and the name messages use, a column looked up by name, and ``with`` closing it."""

    header: list[str]
    name: str

    def column(self, name: str, option: str) -> int:
        """Index of column ``name``; a clear error naming ``option`` when it is absent."""
        if name in self.header:
            return self.header.index(name)
        raise MissingColumnError(
            f"column {name!r} not found in {self.name}; available: {name_list(self.header)}; use {option}"
        )

    def text_at(self, index: int) -> None:
        """Give the cells of column ``index`` as text (they are, unless a reader keeps typed cells)."""

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> "TableSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TableReader(TableSource):
    """Rows of a delimited file as lists of strings, with the header and row numbers.

    ``line`` is the 1-based number of the data row last returned (header is row 0),
    used in error messages.
    """

    def __init__(self, path: str | Path, encoding: str = "utf-8", delimiter: str | None = None, name: str | None = None):
        self.path = str(path)
        #: How messages name the input (``name``, e.g. the name of an uploaded file rather than its temporary copy).
        self.name = name or ("standard input" if self.path == "-" else self.path)
        self.encoding = encoding
        self._handle = open_text(path, encoding)
        try:
            self._refuse_binary()
            first = self._guard(self._readline)
            if not first.strip():
                raise InputFileError(f"{self.name} is empty: expected a header row with column names")
            if "\x00" in first:
                raise InputFileError(f"{self.name}: the header holds NUL bytes; is it a CSV text file?")
            self.delimiter = delimiter or detect_delimiter(first, self.path)
            # Re-join the first line with the rest so quoted newlines in the header still parse.
            # strict: a quote left open at the end of the file is an error, not a field that
            # silently swallows every row after it.
            self._reader = csv.reader(self._lines(first), delimiter=self.delimiter, strict=True)
            self.header: list[str] = self._guard(lambda: next(self._reader))
        except BaseException:
            self.close()
            raise
        self.line = 0

    def _refuse_binary(self) -> None:
        """A one-line error if the first bytes are a workbook's or another binary format's (not a decoding error)."""
        buffer = getattr(self._handle, "buffer", None)
        peek = getattr(buffer, "peek", None)
        if peek is not None:
            head = self._guard(lambda: peek(4096)[:4096])  # a corrupt .gz fails here
        elif buffer is not None and buffer.seekable():  # e.g. a BytesIO given as stdin
            where = buffer.tell()
            head = buffer.read(4096)
            buffer.seek(where)
        else:
            head = b""
        problem = office_file_problem(head, self.name)
        if problem is not None:
            raise InputFileError(problem)

    def progress(self) -> tuple[int, int | None]:
        """Bytes read so far and the file's size (``None`` when unknown, e.g. standard input).

        For a ``.gz`` file both count compressed bytes. Meant for progress bars: the
        position runs ahead of the rows returned by up to one read buffer.
        """
        buffer = getattr(self._handle, "buffer", None)
        raw = getattr(buffer, "fileobj", buffer)  # a GzipFile reads from .fileobj
        try:
            return raw.tell(), os.fstat(raw.fileno()).st_size if self.path != "-" else None  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError):
            return 0, None

    def _readline(self) -> str:
        # Bounded, so a file without line breaks is never read into memory whole.
        line = self._handle.readline(MAX_LINE_CHARS)
        if len(line) == MAX_LINE_CHARS and line[-1] not in "\r\n":
            where = f"data row {self.line + 1}" if hasattr(self, "line") else "the header"
            raise InputFileError(
                f"{self.name}: {where} runs over {MAX_LINE_CHARS // 2**20} Mi characters without a line break; "
                "is it a CSV text file?"
            )
        return line

    def _lines(self, first: str) -> Iterator[str]:
        yield first
        while line := self._readline():
            yield line

    def _guard(self, read):  # type: ignore[no-untyped-def]
        try:
            return read()
        except UnicodeError as exc:
            where = f" after data row {self.line}" if hasattr(self, "line") else ""
            raise decoding_error(self.name, self.encoding, exc, where, at_start=not where) from None
        except csv.Error as exc:
            where = f"data row {getattr(self, 'line', 0) + 1}" if hasattr(self, "line") else "the header"
            if "unexpected end of data" in str(exc):
                raise InputFileError(
                    f"{self.name}: a quote opened in {where} is never closed (end of file reached); check its quoting"
                ) from None
            raise InputFileError(f"{self.name}: malformed CSV in {where}: {exc}; check its quoting") from None
        except (OSError, EOFError, zlib.error) as exc:
            raise reading_error(self.name, exc) from None

    def __iter__(self) -> Iterator[list[str]]:
        reader = self._reader
        while True:
            row = self._guard(lambda: next(reader, None))
            if row is None:
                return
            self.line += 1
            yield row

    def close(self) -> None:
        # Closing a wrapper around stdin's buffer would close stdin itself; detach instead.
        if str(self.path) == "-":
            self._handle.detach()
        else:
            self._handle.close()


def write_table(out: IO[str], header: Sequence[str], rows: Iterable[Sequence[str]], delimiter: str = ",") -> None:
    """Write ``header`` and ``rows`` as delimited text with ``\\n`` line endings.

    The csv module quotes a field holding ``\\n`` but not one holding a lone ``\\r``
    when the line terminator is ``\\n``, which makes the output unreadable; a row
    with a ``\\r`` in any field is therefore written with every field quoted.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> write_table(out, ["id", "text"], [["1", "a,b"], ["2", "x\\ry"]])
        >>> out.getvalue()
        'id,text\\n1,"a,b"\\n"2","x\\ry"\\n'
    """
    write_rows(out, [header], delimiter)
    batch: list[Sequence[str]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == 1000:
            write_rows(out, batch, delimiter)
            batch = []
    write_rows(out, batch, delimiter)


def write_rows(out: IO[str], rows: Sequence[Sequence[str]], delimiter: str = ",") -> None:
    """Write a batch of rows exactly as :func:`write_table` writes them (no header).

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> write_rows(out, [["1", "a,b"], ["2", "x\\ry"]], "\\t")
        >>> out.getvalue()
        '1\\ta,b\\n"2"\\t"x\\ry"\\n'
    """
    text = _render(rows, delimiter)
    if text is not None:
        out.write(text)
        return
    pieces = _Pieces()
    plain = csv.writer(pieces, delimiter=delimiter, lineterminator="\n")
    quoted = csv.writer(pieces, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in rows:
        (quoted if "\r" in "".join(map(str, row)) else plain).writerow(row)
    out.write("".join(pieces))


def _render(rows: Sequence[Sequence[str]], delimiter: str) -> str | None:
    """The text csv.writer (minimal quoting, ``\\n`` line ends) makes of ``rows``; see :func:`render_columns`."""
    if not rows:
        return ""
    try:
        columns = list(zip(*rows, strict=True))
    except ValueError:  # rows of different widths
        return None
    return render_columns(columns, delimiter)


def render_columns(columns: list[Sequence[str]], delimiter: str = ",") -> str | None:
    """The text csv.writer (minimal quoting, ``\\n`` line ends) makes of the rows these columns hold.

    The csv module costs several microseconds a row; this checks each column of the
    batch at once and quotes only the values that need it (a delimiter, a quote or a
    line break inside). ``None`` for what it leaves to the csv module: rows of one
    field, non-string fields, a ``\\r`` anywhere.

    Example:
        >>> render_columns([("1", "2"), ("a,b", "c")])
        '1,"a,b"\\n2,c\\n'
    """
    if len(columns) < 2:
        return None
    try:
        texts = ["".join(column) for column in columns]
    except TypeError:
        return None
    if any("\r" in text for text in texts):
        return None
    d = delimiter
    columns = list(columns)
    for j, text in enumerate(texts):
        if d in text or '"' in text or "\n" in text:
            # Quote each distinct value once (columns repeat values: locations, roles, labels).
            quoted = {v: '"' + v.replace('"', '""') + '"' for v in set(columns[j]) if d in v or '"' in v or "\n" in v}
            columns[j] = list(map(quoted.get, columns[j], columns[j]))
    return "\n".join(map(d.join, zip(*columns))) + "\n"


def render_rows(rows: list[list[str]], delimiter: str = ",", tails: Sequence[Sequence[str]] | None = None) -> str | None:
    """Like :func:`render_columns` for ``rows`` (lists, all as wide), each followed by its ``tails`` cells.

    Faster on wide batches: no transposing. The fields that need quoting are replaced,
    in ``rows`` itself, by their quoted form, so pass rows that are not used again.
    ``tails`` cells must need no quoting (no delimiter, quote or line break). ``None``
    (and ``rows`` untouched) for what it leaves to the csv module, as ``render_columns``.

    Example:
        >>> render_rows([["1", "a,b"], ["2", "c"]], ",", [("x",), ("y",)])
        '1,"a,b",x\\n2,c,y\\n'
    """
    if not rows:
        return ""
    width = len(rows[0])
    if width + (len(tails[0]) if tails else 0) < 2 or set(map(len, rows)) != {width}:
        return None
    d = delimiter
    quote: list[int] = []
    try:
        for j in range(width):
            text = "".join(map(operator.itemgetter(j), rows))
            if "\r" in text:
                return None
            if d in text or '"' in text or "\n" in text:
                quote.append(j)
    except TypeError:  # a field that is not a string
        return None
    for j in quote:
        column = list(map(operator.itemgetter(j), rows))
        quoted = {v: '"' + v.replace('"', '""') + '"' for v in set(column) if d in v or '"' in v or "\n" in v}
        for row, value in zip(rows, map(quoted.get, column, column)):
            row[j] = value
    lines = map(operator.add, rows, map(list, tails)) if tails else rows
    return "\n".join(map(d.join, lines)) + "\n"


class _Pieces(list):  # type: ignore[type-arg]
    """A file-like list of strings for ``csv.writer``, joined once."""

    write = list.append
