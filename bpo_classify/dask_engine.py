"""Labelling on a Dask cluster: many files (or one Dask DataFrame), labelled partition by partition.

Needs the ``dask`` extra (``pip install 'bpo-classify[dask]'``); Dask is imported only
inside this module's functions, so ``import bpo_classify`` and the local ``label`` never
load it. Each partition is labelled by :func:`bpo_classify.labeling.format_labels`, the
code the local engine runs, so the added cells are the same strings, and each part is
written by the local engine's sink for its format (``outputs.py``).

How the model reaches the workers: its ``.bpoc`` bytes (the array-only format, no
pickled code), about 11 MB. With a ``distributed`` client running when the labelling is
built, they are scattered once to every worker (a task graph that held them would be
over distributed's 10 MB large-graph warning); a worker that joins later fetches them
from one that has them. Without one (a local scheduler), they are one node of the
graph. Each worker process loads the model once and keeps it for all its partitions.

Example:
    >>> import dask.dataframe as dd, pandas as pd
    >>> frame = dd.from_pandas(pd.DataFrame({"role": ["Clerk", "Agent"],
    ...     "duty": ["process invoices", "answer live chat inquiries"]}), npartitions=2)
    >>> labelled = label_dataframe(frame, "duty").compute(scheduler="sync")
    >>> list(labelled.columns)
    ['role', 'duty', 'office', 'office_confidence', 'function', 'function_confidence', 'needs_review', 'review_reason']
    >>> labelled["office"].tolist()
    ['back-office', 'front-office']
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import csv
import hashlib
import io
import itertools
import logging
import os
import re
import signal
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from .errors import BpoClassifyError, InputFileError, OutputFileError
from .extras import DASK
from .labeling import DEFAULT_CHUNK, LabelOptions, choose_text_column, format_labels
from .model import Model, default_model_path, model_from_bytes, model_to_bytes
from .modelfile import read_model_bytes
from .outputs import SINKS, Counts, LabelSummary, added_columns, added_names, format_for, sink_format, too_long_row
from .tables import MAX_LINE_CHARS, READ_FAULTS, decoding_error, detect_delimiter, name_list, opening_error, reading_error, text_encoding

if TYPE_CHECKING:  # pragma: no cover
    import dask.dataframe as dd
    from distributed import Client

#: Name of the column that catches a field beyond the header's (a row that is too long).
_EXTRA = "\x00bpo-classify extra field"
#: Output part files: ``part-00000.csv`` (or ``.tsv``, ``.parquet``), in partition order.
PART_NAME = "part-{:05d}.{}"
#: Written last: its presence says the output directory is complete.
SUCCESS_MARKER = "_SUCCESS"


class DaskClusterError(BpoClassifyError):
    """The Dask scheduler cannot be reached, or the cluster failed the run."""


def require_dask() -> None:
    """Raise :class:`~bpo_classify.errors.MissingExtraError`, saying how to install Dask, if it cannot be imported."""
    DASK.require("--engine dask")


# -- the model on the workers ---------------------------------------------------------------
_MODELS: OrderedDict[str, Model] = OrderedDict()
_MODELS_LOCK = threading.Lock()


def model_bytes(model: Model | str | Path | None = None) -> bytes:
    """The ``.bpoc`` bytes of ``model`` (a loaded model, a model file, or ``None``: the shipped one).

    A model file is checked here, so a bad file fails on the client with a clear error.
    """
    if isinstance(model, Model):
        return model_to_bytes(model)
    path = default_model_path() if model is None else Path(model)
    data = read_model_bytes(path)
    model_from_bytes(data, str(path))  # raises ModelFileError for a foreign or corrupt file
    return data


def _worker_model(digest: str, data: bytes) -> Model:
    """The model for ``digest``, loaded from ``data`` once per process and then kept."""
    with _MODELS_LOCK:
        if digest in _MODELS:
            _MODELS.move_to_end(digest)
            return _MODELS[digest]
        model = model_from_bytes(data)  # the array-only loader: nothing in the bytes is executed
        _MODELS[digest] = model
        while len(_MODELS) > 2:  # a long-lived worker serving several models keeps the latest two
            _MODELS.popitem(last=False)
        return model


# -- labelling a Dask DataFrame ---------------------------------------------------------------
def _string_dtype() -> Any:
    import pandas as pd

    return pd.StringDtype("pyarrow")


@dataclass(frozen=True)
class _PartitionLabels:
    """What each partition task is told, besides the model's bytes: which model, which column, which names."""

    digest: str
    text_column: str
    names: list[str]
    threshold: float | None
    top_functions: int = 1


def _label_partition(df: Any, data: bytes, task: _PartitionLabels) -> Any:
    """One pandas partition with the added label columns (the local engine's cells)."""
    import pandas as pd

    if _EXTRA in df.columns:
        extra = df[_EXTRA]
        if (extra != "").any():
            raise InputFileError(too_long_row(len(df.columns), len(df.columns) - 1))
        df = df.drop(columns=[_EXTRA])
    texts = [v if isinstance(v, str) else (None if pd.isna(v) else str(v)) for v in df[task.text_column]]
    # Exports repeat the same duty many times: each distinct text is scored once. A text's
    # cells do not depend on the batch it is scored in, so this changes no output.
    # Scored in chunks of the local engine's size: big batches only cost more memory.
    unique = list(dict.fromkeys(texts))
    model = _worker_model(task.digest, data) if unique else None
    cells: dict[str | None, tuple[str, ...]] = {}
    for start in range(0, len(unique), DEFAULT_CHUNK):
        batch = unique[start : start + DEFAULT_CHUNK]
        cells.update(zip(batch, format_labels(model, batch, task.threshold, task.top_functions)))  # type: ignore[arg-type]
    labels = [cells[t] for t in texts]
    columns = list(zip(*labels)) if labels else [()] * len(task.names)
    out = df.copy(deep=False)
    for name, values in zip(task.names, columns):
        out[name] = pd.array(list(values), dtype=_string_dtype())
    return out


def label_dataframe(
    frame: "dd.DataFrame",
    text_column: str | None = None,
    *,
    model: Model | str | Path | None = None,
    prefix: str = "",
    threshold: float | None = None,
    top_functions: int = 1,
) -> "dd.DataFrame":
    """``frame`` with ``office``, ``office_confidence``, ``function``, ``function_confidence``,
    ``needs_review`` and ``review_reason`` (and with ``top_functions`` K > 1 the runners-up
    ``function_2`` ... ``function_K_confidence``; each after ``prefix``) added: lazy, one task per partition.

    ``text_column`` defaults to the only plausible column, as in ``label_csv``. ``model`` is a
    loaded :class:`~bpo_classify.model.Model`, a model file, or ``None`` for the shipped model;
    its bytes reach each worker once (see the module docstring). The added columns are strings
    formatted as the local engine writes them (confidences to four decimals, ``true``/``false``);
    a missing or blank text gets empty labels and ``needs_review`` ``true``.
    """
    require_dask()
    header = [str(c) for c in frame.columns if c != _EXTRA]
    text_column = header[choose_text_column(header, text_column, "the Dask DataFrame")]
    return _labelled(frame, model_bytes(model), text_column, added_names(header, prefix, top_functions), threshold, top_functions)


def _labelled(
    frame: "dd.DataFrame", data: bytes, text_column: str, names: list[str], threshold: float | None, top_functions: int = 1
) -> "dd.DataFrame":
    """The lazy labelling of ``frame`` with the model whose file bytes are ``data``."""
    import pandas as pd

    task = _PartitionLabels(hashlib.sha256(data).hexdigest(), text_column, names, threshold, top_functions)
    meta = frame._meta.drop(columns=[_EXTRA]) if _EXTRA in frame.columns else frame._meta.copy()
    for name in names:
        meta[name] = pd.Series([], index=meta.index[:0], dtype=_string_dtype())
    return frame.map_partitions(_label_partition, _ship(data, task.digest), task, meta=meta)


def _ship(data: bytes, digest: str) -> Any:
    """The model bytes as an argument of the partition tasks: scattered to every worker of the
    running ``distributed`` client, or, with none, one node of the task graph."""
    import dask

    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):  # no distributed, or no client: a local scheduler
        return dask.delayed(data, name=f"bpo-classify-model-{digest[:20]}", pure=True)
    return client.scatter(data, broadcast=True, hash=True)


# -- reading files ---------------------------------------------------------------------------
def expand_inputs(urlpath: str | Sequence[str], storage_options: dict[str, Any] | None = None) -> list[Any]:
    """The files ``urlpath`` names (a path, a glob or any fsspec URL), as fsspec ``OpenFile`` objects."""
    return [f for f, _ in _expand(urlpath, storage_options)]


def _expand(urlpath: str | Sequence[str], storage_options: dict[str, Any] | None = None) -> list[tuple[Any, str]]:
    """Each file ``urlpath`` names and how messages name it: as the user wrote it, as the local
    engine names a file (a local glob's matches relative to where its pattern was), else its URL."""
    require_dask()
    import fsspec

    paths = [urlpath] if isinstance(urlpath, (str, os.PathLike)) else list(urlpath)
    files: list[tuple[Any, str]] = []
    for p in paths:
        p = str(p)
        try:
            fs, path = fsspec.core.url_to_fs(p, **(storage_options or {}))
            if any(ch in path for ch in "*?["):
                matches = fs.glob(path, detail=True)
                names = sorted(name for name, info in matches.items() if info.get("type") != "directory")
                if not names:
                    raise InputFileError(f"no input file matches {p}")
            elif fs.isdir(path):
                raise InputFileError(f"{p} is a directory; pass a glob of its files, e.g. '{p.rstrip('/')}/*.csv'")
            else:
                names = [path]
        except (ValueError, ImportError) as exc:  # an unknown protocol, or its library missing
            raise InputFileError(f"cannot read {p}: {exc}") from None
        urls = [fs.unstrip_protocol(n) for n in names]
        local = "://" not in p and "file" in (fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,))
        if local and len(names) == 1 and names[0] == path:
            shown = [p]
        elif local:
            shown = [n if os.path.isabs(p) else os.path.relpath(n) for n in names]
        else:
            shown = urls
        opened = fsspec.open_files(urls, mode="rb", compression="infer", **(storage_options or {}))
        files += zip(opened, shown)
    return files


def _read_header(openfile: Any, encoding: str, name: str | None = None) -> tuple[list[str], str]:
    """The header row and delimiter of one file, as the local engine's ``TableReader`` reads them."""
    name = name or openfile.path
    enc = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    try:
        with openfile as raw:
            text = io.TextIOWrapper(raw, encoding=enc, newline="")
            first = text.readline(MAX_LINE_CHARS)
            if not first.strip():
                raise InputFileError(f"{name} is empty: expected a header row with column names")
            delimiter = detect_delimiter(first, name)
            return next(csv.reader(itertools.chain([first], text), delimiter=delimiter, strict=True)), delimiter
    except UnicodeError as exc:
        raise decoding_error(name, encoding, exc, at_start=True) from None
    except csv.Error as exc:
        raise InputFileError(f"{name}: malformed CSV in the header: {exc}; check its quoting") from None
    except FileNotFoundError as exc:
        raise opening_error(name, exc) from None
    except READ_FAULTS as exc:  # a corrupt or truncated .gz, a read error
        raise reading_error(name, exc) from None


def _read_block(buffer: Any, **kwargs: Any) -> Any:
    """``pandas.read_csv`` of one block of bytes, as Dask's ``read_csv`` calls it.

    pandas takes a first data row longer than the column names for an index and, with
    ``index_col=False``, drops its extra fields with only a warning. So every block is
    read behind a made-up first row with exactly one field per name (the header's plus
    :data:`_EXTRA`), dropped again after parsing: any longer row is then a parser error,
    a row one field too long fills :data:`_EXTRA` (checked in :func:`_label_partition`),
    and a short row is padded with empty fields, as the local engine pads it. The first
    block of each file still starts with the file's header line, skipped as line 1.
    """
    import pandas as pd

    names = kwargs["names"]
    first_block = kwargs.pop("header", None) == 0
    lead = (kwargs["sep"] * (len(names) - 1) + "\n").encode(kwargs.get("encoding") or "utf-8")
    data = io.BytesIO(lead + buffer.read())
    frame = pd.read_csv(data, header=None, skiprows=[1] if first_block else None, **kwargs)
    return frame.iloc[1:].reset_index(drop=True)


def read_tables(
    urlpath: str | Sequence[str],
    *,
    encoding: str = "utf-8",
    blocksize: int | str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> tuple["dd.DataFrame", str]:
    """Every file ``urlpath`` names as one Dask DataFrame of strings, and the files' delimiter.

    Values come back exactly as written (no type guessing, no ``NA`` conversion, blank
    lines kept as empty rows), as the local engine reads them. All files must have the
    same header. ``blocksize=None`` makes one partition per file, which is always right;
    a size such as ``"64MB"`` splits big uncompressed files, but only when no field holds a
    line break (Dask splits at line ends without knowing about quotes).
    """
    require_dask()
    from dask.dataframe.io.csv import read_pandas

    text_encoding(encoding)
    if ",\t\n".encode(encoding) != b",\t\n":
        # Dask splits files into rows at the byte b"\n", which only these encodings keep.
        raise InputFileError(
            f"--engine dask reads ASCII-compatible encodings only (utf-8, latin-1, cp1252, ...), not {encoding}; "
            "convert the files first, e.g. iconv -f utf-16 -t utf-8"
        )
    inputs = _expand(urlpath, storage_options)
    files = [f for f, _ in inputs]
    with ThreadPoolExecutor(max_workers=min(16, len(files))) as pool:  # object stores: reads in parallel
        headers = list(pool.map(lambda item: _read_header(item[0], encoding, item[1]), inputs))
    header, delimiter = headers[0]
    for (_, shown), (other, other_delimiter) in zip(inputs[1:], headers[1:]):
        if other != header or other_delimiter != delimiter:
            raise InputFileError(
                f"{shown} has columns {name_list(other)} but {inputs[0][1]} has {name_list(header)}; "
                "label files with different columns separately"
            )
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise InputFileError(
            f"column name(s) {', '.join(map(repr, duplicated))} appear more than once in {inputs[0][1]}; "
            "the Dask engine needs unique column names"
        )
    names = [*header, _EXTRA]
    # One more name than the header has, so a row with an extra field is caught, never
    # silently shifted or cut (see _read_block).
    options = dict(names=names, sep=delimiter, dtype=str, keep_default_na=False, na_filter=False,
                   skip_blank_lines=False, index_col=False, encoding=encoding)
    if blocksize is None or any(f.compression for f in files):
        # One partition per file (a compressed file cannot be split): read by _read_file,
        # which names the file in its errors as the local engine does.
        import dask.dataframe as dd
        import pandas as pd

        meta = pd.DataFrame({n: pd.Series([], dtype=_string_dtype()) for n in names})
        frame = dd.from_map(_read_file, [f for f, _ in inputs], [n for _, n in inputs], options=options,
                            meta=meta, enforce_metadata=False, label="bpo-classify-read")
        return frame, delimiter
    paths = [f.fs.unstrip_protocol(f.path) for f in files]
    with _one_line_errors():  # Dask parses a sample of the first file here
        frame = read_pandas(
            _read_block, paths, header=0, **options, compression="infer", blocksize=blocksize,
            storage_options=storage_options,
        )
    return frame, delimiter


def _read_file(openfile: Any, name: str, options: dict[str, Any]) -> Any:
    """One whole input file as one partition of strings, with the local engine's one-line
    errors for a corrupt or truncated ``.gz`` and for bytes not in the encoding."""
    try:
        with openfile as raw:
            data = raw.read()
    except FileNotFoundError as exc:
        raise opening_error(name, exc) from None
    except READ_FAULTS as exc:
        raise reading_error(name, exc) from None
    try:
        frame = _read_block(io.BytesIO(data), header=0, **options)
    except UnicodeDecodeError:
        raise _located_decoding_error(data, name, options["encoding"]) from None
    return frame.astype(_string_dtype())


def _located_decoding_error(data: bytes, name: str, encoding: str) -> InputFileError:
    """The local engine's error for the first byte of ``data`` not in ``encoding``.

    pandas' error does not say where the byte is: the bytes are decoded again here, a
    megabyte at a time, to find it and name the data row before it.
    """
    enc = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    decoder = codecs.getincrementaldecoder(enc)()
    step = 2**20
    for start in range(0, len(data) + 1, step):
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(data[start : start + step], final=start + step >= len(data))
        except UnicodeDecodeError as exc:
            at = start - pending + exc.start
            rows_before = data.count(b"\n", 0, at) - 1  # complete lines before the byte's, less the header
            where = f" after data row {rows_before}" if rows_before > 0 else ""
            located = UnicodeDecodeError(exc.encoding, data, at, at + 1, exc.reason)
            return decoding_error(name, encoding, located, where, at_start=not where)
    return InputFileError(f"{name} is not valid {encoding}; try --encoding latin-1 or cp1252")


# -- writing parts ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _PartFormat:
    """How the parts are written: the format (a key of ``outputs.SINKS``), the delimiter, the added columns."""

    fmt: str
    delimiter: str
    names: list[str]
    top_functions: int = 1


def _write_part(df: Any, fs: Any, directory: str, number: int, form: _PartFormat) -> Counts:
    """Write one labelled partition as its own file (the added columns last); return its counts."""
    sink = SINKS[form.fmt]
    path = f"{directory.rstrip('/')}/{PART_NAME.format(number, sink.extension(form.delimiter))}"
    if df.isna().to_numpy().any():  # a frame from elsewhere: missing cells are written empty
        df = df.astype(object).where(df.notna(), "")
    inputs = [str(c) for c in df.columns if c not in form.names]
    rows = [list(r) for r in zip(*(df[c].tolist() for c in inputs))] if inputs else [[] for _ in range(len(df))]
    labels = list(zip(*(df[c].tolist() for c in form.names)))  # plain lists: quicker than itertuples
    with fs.open(path, **sink.open_arguments()) as out:
        writer = sink(out, inputs + form.names, form.delimiter, added_columns(form.top_functions))
        for start in range(0, len(rows), DEFAULT_CHUNK):
            writer.write(rows[start : start + DEFAULT_CHUNK], labels[start : start + DEFAULT_CHUNK])
        writer.close()
    return Counts.of_cells(labels)


def check_output(output: str, storage_options: dict[str, Any] | None = None) -> None:
    """Raise :class:`OutputFileError` unless ``output`` can become a new directory of parts."""
    require_dask()
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(output, **(storage_options or {}))
    except (ValueError, ImportError) as exc:
        raise OutputFileError(f"cannot write to {output}: {exc}") from None
    _check_output(fs, root, output)


def _check_output(fs: Any, root: str, output: str) -> tuple[str, str, bool]:
    root = root.rstrip("/") or root
    local = "file" in (fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,))
    if fs.exists(root):
        if not fs.isdir(root):
            raise OutputFileError(f"{output} exists and is not a directory; --engine dask writes a directory of parts")
        if fs.ls(root):
            raise OutputFileError(f"output directory {output} is not empty; remove it or choose a new one")
    parent = root.rsplit("/", 1)[0] if "/" in root else "."
    if local and not os.path.isdir(parent or "/"):
        raise OutputFileError(f"output directory does not exist: {parent or '/'}; create it first")
    return root, parent, local


@contextlib.contextmanager
def _staging(output: str, storage_options: dict[str, Any] | None) -> Iterator[tuple[Any, str]]:
    """A temporary directory beside ``output``, moved to ``output`` when the block succeeds.

    On a local or mounted file system the move is one rename, so ``output`` appears complete
    or not at all. Object stores have no rename (the move is a copy): there the
    ``_SUCCESS`` file, written last, is what marks a complete output.
    """
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(output, **(storage_options or {}))
    except (ValueError, ImportError) as exc:
        raise OutputFileError(f"cannot write to {output}: {exc}") from None
    root, parent, local = _check_output(fs, root, output)
    staging = f"{parent}/.{root.rsplit('/', 1)[-1]}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        fs.makedirs(staging, exist_ok=False)
    except OSError as exc:
        raise OutputFileError(f"cannot write to {parent}: {exc.strerror or exc}") from None
    try:
        yield fs, staging
        if local:
            with fs.open(f"{staging}/{SUCCESS_MARKER}", "wb"):
                pass
            if os.path.isdir(root):
                os.rmdir(root)  # empty (checked above): a rename cannot replace it otherwise
            os.replace(staging, root)
        else:
            fs.mv(staging, root, recursive=True)
            with fs.open(f"{root}/{SUCCESS_MARKER}", "wb"):
                pass
    except OSError as exc:
        raise OutputFileError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(Exception):
            if fs.exists(staging):
                fs.rm(staging, recursive=True)


def write_parts(
    labelled: "dd.DataFrame",
    output: str,
    *,
    fmt: str = "csv",
    delimiter: str = ",",
    names: Sequence[str] | None = None,
    storage_options: dict[str, Any] | None = None,
    top_functions: int = 1,
) -> tuple[LabelSummary, int]:
    """Compute ``labelled`` and write it under the directory ``output``, one file per partition.

    Parts are written into a temporary directory beside ``output`` that becomes ``output``
    only once every part is written: an interrupted or failed run leaves nothing under
    the final name. A partition Dask retries (its worker died) rewrites the same part
    file, so every row is in the output exactly once. Returns the summary and the number
    of parts. ``names`` are the added columns (default: the frame's last ones, as many as
    :func:`~bpo_classify.outputs.added_columns` of ``top_functions`` has).
    """
    require_dask()
    import dask

    _check_format(fmt)
    added = len(added_columns(top_functions))
    form = _PartFormat(fmt, delimiter, list(names) if names is not None else [str(c) for c in labelled.columns[-added:]], top_functions)
    with _staging(output, storage_options) as (fs, staging):
        parts = labelled.to_delayed()
        writes = [dask.delayed(_write_part, pure=False)(part, fs, staging, i, form) for i, part in enumerate(parts)]
        counts = _compute(writes)
    summary = LabelSummary(output=output)
    for c in counts:
        summary.add(c)
    return summary, len(parts)


def _compute(tasks: list[Any]) -> list[Any]:
    """``dask.compute`` on the current scheduler, with worker-side failures made into one-line errors."""
    import dask

    with _one_line_errors():
        return list(dask.compute(*tasks))


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """Turn what pandas and Dask raise for bad input or a failed cluster into domain errors."""
    import pandas as pd

    try:
        yield
    except BpoClassifyError:
        raise
    except UnicodeDecodeError as exc:  # a block of a split file (pandas' error may hold no bytes)
        byte = f" (byte {exc.object[exc.start:exc.start + 1]!r})" if isinstance(exc.object, bytes) else ""
        raise InputFileError(f"an input file is not valid {exc.encoding}{byte}; try --encoding latin-1 or cp1252") from None
    except READ_FAULTS as exc:  # not expected (compressed files are read by _read_file), but one line if it is
        raise reading_error("an input file", exc) from None
    except pd.errors.ParserError as exc:
        message = str(exc).strip()
        too_long = re.search(r"Expected (\d+) fields in line \d+, saw (\d+)", message)
        if too_long:
            raise InputFileError(too_long_row(int(too_long.group(2)), int(too_long.group(1)) - 1)) from None
        raise InputFileError(f"malformed CSV in an input file: {message}; check its quoting") from None
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "bpo_classify":
            raise DaskClusterError(
                "the Dask workers cannot import bpo_classify; install the same bpo-classify on every worker"
            ) from None
        raise
    except Exception as exc:
        if type(exc).__name__ in ("KilledWorker", "FutureCancelledError", "CommClosedError"):
            raise DaskClusterError(f"the Dask cluster failed the run: {exc}") from None
        raise


#: The formats parts are written in.
PART_FORMATS = ("csv", "parquet")


def _check_format(fmt: str) -> None:
    if fmt not in PART_FORMATS:
        raise ValueError(f"parts are written as {' or '.join(PART_FORMATS)}, not {fmt}; name the output directory e.g. labelled/ or labelled.parquet/")
    SINKS[fmt].check()


@dataclass
class LabelJob:
    """A labelling run checked and planned on the client, ready to :meth:`run` on a cluster.

    Made by :func:`plan_files`: the inputs are listed and their headers checked, the text
    column chosen and the output directory checked before any cluster is started.
    """

    frame: "dd.DataFrame"
    output: str
    fmt: str
    delimiter: str
    names: list[str]
    text_column: str
    model_data: bytes
    threshold: float | None = None
    storage_options: dict[str, Any] | None = None
    top_functions: int = 1

    @property
    def partitions(self) -> int:
        return int(self.frame.npartitions)

    def run(self) -> tuple[LabelSummary, int]:
        """Compute on the current Dask scheduler and write the parts; the summary and part count.

        The labelling is built here, so that the model goes to the workers of the client
        running now (see :func:`_ship`).
        """
        labelled = _labelled(self.frame, self.model_data, self.text_column, self.names, self.threshold, self.top_functions)
        summary, parts = write_parts(
            labelled, self.output, fmt=self.fmt, delimiter=self.delimiter, names=self.names,
            storage_options=self.storage_options, top_functions=self.top_functions,
        )
        summary.text_column = self.text_column
        return summary, parts


def plan_files(
    urlpath: str | Sequence[str],
    output: str,
    options: LabelOptions | None = None,
    *,
    fmt: str | None = None,
    blocksize: int | str | None = None,
    storage_options: dict[str, Any] | None = None,
    **label_options: Any,
) -> LabelJob:
    """Check the inputs and the output and build the (lazy) labelling of the files ``urlpath`` names.

    ``options`` are the labelling options (model, text column, prefix, threshold,
    encoding); any of them may also be given as a keyword (``text_column="duty"``), which
    overrides ``options``. ``fmt`` is ``"csv"`` (the input's delimiter kept, as the local
    engine does, or the one a directory named ``*.csv``/``*.tsv`` asks for) or ``"parquet"``;
    by default Parquet when ``output`` ends in ``.parquet``.
    """
    options = dataclasses.replace(options or LabelOptions(), **label_options)
    fmt = fmt or sink_format(output)
    _check_format(fmt)
    check_output(output, storage_options)
    frame, delimiter = read_tables(urlpath, encoding=options.encoding, blocksize=blocksize, storage_options=storage_options)
    # A directory named like labelled.tsv/ asks for that delimiter, as the local engine's -o labelled.tsv does.
    delimiter = format_for(output, delimiter).delimiter if fmt == "csv" else delimiter
    header = [str(c) for c in frame.columns if c != _EXTRA]
    chosen = header[choose_text_column(header, options.text_column, "the input")]
    names = added_names(header, options.prefix, options.top_functions)
    return LabelJob(
        frame, output, fmt, delimiter, names, chosen, model_bytes(options.model), options.threshold, storage_options,
        options.top_functions,
    )


def label_files(
    urlpath: str | Sequence[str], output: str, options: LabelOptions | None = None, **settings: Any
) -> tuple[LabelSummary, int]:
    """Label every row of the files ``urlpath`` names and write the parts under the directory ``output``.

    Runs on the current Dask scheduler (the ``distributed.Client`` in use, see :func:`cluster`);
    ``options`` and ``settings`` are those of :func:`plan_files`. Returns the summary and the
    number of part files. The parts, read in name order, hold the input's rows in order (the
    files in sorted name order), each written as the local engine writes it.
    """
    return plan_files(urlpath, output, options, **settings).run()


class _QuietTaskErrors(logging.Filter):
    """Drops a worker's "Compute Failed" report: the same error reaches the client, as one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Compute Failed")


class _QuietInterruptedGather(logging.Filter):
    """Drops asyncio's report of the client's gather tasks that Ctrl-C left unfinished."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        return not ("Task exception was never retrieved" in text and "AllExit" in text)


def _local_workers_plugin() -> Any:
    from distributed.diagnostics.plugin import WorkerPlugin

    class LocalWorkers(WorkerPlugin):
        """In each worker of the command's own cluster, also one restarted after a crash."""

        name = "bpo-classify-local-workers"

        def setup(self, worker: Any) -> None:
            log = logging.getLogger("distributed.worker")
            if not any(isinstance(f, _QuietTaskErrors) for f in log.filters):
                log.addFilter(_QuietTaskErrors())
            # Ctrl-C reaches every process of the terminal's group: the command stops the
            # cluster itself, so a worker killed by it would only print a traceback.
            with contextlib.suppress(ValueError):  # not the main thread: leave it as it is
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    return LocalWorkers()


@contextlib.contextmanager
def cluster(address: str | None = None, *, workers: int | None = None, timeout: str = "20s") -> Iterator["Client"]:
    """A ``distributed.Client`` for the scheduler at ``address``, or for a new local cluster.

    The local cluster has ``workers`` processes (default: one per CPU) of one thread each,
    listening on 127.0.0.1 only; it is shut down when the block ends.
    """
    require_dask()
    from distributed import Client, LocalCluster

    if address is not None:
        try:
            client = Client(address, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise DaskClusterError(
                f"cannot reach the Dask scheduler at {address}: {exc}; check the address (e.g. tcp://HOST:8786)"
            ) from None
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    # The scheduler always serves HTTP (dashboard or not); port 0 keeps it off a fixed port
    # (8787 may be taken by another cluster) and on loopback.
    with LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,  # Dask's own warnings (e.g. tasks cancelled at shutdown) are not for users
    ) as local, Client(local) as client:
        client.register_plugin(_local_workers_plugin())
        quiet = logging.getLogger("asyncio")
        if not any(isinstance(f, _QuietInterruptedGather) for f in quiet.filters):
            quiet.addFilter(_QuietInterruptedGather())
        yield client
