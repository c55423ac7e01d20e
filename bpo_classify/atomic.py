"""Atomic file output: write to a temporary file beside the target, then rename.

A reader never sees a half-written file under the final name: if the block raises
(or the process is interrupted), the temporary file is removed and the target is
left as it was. A target that exists but is not a regular file (``/dev/null``, a
terminal or pipe behind ``/dev/stdout``, a named pipe) is written to directly: there
is nothing to rename into place, and renaming over it would replace the device with a
plain file. A symbolic link is followed: the file it points to is replaced, the link kept.

The temporary file's name carries the writing process's id (``.out.csv.PID.RANDOM.tmp``):
one left by a process that was killed (``kill -9``, the out-of-memory killer) is removed
by the next write to the same name, once no process with that id is running.
:func:`discard_temporary_files` removes this process's own at once (a second signal).

Example:
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.csv"
    >>> with atomic_output(target) as f:
    ...     _ = f.write("a,b\\n")
    >>> target.read_text()
    'a,b\\n'
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from pathlib import Path
from typing import IO, Any, Iterator

from .errors import OutputFileError


@contextlib.contextmanager
def atomic_output(
    path: Path, *, binary: bool = False, encoding: str = "utf-8", newline: str | None = ""
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success rename it to ``path``."""
    path = Path(path)
    try:
        mode: int | None = os.stat(path).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        yield from _write_special(path, binary, encoding, newline)
        return
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    directory = require_directory(path)
    try:
        fd, tmp = _create_beside(path)
        _LIVE.add(tmp)
        if mode is not None:
            # The file replaced keeps its permissions (a 0600 file must not come back 0644).
            os.fchmod(fd, stat.S_IMODE(mode))
    except OSError as exc:
        raise OutputFileError(f"cannot write to {directory}: {exc.strerror}") from None
    try:
        if binary:
            handle: IO[Any] = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding=encoding, newline=newline)
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        _LIVE.discard(tmp)


#: The temporary files this process has open, so that a second signal can remove them at once.
_LIVE: set[Path] = set()


def discard_temporary_files() -> None:
    """Remove every temporary file this process is writing (safe to call from a signal handler
    just before ``os._exit``: nothing of them will be renamed into place)."""
    for tmp in list(_LIVE):
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def require_directory(path: Path) -> Path:
    """The directory ``path`` goes in; :class:`OutputFileError` if it does not exist.

    Example:
        >>> require_directory(Path("nowhere") / "out.csv")
        Traceback (most recent call last):
        ...
        bpo_classify.errors.OutputFileError: output directory does not exist: nowhere; create it first
    """
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise OutputFileError(f"output directory does not exist: {directory}; create it first")
    return directory


def _create_beside(path: Path) -> tuple[int, Path]:
    """A new, empty ``.NAME.PID.RANDOM.tmp`` beside ``path``, open for writing (stale ones removed first).

    Created with mode 0o666, which the kernel reduces by the umask: the mode any new file
    gets (``tempfile.mkstemp`` would give 0o600, and reading the umask means setting it,
    for the whole process).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    # ".NAME.PID.12345678.tmp" adds up to 22 bytes: a name near the file system's limit is shortened
    # (on a character boundary) so that any name that is valid as output works.
    try:
        limit = os.pathconf(path.parent if str(path.parent) else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    stem, pid = path.name, os.getpid()
    while len(f".{stem}.{pid}.12345678.tmp".encode("utf-8", "surrogateescape")) > limit:
        stem = stem[:-1]
    remove_stale_temporary_files(path.parent, stem)
    for _ in range(100):
        tmp = path.with_name(f".{stem}.{pid}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(path.parent))


def remove_stale_temporary_files(directory: Path, stem: str) -> list[Path]:
    """Remove the temporary files for ``stem`` in ``directory`` whose writer is gone; return them.

    Only names of our own shape (``.STEM.PID.8-hex-digits.tmp``) are touched, and only
    when no process ``PID`` runs (a process of another user counts as running).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / ".out.csv.999999999.0a1b2c3d.tmp").write_text("half")
        >>> [p.name for p in remove_stale_temporary_files(d, "out.csv")]
        ['.out.csv.999999999.0a1b2c3d.tmp']
    """
    shape = re.compile(rf"\.{re.escape(stem)}\.(\d+)\.[0-9a-f]{{8}}\.tmp")
    removed = []
    try:
        names = os.listdir(directory if str(directory) else ".")
    except OSError:
        return removed
    for name in names:
        match = shape.fullmatch(name)
        if match and not _running(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(directory / name)
                removed.append(directory / name)
    return removed


def _running(pid: int) -> bool:
    """Whether a process ``pid`` exists (ours or another user's)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or a number this system cannot check: leave it
    return True


def _write_special(path: Path, binary: bool, encoding: str, newline: str | None) -> Iterator[IO[Any]]:
    try:
        handle: IO[Any] = open(path, "wb") if binary else open(path, "w", encoding=encoding, newline=newline)
    except OSError as exc:
        raise OutputFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with handle:
            yield handle
    except OSError as exc:
        raise OutputFileError(f"cannot write {path}: {exc.strerror or exc}") from None
