"""The model file format: a checksummed JSON header plus NumPy arrays, never a pickle.

Layout of a ``.bpoc`` file::

    MAGIC (12 bytes) | SHA-256 of everything after it (32 bytes)
    | header length (8 bytes, little-endian) | header (UTF-8 JSON) | payload (.npz bytes)

Loading reads the arrays with ``allow_pickle=False``, so no byte of the file is
ever executed: a file that is not ours, truncated, bit-flipped or from a newer
format is refused with a one-line :class:`~bpo_classify.errors.ModelFileError`.
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
import struct
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .atomic import atomic_output
from .errors import ModelFileError

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


def loads(data: bytes, source: str = "model bytes") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Verify the bytes of a model file and return its header and arrays (``source`` names it in errors).

    Raises :class:`ModelFileError` for foreign, corrupt or newer-format bytes.
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
    try:
        header = json.loads(body[_LENGTH.size : _LENGTH.size + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"model file is corrupt (unreadable header): {source}") from None
    version = header.get("format_version")
    if not isinstance(version, int) or header.get("format") != "bpo-classify-model":
        raise ModelFileError(f"not a bpo-classify model file: {source}; pass a file written by `bpo-classify train`")
    if version > SEMANTIC_FORMAT_VERSION:
        made_by = header.get("metadata", {}).get("package_version", "?")
        raise ModelFileError(
            f"model file made by a newer bpo-classify {made_by} (format {version}); "
            "upgrade with `pip install -U bpo-classify`"
        )

    try:
        with np.load(io.BytesIO(body[_LENGTH.size + header_len :]), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"model file is corrupt (bad arrays: {exc}): {source}") from None
    return header, arrays


def write_model_file(path: Path, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``header`` and ``arrays`` to ``path`` atomically (see :func:`dumps`)."""
    data = dumps(header, arrays)
    with atomic_output(Path(path), binary=True) as out:
        out.write(data)


def read_model_bytes(path: Path) -> bytes:
    """The bytes of the file ``path``, or a :class:`ModelFileError` that says why they cannot be read."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"model file not found: {path}; train one with `bpo-classify train --out {path}`") from None
    except IsADirectoryError:
        raise ModelFileError(f"model path is a directory, not a model file: {path}") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror}") from None


def read_model_file(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify a model file; return its header and arrays.

    Raises :class:`ModelFileError` for a missing, foreign, corrupt or newer-format file.
    """
    return loads(read_model_bytes(path), str(path))
