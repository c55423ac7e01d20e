"""The model file format: a checksummed JSON header plus NumPy arrays, never a pickle.

Layout of a ``.bpoc`` file::

    MAGIC (12 bytes) | SHA-256 of everything after it (32 bytes)
    | header length (8 bytes, little-endian) | header (UTF-8 JSON) | payload (.npz bytes)

Loading reads the arrays with ``allow_pickle=False``, so no byte of the file is
ever executed: a file that is not ours, truncated, bit-flipped or from a newer
format is refused with a one-line :class:`~bpo_classify.errors.ModelFileError`.
Given a ``schema`` (as ``load_model`` gives :func:`~bpo_classify.modelschema.expected_arrays`),
a file whose checksum is right but whose content was crafted is refused too ("not a valid
model file"): the header is checked first, then each array's declared type, shape and size
against the header and the file before anything is allocated; only the arrays the header
implies are read, and NaN or infinite values are refused. Only regular files of at most
:data:`MAX_FILE_BYTES` are read (never a FIFO or ``/dev/zero``).
Saving writes a temporary file beside the target and renames it, so an
interrupted save never leaves a broken model under the final name.

:func:`dumps` and :func:`loads` do the same with bytes (a model sent to Dask workers).

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.bpoc"
    >>> write_model_file(path, {"note": "hi"}, {"w": np.arange(3.0)})
    >>> header, arrays = read_model_file(path)
    >>> header["note"], arrays["w"].tolist()
    ('hi', [0.0, 1.0, 2.0])
    >>> loads(dumps({"note": "hi"}, {}))[0]["note"]
    'hi'
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import struct
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .atomic import atomic_output
from .errors import ModelFileError
from .modelschema import MAX_ARRAY_BYTES, MAX_WEIGHT, ArraySpec, SchemaError, check_header

#: What :func:`loads` is told to expect: the arrays a (checked) header implies, by name.
Schema = Callable[[Mapping[str, Any]], Mapping[str, ArraySpec]]
#: The largest model file read (the shipped one is 20 MB).
MAX_FILE_BYTES = 2**30
#: The largest header (the shipped one is 3 kB).
MAX_HEADER_BYTES = 2**20
#: The largest ``.npy`` header of one array.
_MAX_NPY_HEADER = 2**16

MAGIC = b"BPOCLASSIFY\x01"
#: 2 added the mixed-task detector's arrays and the ``head`` feature block, 3 the not-a-task
#: detector's; older formats still load, while an older bpo-classify refuses a newer file
#: instead of misreading it.
FORMAT_VERSION = 3
#: A semantic model's file (semantic.py): format 3 plus an ``encoder`` header entry and the
#: embedding's columns. Written only for semantic models, so default files keep format 3.
SEMANTIC_FORMAT_VERSION = 4
_DIGEST = 32
_LENGTH = struct.Struct("<Q")
_PREFIX = len(MAGIC) + _DIGEST + _LENGTH.size


def dumps(header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> bytes:
    """The bytes of a model file holding ``header`` and ``arrays``, with format version and checksum."""
    header = {"format": "bpo-classify-model", "format_version": FORMAT_VERSION, **header}
    header_bytes = json.dumps(header, sort_keys=True, ensure_ascii=False).encode("utf-8")
    payload = io.BytesIO()
    np.savez_compressed(payload, **arrays)
    body = _LENGTH.pack(len(header_bytes)) + header_bytes + payload.getvalue()
    return MAGIC + hashlib.sha256(body).digest() + body


def loads(
    data: bytes, source: str = "model bytes", schema: Schema | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Verify the bytes of a model file and return its header and arrays (``source`` names it in errors).

    With ``schema``, the header is checked (:func:`~bpo_classify.modelschema.check_header`)
    and only the arrays ``schema(header)`` names are read, each checked before it is
    allocated; without, every array is read (for files this program wrote itself).
    Raises :class:`ModelFileError` for foreign, corrupt, crafted or newer-format bytes.
    """
    magic = data[: len(MAGIC)]
    if magic != MAGIC:
        # A few flipped bits in our own magic still mean "ours, but damaged".
        same = sum(a == b for a, b in zip(magic, MAGIC))
        if len(magic) == len(MAGIC) and same >= len(MAGIC) - 2:
            raise ModelFileError(f"model file is corrupt: {source}; rebuild it or fetch a fresh copy")
        raise ModelFileError(
            f"not a bpo-classify model file: {source}; pass a file written by `bpo-classify train`"
        )
    if len(data) < _PREFIX:
        raise ModelFileError(f"model file is corrupt (truncated): {source}; rebuild it or fetch a fresh copy")
    digest, body = data[len(MAGIC) : len(MAGIC) + _DIGEST], data[len(MAGIC) + _DIGEST :]
    if hashlib.sha256(body).digest() != digest:
        raise ModelFileError(f"model file is corrupt (checksum mismatch): {source}; rebuild it or fetch a fresh copy")

    (header_len,) = _LENGTH.unpack_from(body)
    if header_len > min(len(body) - _LENGTH.size, MAX_HEADER_BYTES):
        raise invalid(source, f"its header is declared {header_len:,} bytes, more than the file or {MAX_HEADER_BYTES:,} holds")
    try:
        header = json.loads(body[_LENGTH.size : _LENGTH.size + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"model file is corrupt (unreadable header): {source}") from None
    except RecursionError:
        raise invalid(source, "its header is nested too deeply") from None
    if not isinstance(header, dict):
        raise invalid(source, f"its header is a JSON {type(header).__name__}, not an object")
    version = header.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or header.get("format") != "bpo-classify-model":
        raise ModelFileError(f"not a bpo-classify model file: {source}; pass a file written by `bpo-classify train`")
    if version > SEMANTIC_FORMAT_VERSION:
        metadata = header.get("metadata")
        made_by = metadata.get("package_version", "?") if isinstance(metadata, dict) else "?"
        raise ModelFileError(
            f"model file made by a newer bpo-classify {str(made_by)[:40]} (format {version}); "
            "upgrade with `pip install -U bpo-classify`"
        )
    if version < 1:
        raise invalid(source, f"format version {version}")
    payload = body[_LENGTH.size + header_len :]
    if schema is None:
        return header, _all_arrays(payload, source)
    try:
        check_header(header)
        return header, _expected_arrays(payload, schema(header))
    except SchemaError as exc:
        raise invalid(source, str(exc)) from None


def invalid(source: str, reason: str) -> ModelFileError:
    """The error for a model file whose checksum is right but whose content is not a model's.

    Example:
        >>> str(invalid("m.bpoc", "calibration[0] is nan"))
        'not a valid model file: m.bpoc: calibration[0] is nan (corrupt or altered; rebuild it or fetch a fresh copy)'
    """
    reason = "".join(c if c.isprintable() else repr(c)[1:-1] for c in reason)  # what the file said stays on one line
    return ModelFileError(f"not a valid model file: {source}: {reason} (corrupt or altered; rebuild it or fetch a fresh copy)")


def _all_arrays(payload: bytes, source: str) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"model file is corrupt (bad arrays: {exc}): {source}") from None


def _expected_arrays(payload: bytes, expected: Mapping[str, ArraySpec]) -> dict[str, np.ndarray]:
    """The arrays named in ``expected``, each checked against its spec and the file before it is read.

    Raises :class:`SchemaError` for a missing, mistyped, misshapen, oversized or non-finite array.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except Exception as exc:  # noqa: BLE001  (a damaged directory: BadZipFile, NotImplementedError, ValueError...)
        raise SchemaError(f"its arrays are unreadable ({exc})") from None
    arrays: dict[str, np.ndarray] = {}
    total = 0
    with archive:
        members = {info.filename: info for info in archive.infolist()}
        for name, spec in expected.items():
            info = members.get(f"{name}.npy")
            if info is None:
                if spec.required:
                    raise SchemaError(f"array {name} is missing")
                continue
            declared = info.file_size
            total += declared
            if declared > spec.nbytes + _MAX_NPY_HEADER or total > MAX_ARRAY_BYTES:
                raise SchemaError(f"array {name} is declared {declared:,} bytes; its header implies at most {spec.nbytes:,}")
            if info.header_offset + info.compress_size > len(payload):
                raise SchemaError(f"array {name} is declared longer than the file")
            try:
                arrays[name] = _read_array(archive, info, spec, name)
            except SchemaError:
                raise
            except Exception as exc:  # noqa: BLE001
                # Parsing bytes anyone may have written: NumPy's .npy header parser alone raises
                # ValueError, SyntaxError or tokenize.TokenError, zipfile BadZipFile, zlib.error, EOFError...
                # The array's size was bounded before any of it ran.
                raise SchemaError(f"array {name} is unreadable ({str(exc)[:200]})") from None
    return arrays


#: What an array's name (less ``_coef``/``_intercept``) holds, for messages.
_WHAT = {"mixed": "mixed-task detector", "not_a_task": "not-a-task detector", "office": "office model", "function": "function model"}


def _read_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, spec: ArraySpec, name: str) -> np.ndarray:
    """One ``.npy`` member: its header read and checked first, then its data (never a pickle)."""
    fmt = np.lib.format
    with archive.open(info) as member:
        version = fmt.read_magic(member)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(member, max_header_size=_MAX_NPY_HEADER)
    if dtype.hasobject or not spec.fits(dtype, shape):
        what = _WHAT.get(name.rsplit("_", 1)[0], "it")
        raise SchemaError(
            f"{what} does not match the vocabulary: array {name} is {dtype} {tuple(shape)}; "
            f"the header implies {np.dtype(spec.dtype)} {'at most ' if not spec.exact else ''}{spec.shape}"
        )
    with archive.open(info) as member:
        array = fmt.read_array(member, allow_pickle=False, max_header_size=_MAX_NPY_HEADER)
    if array.dtype.kind == "f" and not (np.isfinite(array).all() and np.abs(array).max(initial=0.0) <= MAX_WEIGHT):
        raise SchemaError(f"array {name} holds NaN, infinite or values beyond {MAX_WEIGHT:g}")
    return array


def write_model_file(path: Path, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``header`` and ``arrays`` to ``path`` atomically (see :func:`dumps`)."""
    data = dumps(header, arrays)
    with atomic_output(Path(path), binary=True) as out:
        out.write(data)


def read_model_bytes(path: Path) -> bytes:
    """The bytes of the file ``path``, or a :class:`ModelFileError` that says why they cannot be read.

    Only a regular file of at most :data:`MAX_FILE_BYTES` is read: a FIFO would block and
    ``/dev/zero`` never ends. It is opened without blocking, so a FIFO is refused at once.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ModelFileError(f"model file not found: {path}; train one with `bpo-classify train --out {path}`") from None
    except IsADirectoryError:
        raise ModelFileError(f"model path is a directory, not a model file: {path}") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ModelFileError(f"model path is a directory, not a model file: {path}")
        if not stat.S_ISREG(info.st_mode):
            raise invalid(str(path), "it is not a regular file (a pipe, socket or device)")
        if info.st_size > MAX_FILE_BYTES:
            raise invalid(str(path), f"it is {info.st_size:,} bytes; a model file has at most {MAX_FILE_BYTES:,}")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_model_file(path: Path, schema: Schema | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify a model file; return its header and arrays (``schema``: see :func:`loads`).

    Raises :class:`ModelFileError` for a missing, foreign, corrupt, crafted or newer-format file.
    """
    return loads(read_model_bytes(path), str(path), schema)
