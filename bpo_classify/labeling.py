"""Batch labelling of CSV files: every input row and column kept, five columns added.

The input is streamed in chunks, so memory stays flat however long the file is;
the output is written atomically (nothing appears under the final name until the
whole file is labelled).

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "duties.csv").write_text("role,duty\\nClerk,process invoices\\n", encoding="utf-8")
    >>> summary = label_csv(d / "duties.csv", d / "labelled.csv")
    >>> summary.rows, (d / "labelled.csv").read_text().splitlines()[0]
    (1, 'role,duty,office,office_confidence,function,function_confidence,needs_review')
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import multiprocessing
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Sequence

from .atomic import atomic_output
from .errors import ColumnConflictError, InputFileError, MissingColumnError, OutputFileError, WorkerError
from .model import Model, load_model
from .policy import FRONT
from .tables import TableReader, write_rows

ADDED_COLUMNS = ("office", "office_confidence", "function", "function_confidence", "needs_review")
#: Column names taken to hold the task text when ``text_column`` is not given.
TEXT_COLUMN_NAMES = {
    "text", "task", "tasks", "duty", "duties", "description", "task description", "job duty",
    "job duties", "duty description", "activity", "process", "process name", "statement",
    "task statement", "responsibility", "responsibilities", "scope",
}
DEFAULT_CHUNK = 5000
#: How many distinct texts' labels a labelling process remembers (see :class:`Labeller`).
CACHE_SIZE = 50_000
#: Row numbers of padded short rows kept for the summary (all are counted).
MAX_REPORTED_ROWS = 100
#: The cells of a row with no text.
EMPTY_LABELS = ("", "", "", "", "true")


@dataclass
class LabelSummary:
    """Counts from one labelling run (what the CLI prints to stderr)."""

    rows: int = 0
    front: int = 0
    back: int = 0
    needs_review: int = 0
    empty: int = 0
    padded_rows: list[int] = field(default_factory=list)  # rows with fewer fields than the header (the first 100)
    padded: int = 0  # how many such rows
    text_column: str = ""
    output: str = ""

    def add(self, chunk: "LabelledChunk") -> None:
        """Count a labelled chunk in."""
        self.rows += chunk.rows
        self.front += chunk.front
        self.back += chunk.back
        self.needs_review += chunk.needs_review
        self.empty += chunk.empty

    def line(self) -> str:
        """The one-line summary, e.g. ``labelled 50 rows: 21 front-office, 29 back-office, 4 need review``."""
        text = f"labelled {self.rows} rows: {self.front} front-office, {self.back} back-office, {self.needs_review} need review"
        if self.empty:
            text += f" ({self.empty} with no text)"
        padded = max(self.padded, len(self.padded_rows))
        if padded:
            shown = ", ".join(map(str, self.padded_rows[:5])) + (" ..." if padded > 5 else "")
            text += f"; {padded} short rows padded with empty fields (rows {shown})"
        return text


def choose_text_column(header: Sequence[str], requested: str | None = None, source: str = "input") -> int:
    """Index of the text column: ``requested`` if given, else the only plausible one.

    Raises :class:`MissingColumnError` listing the columns when the choice is not clear.
    """
    if requested is not None:
        if list(header).count(requested) > 1:
            where = ", ".join(str(i + 1) for i, name in enumerate(header) if name == requested)
            raise MissingColumnError(
                f"column {requested!r} appears more than once in {source} (columns {where}); rename one of them"
            )
        if requested in header:
            return list(header).index(requested)
        raise MissingColumnError(
            f"column {requested!r} not found in {source}; available: {', '.join(header)}; use --text-column"
        )
    if len(header) == 1:
        return 0
    key = lambda name: re.sub(r"[\s_\-]+", " ", name.strip().lower())  # noqa: E731
    matches = [i for i, name in enumerate(header) if key(name) in TEXT_COLUMN_NAMES]
    if len(matches) == 1:
        return matches[0]
    why = "several columns could hold the text" if matches else "no column is obviously the text"
    raise MissingColumnError(f"{why}; columns: {', '.join(header)}; name one with --text-column")


def added_names(header: Sequence[str], prefix: str = "") -> list[str]:
    """The five added column names; an error naming ``--prefix`` if one already exists."""
    names = [prefix + n for n in ADDED_COLUMNS]
    clash = [n for n in names if n in header]
    if clash:
        raise ColumnConflictError(
            f"input already has column(s) {', '.join(clash)}; choose another --prefix (e.g. --prefix bpo_)"
        )
    return names


def format_labels(model: Model, texts: Sequence[str | None], threshold: float | None) -> list[list[str]]:
    """The five added cells for each text, formatted for CSV (confidences to 4 decimals).

    A text's cells do not depend on the batch it comes in.
    """
    cols = model.predict_columns(texts, threshold)
    out = []
    for i in range(len(texts)):
        if cols.office[i] is None:
            out.append(list(EMPTY_LABELS))
        else:
            out.append([
                cols.office[i],  # type: ignore[list-item]
                f"{cols.office_confidence[i]:.4f}",
                cols.function[i],  # type: ignore[list-item]
                f"{cols.function_confidence[i]:.4f}",
                "true" if cols.needs_review[i] else "false",
            ])
    return out


class Labeller:
    """Labels chunks of rows: each distinct text is scored once and its cells remembered.

    Job-duty exports repeat the same lines many times, so the formatted cells of up to
    ``cache_size`` texts are kept (then the memory starts afresh, so it stays bounded).
    The cells are those :func:`format_labels` gives, whatever was labelled before.

    Example:
        >>> from bpo_classify import load_model
        >>> labeller = Labeller(load_model(), text_index=1)
        >>> labeller.chunk([["Clerk", "process invoices"], ["Clerk", "process invoices"]]).front
        0
    """

    def __init__(
        self, model: Model, text_index: int, threshold: float | None = None, delimiter: str = ",",
        parquet: bool = False, cache_size: int | None = None,
    ):
        self.model = model
        self.text_index = text_index
        self.threshold = threshold
        self.delimiter = delimiter
        self.parquet = parquet
        self.cache_size = CACHE_SIZE if cache_size is None else cache_size
        self.cache: dict[str, list[str]] = {}

    def labels(self, texts: Sequence[str], known: dict[str, list[str]] | None = None) -> list[list[str]]:
        """The five cells of each text (lists shared between equal texts: do not modify them).

        ``known`` holds cells already worked out elsewhere (by the main process, for a
        worker). The cells computed here, for texts seen for the first time, are left in
        :attr:`new`.
        """
        unique = dict.fromkeys(texts)
        if len(self.cache) + len(unique) > self.cache_size:
            self.cache.clear()
        if known:
            self.cache.update(known)
        missing = [t for t in unique if t not in self.cache]
        self.new = dict(zip(missing, format_labels(self.model, missing, self.threshold))) if missing else {}
        self.cache.update(self.new)
        return list(map(self.cache.__getitem__, texts))

    def chunk(self, rows: list[list[str]], known: dict[str, list[str]] | None = None) -> "LabelledChunk":
        """Label ``rows`` (each as wide as the header) and render them as CSV text or Parquet columns."""
        labels = self.labels([row[self.text_index] for row in rows], known)
        offices = [cells[0] for cells in labels]
        front, empty = offices.count(FRONT), offices.count("")
        review = [cells[4] for cells in labels].count("true")
        if self.parquet:
            data: Any = _columns(rows, labels)
        else:
            out = _Pieces()
            write_rows(out, [row + cells for row, cells in zip(rows, labels)], self.delimiter)
            data = "".join(out)
        return LabelledChunk(data, len(rows), front, len(rows) - front - empty, review, empty, self.new)


@dataclass
class LabelledChunk:
    """One labelled chunk: CSV text (or Parquet columns) and its counts."""

    data: Any
    rows: int
    front: int
    back: int
    needs_review: int
    empty: int
    #: Cells of the texts first labelled in this chunk (passed back to the main process).
    new: dict[str, list[str]] = field(default_factory=dict)


class _Pieces(list):  # type: ignore[type-arg]
    """A file-like list of strings, for ``csv.writer``: join it once at the end."""

    write = list.append


def _columns(rows: list[list[str]], labels: list[list[str]]) -> list[list[Any]]:
    """Parquet columns: the input's as text, the labels typed (empty cells as nulls)."""
    columns: list[list[Any]] = [list(c) for c in zip(*rows)] if rows else []
    office, oconf, function, fconf, review = (list(c) for c in zip(*labels)) if labels else ([], [], [], [], [])
    return columns + [
        [v or None for v in office],
        [float(v) if v else None for v in oconf],
        [v or None for v in function],
        [float(v) if v else None for v in fconf],
        [v == "true" for v in review],
    ]


def chunked_rows(
    rows: Iterable[list[str]], width: int, chunk_size: int = DEFAULT_CHUNK, summary: LabelSummary | None = None,
    first_row: int = 1,
) -> Iterator[list[list[str]]]:
    """Group rows into chunks, padding short rows to ``width`` (reported in ``summary``).

    A row with more fields than the header is an :class:`InputFileError` naming its
    number: its fields cannot be matched to columns.
    """
    summary = summary if summary is not None else LabelSummary()
    chunk: list[list[str]] = []
    number = first_row - 1
    for row in rows:
        number += 1
        if len(row) != width:
            if len(row) > width:
                raise InputFileError(
                    f"data row {number} has {len(row)} fields but the header has {width}; "
                    "check the delimiter or quoting of that row"
                )
            summary.padded += 1
            if len(summary.padded_rows) < MAX_REPORTED_ROWS:
                summary.padded_rows.append(number)
            row = row + [""] * (width - len(row))
        chunk.append(row)
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def label_rows(
    model: Model, rows: Iterable[list[str]], text_index: int, width: int, *, threshold: float | None = None,
    chunk_size: int = DEFAULT_CHUNK, summary: LabelSummary | None = None, first_row: int = 1,
) -> Iterator[list[str]]:
    """Yield each input row (padded to ``width`` fields) with its five labels appended, in order."""
    summary = summary if summary is not None else LabelSummary()
    labeller = Labeller(model, text_index, threshold)
    for chunk in chunked_rows(rows, width, chunk_size, summary, first_row):
        labels = labeller.labels([row[text_index] for row in chunk])
        for row, added in zip(chunk, labels):
            summary.rows += 1
            if not added[0]:
                summary.empty += 1
            elif added[0] == FRONT:
                summary.front += 1
            else:
                summary.back += 1
            summary.needs_review += added[4] == "true"
            yield row + added


def available_cores() -> int:
    """How many CPU cores this process may use (the default for ``jobs``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def label_csv(
    input: str | Path,
    output: str | Path | None = None,
    *,
    model: Model | None = None,
    text_column: str | None = None,
    prefix: str = "",
    threshold: float | None = None,
    encoding: str = "utf-8",
    chunk_size: int = DEFAULT_CHUNK,
    stdout: IO[str] | None = None,
    jobs: int | None = 1,
    progress: Callable[[int, int, int | None], None] | None = None,
) -> LabelSummary:
    """Label every row of ``input`` (``-`` for stdin) and write ``output`` (``None`` or ``-``: stdout).

    The output keeps the input's rows, order and columns and adds ``office``,
    ``office_confidence``, ``function``, ``function_confidence`` and ``needs_review``
    (each preceded by ``prefix``). It is CSV with the input's delimiter, or Parquet when
    ``output`` ends in ``.parquet`` (needs pyarrow: ``pip install 'bpo-classify[parquet]'``).
    Raises a :class:`~bpo_classify.errors.BpoClassifyError` subclass for bad input; in
    that case, as when interrupted, no output file is left behind.

    The input is read ``chunk_size`` rows at a time. ``jobs`` worker processes (``None``:
    one per available core) label the chunks; the output is the same whatever
    ``jobs`` and ``chunk_size``. ``progress``, if given, is called after each chunk with
    the rows written so far, the input bytes read and the input's size (``None`` if unknown).
    """
    to_stdout = output is None or str(output) == "-"
    if not to_stdout and str(input) != "-" and _same_file(Path(input), Path(output)):  # type: ignore[arg-type]
        raise OutputFileError(f"refusing to overwrite the input file {input}; choose another output path")
    parquet = not to_stdout and str(output).lower().endswith(".parquet")
    if parquet:
        _require_pyarrow()
    jobs = available_cores() if jobs is None else max(1, jobs)
    model = model if model is not None else load_model()
    summary = LabelSummary(output="<stdout>" if to_stdout else str(output))
    with TableReader(input, encoding) as table:
        text_index = choose_text_column(table.header, text_column, str(input))
        summary.text_column = table.header[text_index]
        header = table.header + added_names(table.header, prefix)
        chunks = chunked_rows(table, len(table.header), chunk_size, summary)
        labeller = (model, text_index, threshold, table.delimiter, parquet)
        with _sink(output, to_stdout, stdout, header, table.delimiter, parquet) as write:
            for done in _label_chunks(chunks, labeller, jobs):
                write(done.data)
                summary.add(done)
                if progress is not None:
                    progress(summary.rows, *table.progress())
    return summary


@contextlib.contextmanager
def _sink(
    output: str | Path | None, to_stdout: bool, stdout: IO[str] | None, header: list[str], delimiter: str, parquet: bool
) -> Iterator[Callable[[Any], None]]:
    """A function that writes one chunk's data, to stdout or atomically to ``output``."""
    if to_stdout:
        out = stdout or sys.stdout
        write_rows(out, [header], delimiter)
        yield out.write
    elif parquet:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema(
            [(name, pa.string()) for name in header[:-5]]
            + list(zip(header[-5:], [pa.string(), pa.float64(), pa.string(), pa.float64(), pa.bool_()]))
        )
        with atomic_output(Path(output), binary=True) as f:  # type: ignore[arg-type]
            with pq.ParquetWriter(f, schema) as writer:
                yield lambda columns: writer.write_table(pa.Table.from_arrays(
                    [pa.array(c, type=t) for c, t in zip(columns, schema.types)], schema=schema
                ))
    else:
        with atomic_output(Path(output)) as out:  # type: ignore[arg-type]
            # Keep the input's delimiter so a TSV stays a TSV; lineterminator "\n" as most tools expect.
            write_rows(out, [header], delimiter)
            yield out.write


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise OutputFileError(
            "writing Parquet needs pyarrow, which is not installed: pip install 'bpo-classify[parquet]' "
            "(or write a .csv)"
        ) from None


# -- parallel labelling -----------------------------------------------------------------------
_WORKER: Labeller | None = None


def _start_worker(args: tuple[Any, ...]) -> None:
    # Ctrl-C is for the main process, which stops the pool; a worker just finishes its chunk.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    global _WORKER
    _WORKER = Labeller(*args)


def _work(rows: list[list[str]], known: dict[str, list[str]]) -> LabelledChunk:
    assert _WORKER is not None
    return _WORKER.chunk(rows, known)


def _label_chunks(chunks: Iterator[list[list[str]]], args: tuple[Any, ...], jobs: int) -> Iterator[LabelledChunk]:
    """Labelled chunks, in input order: in this process, or in ``jobs`` worker processes.

    Each worker receives the model once, when it starts. The main process remembers the
    cells of the texts labelled so far and sends those a chunk needs along with it, so a
    text is scored by one worker, not by each. At most two chunks per worker are read
    ahead, so memory does not grow with the input. A file of one chunk is labelled
    here, without starting any process.
    """
    first = next(chunks, None)
    second = next(chunks, None) if first is not None else None
    if jobs == 1 or second is None:
        labeller = Labeller(*args)
        for chunk in itertools.chain([c for c in (first, second) if c is not None], chunks):
            yield labeller.chunk(chunk)
        return
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    text_index = args[1]
    cache: dict[str, list[str]] = {}
    pool = ProcessPoolExecutor(jobs, mp_context=_start_method(), initializer=_start_worker, initargs=(args,))
    try:
        pending: collections.deque[Any] = collections.deque()
        for chunk in itertools.chain([first, second], chunks):
            texts = {row[text_index] for row in chunk}
            pending.append(pool.submit(_work, chunk, {t: cache[t] for t in texts if t in cache}))
            if len(pending) >= 2 * jobs:
                done = pending.popleft().result()
                if len(cache) + len(done.new) > CACHE_SIZE:
                    cache.clear()
                cache.update(done.new)
                yield done
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool:
        raise WorkerError("a labelling worker process stopped unexpectedly (out of memory?); try --jobs 1") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _start_method() -> Any:
    """``fork`` where it is safe (POSIX, no other thread running): workers start at once and
    inherit the loaded model; otherwise ``spawn``."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1 and sys.platform != "darwin":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False
